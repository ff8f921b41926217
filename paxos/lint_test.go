package paxos_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// coreDirs are the packages that must stay pure state machines (STYLE.md
// principles 1, 3 and 13): no clock, network, disk, locks or global
// randomness. Time arrives as ticks and randomness through Config.Rand;
// the replicated state machine gets its time from the cluster clock
// commands in the log, and must give every replica the same result.
var coreDirs = []string{"paxos", "acceptor", "proposer", "learner", "paxos/replica", "statemachine"}

// forbiddenImports are refused, along with every package below them
// ("net" also forbids "net/http"; "math/rand" also "math/rand/v2").
var forbiddenImports = []string{"time", "net", "os", "sync", "math/rand"}

func isForbidden(path string) bool {
	for _, f := range forbiddenImports {
		if path == f || strings.HasPrefix(path, f+"/") {
			return true
		}
	}
	return false
}

// badImports parses the non-test Go files of dir and returns each forbidden
// import as "file: path", sorted, and the number of files it read.
func badImports(t *testing.T, dir string) (bad []string, files int) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		files++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if isForbidden(path) {
				bad = append(bad, filepath.Base(name)+": "+path)
			}
		}
	}
	sort.Strings(bad)
	return bad, files
}

// moduleRoot walks up from the working directory to the one holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestForbiddenImports keeps the protocol core free of I/O, clocks, locks
// and global randomness (cockroachdb/pebble internal/lint style).
func TestForbiddenImports(t *testing.T) {
	root := moduleRoot(t)
	for _, dir := range coreDirs {
		bad, files := badImports(t, filepath.Join(root, filepath.FromSlash(dir)))
		if files == 0 {
			t.Errorf("%s: no Go files found; is the package list stale?", dir)
		}
		for _, b := range bad {
			t.Errorf("%s/%s is forbidden in the protocol core", dir, b)
		}
	}
}

// TestForbiddenImportsCatchesViolations proves the check can fail: in a
// scratch package it flags sub-packages and renamed or blank imports,
// ignores test files, and lets look-alike names ("sort", "osext") through.
func TestForbiddenImportsCatchesViolations(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", "package p\n\nimport (\n\t\"sort\"\n\tnh \"net/http\"\n\t_ \"sync/atomic\"\n\t\"example.com/osext\"\n)\n")
	write("b.go", "package p\n\nimport \"math/rand/v2\"\n")
	write("c.go", "package p\n\nimport \"time\"\n")
	write("c_test.go", "package p\n\nimport \"os\"\n")
	bad, files := badImports(t, dir)
	want := []string{"a.go: net/http", "a.go: sync/atomic", "b.go: math/rand/v2", "c.go: time"}
	if files != 3 || strings.Join(bad, ",") != strings.Join(want, ",") {
		t.Errorf("flagged %q in %d files, want %q in 3", bad, files, want)
	}
}
