package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runAs runs the binary with stdin and the environment env added to a
// clean one (no $PAXOSD_* of the test's own).
func runAs(t *testing.T, bin, stdin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// TestAuthCLI is issue 15's "done when" for users and roles, with three
// serve processes: once auth is enabled, a user whose role grants
// --readwrite on app/ can put app/x, hold lock app/lock and lead election
// app/election, but not put other/x (permission denied, nothing written);
// a client without credentials is told authentication is required; only
// root manages users; revoking the role takes effect on the user's next
// request. Every command is the paxosd binary, as an operator types it.
func TestAuthCLI(t *testing.T) {
	c := startCluster(t)
	bin := c.bin
	ep := []string{"--endpoints", strings.Join(c.addrs, ","), "--timeout", "10s"}
	// with puts the cluster's flags after the command's name, before any
	// "--" (after which lock and elect take their COMMAND).
	with := func(args []string) []string {
		for i, a := range args {
			if a == "--" {
				return append(append(append([]string{}, args[:i]...), ep...), args[i:]...)
			}
		}
		return append(append([]string{}, args...), ep...)
	}
	anon := func(stdin string, args ...string) (int, string, string) {
		return runAs(t, bin, stdin, nil, with(args)...)
	}
	root := func(args ...string) (int, string, string) {
		return runAs(t, bin, "", []string{"PAXOSD_USER=root", "PAXOSD_PASSWORD=rootpw"}, with(args)...)
	}
	alice := func(args ...string) (int, string, string) {
		return runAs(t, bin, "", []string{"PAXOSD_USER=alice:alicepw"}, with(args)...)
	}
	ok := func(what string) func(int, string, string) string {
		return func(code int, out, errOut string) string {
			t.Helper()
			if code != 0 {
				t.Fatalf("%s: exit %d, stdout %q, stderr %q", what, code, out, errOut)
			}
			return out
		}
	}

	// The level rises once every member speaks protocol 10; until then
	// the command is refused as invalid.
	var last string
	waitFor(t, "user add root", 30*time.Second, func() bool {
		code, _, errOut := anon("rootpw\n", "user", "add", "root", "--password-stdin")
		if code != 0 && errOut != last {
			last = errOut
			t.Logf("user add root: exit %d, %s", code, errOut)
		}
		return code == 0
	})
	if code, _, errOut := anon("", "auth", "enable"); code != 0 {
		t.Fatalf("auth enable with root: exit %d, %q", code, errOut)
	}
	// From here on, only root.
	code, _, errOut := anon("alicepw\n", "user", "add", "alice", "--password-stdin")
	if code != 1 || errOut != "paxosd: error: authentication required: auth is enabled on this cluster; pass --user NAME (or $PAXOSD_USER), or a client certificate\n" {
		t.Fatalf("user add without credentials: exit %d, %q", code, errOut)
	}
	ok("user add alice")(runAs(t, bin, "alicepw\n", []string{"PAXOSD_USER=root:rootpw"}, with([]string{"user", "add", "alice", "--password-stdin"})...))
	ok("role add")(root("role", "add", "app"))
	ok("role grant")(root("role", "grant", "app", "--prefix", "app/", "--readwrite"))
	ok("grant-role")(root("user", "grant-role", "alice", "app"))

	if out := ok("alice puts app/x")(alice("kv", "put", "app/x", "1")); out != "OK\n" {
		t.Fatalf("alice puts app/x: %q", out)
	}
	code, out, errOut := alice("kv", "put", "other/x", "1")
	if code != 1 || out != "" || errOut != "paxosd: error: permission denied: alice may not write \"other/x\"\n" {
		t.Fatalf("alice puts other/x: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := root("kv", "get", "other/x"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("other/x after the refused put: exit %d, %q (want not found: nothing written)", code, errOut)
	}
	if out := ok("alice locks app/lock")(alice("lock", "app/lock", "--", "sh", "-c", "echo token=$PAXOSD_LOCK_TOKEN")); !strings.HasPrefix(out, "token=") {
		t.Fatalf("alice's lock command printed %q", out)
	}
	if code, _, errOut := alice("lock", "other/lock", "--", "true"); code == 0 || !strings.Contains(errOut, "permission denied: alice may not write \"other/lock\"") {
		t.Fatalf("alice locks other/lock: exit %d, %q", code, errOut)
	}
	if out := ok("alice campaigns")(alice("elect", "app/election", "--value", "a", "--", "sh", "-c", "echo term=$PAXOSD_ELECTION_TERM")); !strings.HasPrefix(out, "term=") {
		t.Fatalf("alice's elect command printed %q", out)
	}
	if code, _, errOut := anon("", "kv", "get", "app/x"); code != 1 || !strings.Contains(errOut, "authentication required") {
		t.Fatalf("get without credentials: exit %d, %q", code, errOut)
	}
	if code, _, errOut := alice("user", "list"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice lists users: exit %d, %q", code, errOut)
	}
	// A backup holds every key, whoever may read them: root's only.
	backup := filepath.Join(t.TempDir(), "backup.snap")
	if code, _, errOut := alice("snapshot", "save", backup); code != 1 || !strings.Contains(errOut, "permission denied: SnapshotSave is root's only, and alice is not root") {
		t.Fatalf("alice saves a snapshot: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(backup); !os.IsNotExist(err) {
		t.Fatalf("a refused save left %s (%v)", backup, err)
	}
	if out := ok("root saves a snapshot")(root("snapshot", "save", backup)); !strings.HasPrefix(out, "saved "+backup) {
		t.Fatalf("root's snapshot save printed %q", out)
	}
	if code, _, errOut := runAs(t, bin, "", []string{"PAXOSD_USER=alice:wrong"}, with([]string{"kv", "get", "app/x"})...); code != 1 ||
		errOut != "paxosd: error: authentication failed: wrong user name or password\n" {
		t.Fatalf("a wrong password: exit %d, %q", code, errOut)
	}

	var users struct {
		Users []struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(ok("user list")(root("user", "list", "-w", "json"))), &users); err != nil ||
		len(users.Users) != 2 || users.Users[0].Name != "alice" || len(users.Users[0].Roles) != 1 {
		t.Fatalf("user list -w json: %+v %v", users, err)
	}
	if out := ok("role list")(root("role", "list")); out != "app\n\treadwrite \"app/\"\n" {
		t.Fatalf("role list: %q", out)
	}
	if out := ok("auth status")(alice("auth", "status")); out != "auth enabled; you are alice\n" {
		t.Fatalf("auth status: %q", out)
	}

	// Revoked: alice's very next request is refused.
	ok("revoke-role")(root("user", "revoke-role", "alice", "app"))
	if code, _, errOut := alice("kv", "put", "app/x", "2"); code != 1 || !strings.Contains(errOut, "permission denied: alice may not write \"app/x\"") {
		t.Fatalf("alice puts after the revoke: exit %d, %q", code, errOut)
	}
	if out := ok("get app/x")(root("kv", "get", "app/x")); out != "1\n" {
		t.Fatalf("app/x = %q after the refused put", out)
	}
	// Each failed attempt was logged by the node that refused it.
	logs := ""
	for i := range c.addrs {
		b, _ := os.ReadFile(filepath.Join(c.dir, "node"+string(rune('1'+i))+".log"))
		logs += string(b)
	}
	if !strings.Contains(logs, `"message":"authentication failed"`) {
		t.Fatal("no node logged the failed authentication")
	}
}

// TestAuthClientCertificates: with TLS and --client-cert-auth, a client
// certificate's CommonName is the user, without a password: root's
// certificate manages users, alice's may write under app/ and not
// elsewhere, a certificate naming no user is refused; on the HTTP port the
// status page needs root's certificate while /metrics stays open.
func TestAuthClientCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	pki := newTestPKI(t, "auth CA", "root", "alice", "nobody")
	ca, caFile, userFiles := pki.ca, pki.caFile, pki.users
	ports := freePorts(t, 6)
	c := launch(&cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: ports[:3], http: ports[3:], extra: pki.serveFlags})
	as := func(user string, args ...string) (int, string, string) {
		f := userFiles[user]
		return runAs(t, c.bin, "", nil, append(args, "--endpoints", strings.Join(c.addrs, ","), "--timeout", "10s",
			"--cacert", caFile, "--cert", f[0], "--key", f[1])...)
	}
	waitFor(t, "user add root", 30*time.Second, func() bool {
		code, _, _ := as("root", "user", "add", "root", "--no-password")
		return code == 0
	})
	for _, args := range [][]string{
		{"user", "add", "alice", "--no-password"},
		{"role", "add", "app"},
		{"role", "grant", "app", "--prefix", "app/", "--readwrite"},
		{"user", "grant-role", "alice", "app"},
		{"auth", "enable"},
	} {
		if code, out, errOut := as("root", args...); code != 0 {
			t.Fatalf("%v: exit %d, %q %q", args, code, out, errOut)
		}
	}
	if code, out, errOut := as("alice", "kv", "put", "app/x", "1"); code != 0 || out != "OK\n" {
		t.Fatalf("alice puts app/x with her certificate: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := as("alice", "kv", "put", "other/x", "1"); code != 1 || errOut != "paxosd: error: permission denied: alice may not write \"other/x\"\n" {
		t.Fatalf("alice puts other/x: exit %d, %q", code, errOut)
	}
	if code, out, _ := as("alice", "auth", "status"); code != 0 || out != "auth enabled; you are alice\n" {
		t.Fatalf("alice's auth status: exit %d, %q", code, out)
	}
	if code, _, errOut := as("nobody", "kv", "get", "app/x"); code != 1 || !strings.Contains(errOut, `permission denied: user "nobody" does not exist`) {
		t.Fatalf("a certificate naming no user: exit %d, %q", code, errOut)
	}
	if code, _, errOut := as("alice", "user", "list"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice lists users: exit %d, %q", code, errOut)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	get := func(user, path string) int {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(userFiles[user][0], userFiles[user][1])
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
		resp, err := hc.Get("https://" + c.http[0] + path)
		if err != nil {
			t.Fatalf("GET %s as %s: %v", path, user, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "node 1 to apply auth enable", 5*time.Second, func() bool { return get("alice", "/status.json") == 401 })
	if got := get("root", "/status.json"); got != 200 {
		t.Errorf("GET /status.json with root's certificate: %d", got)
	}
	if got := get("alice", "/metrics"); got != 200 {
		t.Errorf("GET /metrics with alice's certificate: %d", got)
	}
}
