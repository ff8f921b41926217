package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	unitPath    = "../../contrib/systemd/paxosd.service"
	exampleYAML = "../../contrib/systemd/paxosd.yaml"
	unitExec    = "ExecStart=/usr/local/bin/paxosd serve --config /etc/paxosd/paxosd.yaml"
)

// systemdAnalyze returns the path of systemd-analyze, or skips the test.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: run scripts/install-deps.sh as root (Debian package systemd) to check the unit file")
	}
	return p
}

// verifyUnit runs systemd-analyze verify on unit text, its ExecStart
// pointing at bin (verify refuses a unit whose program does not exist), and
// returns what it printed. systemd 252 exits 0 even for a key it cannot
// parse and only prints a line, so the output is the verdict.
func verifyUnit(t *testing.T, analyze, bin, text string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "paxosd.service")
	text = strings.Replace(text, "ExecStart=/usr/local/bin/paxosd ", "ExecStart="+bin+" ", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestSystemdUnitVerifies: contrib/systemd/paxosd.service passes
// systemd-analyze verify without a word, keeps its hardening (systemd's own
// exposure score), and never starts paxosd with a one-shot flag. A unit
// with a typo must fail the same check, so that a check that passes
// everything is caught too.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{unitExec, "Type=notify", "StateDirectory=paxosd", "Restart=on-failure", "LimitNOFILE=", "RestartPreventExitStatus=2"} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("the unit has no line %q", want)
		}
	}
	for i, line := range strings.Split(unit, "\n") {
		if !strings.HasPrefix(line, "#") && (strings.Contains(line, "new-cluster") || strings.Contains(line, "NEW_CLUSTER") || strings.Contains(line, "rejoin")) {
			t.Errorf("line %d names a one-shot flag outside a comment: %s", i+1, line)
		}
	}
	bin := buildBinary(t)
	if out, err := verifyUnit(t, analyze, bin, unit); err != nil || out != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	for _, typo := range [][2]string{
		{"NoNewPrivileges=yes", "NoNewPrivilege=yes"},
		{"Type=notify", "Type=notfy"},
		{"ProtectHome=yes", "ProtectHome=yse"},
	} {
		bad := strings.Replace(unit, typo[0], typo[1], 1)
		if out, err := verifyUnit(t, analyze, bin, bad); err == nil && out == "" {
			t.Errorf("systemd-analyze verify passed a unit with %q", typo[1])
		}
	}

	// The exposure level systemd computes from the sandboxing settings
	// (0 best, 10 worst; --threshold counts tenths); the unit scores 1.4.
	// --offline needs systemd 250.
	path := filepath.Join(t.TempDir(), "paxosd.service")
	os.WriteFile(path, []byte(strings.Replace(unit, "/usr/local/bin/paxosd ", bin+" ", 1)), 0o644)
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", "--threshold=20", path).CombinedOutput()
	switch {
	case err != nil && bytes.Contains(out, []byte("unrecognized option")):
		t.Logf("systemd-analyze security --offline is not supported here: %s", bytes.TrimSpace(out))
	case err != nil:
		t.Errorf("systemd-analyze security: %v; the exposure level is above 2:\n%s", err, out)
	}
}

// TestSystemdExampleConfig: contrib/systemd/paxosd.yaml is a valid
// configuration for the unit (parsed and checked, not started: its peers
// are example addresses), and writes where the unit lets it.
func TestSystemdExampleConfig(t *testing.T) {
	sf, src, err := parseServe([]string{"--config", exampleYAML}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sf.nodeConfig(io.Discard)
	if err != nil {
		t.Fatal(src.explain(err))
	}
	if cfg.ID != 1 || len(cfg.Peers) != 3 || cfg.DataDir != "/var/lib/paxosd" || cfg.Listen != ":7401" {
		t.Errorf("id %d, %d peers, data-dir %q, listen %q", cfg.ID, len(cfg.Peers), cfg.DataDir, cfg.Listen)
	}
}

// TestSystemdNotify: under a service manager (a datagram socket in
// $NOTIFY_SOCKET), serve says READY=1 once it accepts connections, keeps
// STATUS current with the leader, and says STOPPING=1 on SIGTERM, then
// exits 0.
func TestSystemdNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	addr := freePorts(t, 1)[0]
	var logb bytes.Buffer
	cmd := exec.Command(bin, "serve", "--id", "1", "--peers", "1="+addr, "--data-dir", filepath.Join(dir, "data"), "--new-cluster", "--log-format", "json")
	cmd.Env = append(cleanEnv(), "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	next := func() string {
		t.Helper()
		mgr.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v\nlog:\n%s", err, logb.String())
		}
		return string(buf[:n])
	}
	ready := next()
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=node 1 serving on "+addr) {
		t.Fatalf("first notification %q, want READY=1 and a STATUS", ready)
	}
	// Ready means serving: the port takes connections at once.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Fatalf("READY=1 sent, but %s refuses connections: %v", addr, err)
	} else {
		c.Close()
	}
	if !strings.HasSuffix(ready, "leader: node 1") {
		// A single member elects itself within an election timeout; the
		// STATUS line follows within statusEvery.
		if st := next(); st != "STATUS=node 1 serving on "+addr+"; leader: node 1" {
			t.Fatalf("second notification %q, want the STATUS naming the leader", st)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if st := next(); st != "STOPPING=1" {
		t.Fatalf("after SIGTERM: %q, want STOPPING=1", st)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, logb.String())
	}
}

// cleanEnv is this process's environment without PAXOSD_ variables, so a
// developer's shell cannot change what a test's serve reads.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAXOSD_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}
