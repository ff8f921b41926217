package main

import (
	"bytes"
	"fmt"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/wire"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDevNullIsNotATerminal: /dev/null, a daemon's stdin under systemd or
// 'docker run' without -t, is a character device but not a terminal; taken
// for one, 'paxosd lock -- CMD' left CMD in its own process group and did
// not forward SIGINT to it.
func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cli.IsTerminal(f) {
		t.Fatalf("%s taken for a terminal", os.DevNull)
	}
}

// TestConsoleLogCarriesDateAndUnits: console lines start with the date,
// and duration fields say their unit in their name.
func TestConsoleLogCarriesDateAndUnits(t *testing.T) {
	var buf bytes.Buffer
	lf := logFlags{level: "info", format: "console"}
	log, err := lf.logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Dur("took_ms", 1500*time.Millisecond).Msg("x")
	line := buf.String()
	if !strings.HasPrefix(line, time.Now().Format("2006-01-02 ")) || !strings.Contains(line, "took_ms=1500") {
		t.Errorf("console line %q: want the date first and took_ms=1500", line)
	}
}

// TestVersionLine: 'paxosd version' names the release, the Go release and
// the wire protocol version (the commit only when the binary was built in
// a git checkout, which a test binary is not).
func TestVersionLine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("version: exit %d, %q", code, errb.String())
	}
	for _, want := range []string{"paxosd " + version + " (", runtime.Version(), fmt.Sprintf("wire protocol %d)", wire.ProtocolVersion)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version printed %q, want %q in it", out.String(), want)
		}
	}
}
