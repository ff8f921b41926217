package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/service/servicetest"
)

// TestWatchProgressCLI: kv watch --progress prints where the watch starts
// and the progress notifications of an idle watch, past writes to other
// keys ("N PROGRESS"; -w json: {"progress_revision": N}); without it the
// output is the changes alone, as before.
func TestWatchProgressCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	eps := servicetest.StartTuned(t, 1, func(c *service.Config) { c.WatchProgressInterval = 200 * time.Millisecond }).Endpoints[0]
	rev := func(k string) uint64 {
		return decodeObj(t, "put", cliOK(t, eps, nil, "kv", "put", k, "v", "-w", "json")).num(t, "revision")
	}
	r0 := rev("start")
	watch := []string{"kv", "watch", "p/", "--prefix", "--endpoints", eps}
	plain := startPaxosd(t, watch...)
	text := startPaxosd(t, append(watch, "--progress")...)
	js := startPaxosd(t, append(watch, "--progress", "-w", "json")...)
	if got := text.next(t, 1)[0]; got != uintStr(r0)+" PROGRESS\n" {
		t.Fatalf("kv watch --progress's first line %q, want where it starts, %d PROGRESS", got, r0)
	}
	if got := decodeObj(t, "watch --progress -w json", js.next(t, 1)[0]); got.num(t, "progress_revision") != r0 || len(got) != 1 {
		t.Fatalf("kv watch --progress -w json's first line %v, want {\"progress_revision\": %d}", got, r0)
	}
	r1 := rev("other")
	if got := text.next(t, 1)[0]; got != uintStr(r1)+" PROGRESS\n" {
		t.Fatalf("kv watch --progress after a write to another key: %q, want %d PROGRESS", got, r1)
	}
	if got := decodeObj(t, "watch --progress -w json", js.next(t, 1)[0]); got.num(t, "progress_revision") != r1 {
		t.Fatalf("kv watch --progress -w json after a write to another key: %v, want progress_revision %d", got, r1)
	}
	time.Sleep(500 * time.Millisecond) // progress the plain watch must not print
	r2 := rev("p/a")
	if got := plain.next(t, 1)[0]; got != uintStr(r2)+" PUT p/a v\n" {
		t.Fatalf("kv watch without --progress: %q, want the change alone", got)
	}
	if got := text.next(t, 1)[0]; got != uintStr(r2)+" PUT p/a v\n" {
		t.Fatalf("kv watch --progress: %q, want the change", got)
	}
	if got := js.next(t, 1)[0]; !strings.Contains(got, `"type":"put"`) {
		t.Fatalf("kv watch --progress -w json: %q, want the change", got)
	}
}

// TestCLIDocEveryCommand: docs/CLI.md's "Every command" table has a row
// for every command 'paxosd --help' lists, so the reference cannot miss
// a new one.
func TestCLIDocEveryCommand(t *testing.T) {
	raw, err := os.ReadFile("../../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "## Every command")
	if start < 0 {
		t.Fatal(`docs/CLI.md has no "## Every command" section`)
	}
	table := doc[start:]
	table = table[:strings.Index(table[3:], "\n## ")+3]
	n := 0
	for _, line := range strings.Split(usage, "\n") {
		if !strings.HasPrefix(line, "  paxosd ") {
			continue // not a usage line
		}
		// The command, before the two spaces that start its description.
		words := strings.Fields(strings.SplitN(strings.TrimSpace(line), "  ", 2)[0])
		if len(words) < 2 || words[0] != "paxosd" {
			continue
		}
		cmd := words[1]
		if len(words) > 2 && regexp.MustCompile(`^[a-z]+$`).MatchString(words[2]) {
			cmd += " " + words[2] // a subcommand: kv put, lock ls, leader transfer...
		}
		n++
		if !strings.Contains(table, "| `"+cmd) {
			t.Errorf("paxosd --help lists %q; docs/CLI.md's \"Every command\" table has no row for it", cmd)
		}
	}
	if n < 20 {
		t.Fatalf("found only %d commands in paxosd --help's usage", n)
	}
}
