// Package fuzzcorpus keeps the seed corpora of the fuzz targets as files in
// the place `go test` reads them from: <package>/testdata/fuzz/<Target>/.
// Plain `go test` (and so `make test`) runs every file there as a test case,
// and `go test -fuzz` starts from them.
//
// The seeds are generated, from the golden frames in testdata/wire and from
// the encoders, by a test in each package that calls Sync: it fails when a
// seed file is missing (a golden frame was added, say), and rewrites them
// all with UPDATE_FUZZ_CORPUS=1. It does not fail when a file's content is
// older than what the encoder writes today: an older frame is still a valid
// input (fields are only ever appended) and a good seed. Files it does not
// know (crashers the fuzzer saved) are left alone: they are regression
// cases to keep.
package fuzzcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Updating reports whether Sync should rewrite the corpus files.
func Updating() bool { return os.Getenv("UPDATE_FUZZ_CORPUS") == "1" }

// Encode returns a corpus file for one input, in the format of Go's fuzzing
// engine (internal/fuzz): a header line, then one typed literal per
// argument of the fuzz function, in order.
func Encode(args ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		case int:
			fmt.Fprintf(&b, "int(%d)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case uint64:
			fmt.Fprintf(&b, "uint64(%d)\n", v)
		default:
			panic(fmt.Sprintf("fuzzcorpus: no encoding for %T", a))
		}
	}
	return b.Bytes()
}

// Sync checks that testdata/fuzz/<target>/<name> exists for every seed
// (or, when Updating, writes it): seeds maps a file name to the fuzz
// function's arguments.
func Sync(t testing.TB, target string, seeds map[string][]any) {
	t.Helper()
	SyncDir(t, filepath.Join("testdata", "fuzz", target), seeds)
}

// SyncDir is Sync for the corpus directory dir: for seeds of another
// package's fuzz target that only this package can build (the target's
// package holds the corpus, testdata/fuzz/<Target> there). Several tests may
// sync seeds into one directory, each its own names.
func SyncDir(t testing.TB, dir string, seeds map[string][]any) {
	t.Helper()
	names := make([]string, 0, len(seeds))
	for name := range seeds {
		names = append(names, name)
	}
	sort.Strings(names)
	if Updating() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		want := Encode(seeds[name]...)
		path := filepath.Join(dir, name)
		if Updating() {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("seed corpus file %s is missing; regenerate the corpus with UPDATE_FUZZ_CORPUS=1 go test -run TestFuzzCorpus", path)
		}
	}
}
