package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// writeTestBackup writes a backup of a state of n keys, as snapshot save
// would, and returns its path.
func writeTestBackup(t *testing.T, n int) string {
	t.Helper()
	sm := statemachine.NewStateMachine(statemachine.SMOptions{ValueBytesMax: 64 << 20}) // service's options
	for i := range n {
		c := statemachine.Command{Op: statemachine.OpPut, Key: fmt.Sprintf("k%d", i), Value: []byte("v")}
		sm.Apply(paxos.Slot(i+1), statemachine.EncodeCommand(&c))
	}
	data, err := sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.snap")
	w, err := wal.CreateBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if _, err := w.Finish(sm.Applied()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSnapshotStatusAndDamage: status prints the table of a sound backup;
// a damaged one exits 1 with one line saying what is wrong (JSON with
// -w json), and restore refuses it before writing anything.
func TestSnapshotStatusAndDamage(t *testing.T) {
	path := writeTestBackup(t, 5)
	var out, errb bytes.Buffer
	if code := run([]string{"snapshot", "status", path}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d, %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "5 5 5 ") {
		t.Fatalf("status:\n%s", out.String())
	}
	good, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:len(good)-10], "not a sound paxosd backup: truncated or damaged: no trailer at its end"},
		{"flipped", func() []byte { b := bytes.Clone(good); b[20] ^= 0x40; return b }(), "the file is damaged"},
		{"not a backup", []byte("#!/bin/sh\necho hello, this is a shell script\n"), "it does not start as one"},
	} {
		bad := filepath.Join(t.TempDir(), tc.name)
		os.WriteFile(bad, tc.b, 0o644)
		out.Reset()
		errb.Reset()
		if code := run([]string{"snapshot", "status", bad}, &out, &errb); code != 1 || out.Len() != 0 ||
			strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line saying %q", tc.name, code, out.String(), errb.String(), tc.want)
		}
		errb.Reset()
		if code := run([]string{"snapshot", "status", bad, "-w", "json"}, &out, &errb); code != 1 || !strings.HasPrefix(errb.String(), `{"error":`) {
			t.Errorf("%s -w json: exit %d, stderr %q", tc.name, code, errb.String())
		}
		dir := filepath.Join(t.TempDir(), "data")
		errb.Reset()
		if code := run([]string{"snapshot", "restore", bad, "--data-dir", dir, "--id", "1", "--peers", "1=127.0.0.1:7401"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s: restore: exit %d, stderr %q", tc.name, code, errb.String())
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: a refused restore created %s", tc.name, dir)
		}
	}
}

// TestSnapshotUsageErrors: snapshot's command-line mistakes exit 2 with a
// line naming the mistake.
func TestSnapshotUsageErrors(t *testing.T) {
	path := writeTestBackup(t, 1)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"snapshot"}, "snapshot needs a subcommand"},
		{[]string{"snapshot", "frob"}, `unknown snapshot subcommand "frob"`},
		{[]string{"snapshot", "save"}, "snapshot save takes one FILE"},
		{[]string{"snapshot", "status", "a", "b"}, "snapshot status takes one FILE"},
		{[]string{"snapshot", "restore", path, "--id", "1", "--peers", "1=h:1"}, "needs --data-dir DIR"},
		{[]string{"snapshot", "restore", path, "--data-dir", dir, "--peers", "1=h:1"}, "needs --id ID"},
		{[]string{"snapshot", "restore", path, "--data-dir", dir, "--id", "1"}, "--peers is required"},
		{[]string{"snapshot", "restore", path, "--data-dir", dir, "--id", "4", "--peers", "1=h:1,2=h:2"}, "--id 4 is not one of --peers (1=h:1,2=h:2)"},
		{[]string{"snapshot", "restore", path, "--data-dir", dir, "--id", "1", "--peers", "1=h:1", "--bump-revision", "0"}, "--bump-revision must be above 0"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
