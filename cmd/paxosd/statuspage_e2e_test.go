//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paxosd/paxosd/client"
)

// The status page in a real browser: headless Chromium from Debian
// (scripts/install-deps.sh installs the chromium package; `make test` runs
// it first) loads / from a node of a three-process cluster, runs the
// page's script against the live cluster, and the test reads the DOM the
// script left (--dump-dom). The screenshot, and the DOM, are kept as
// artifacts: in $PAXOSD_TEST_ARTIFACTS if set, else in
// cmd/paxosd/testdata/artifacts/ (ignored by git):
//
//	go test -count=1 ./cmd/paxosd -run TestStatusPageInBrowser -v

// artifactsDir is where the test keeps what a human may want to look at.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("PAXOSD_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chromium finds the browser, or skips the test saying how to get it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed: `make deps` as root installs it (Debian package chromium, scripts/install-deps.sh)")
	return ""
}

// runChromium loads url headless with args, and returns its stdout. The
// virtual time budget lets the page's timers run (several refreshes)
// without waiting for them in real time; virtual time stands still while
// a fetch is pending, so every refresh sees the cluster's answer.
// --no-sandbox: Chromium's sandbox refuses to run as root.
func runChromium(t *testing.T, browser, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	argv := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000"}, args...)
	cmd := exec.CommandContext(ctx, browser, append(argv, url)...)
	// Its own process group, so that a hung browser is killed with every
	// helper process it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever it left behind
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// TestStatusPageInBrowser: after writes, a session holding a lock and
// leading an election, the page served by a follower shows — once its
// script has run — the leader, the three members with their roles, the
// lock with its holder and token, the election, the session, and a
// throughput figure, and it has refreshed itself. With the other follower
// killed, it shows that member unreachable and the rest as before.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test with a browser")
	}
	browser := chromium(t)
	ports := freePorts(t, 6)
	c := launch(&cluster{t: t, bin: buildBinary(t), dir: t.TempDir(), addrs: ports[:3], http: ports[3:]})
	waitFor(t, "a leader", 15*time.Second, func() bool { return c.leader() >= 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 20 {
		if _, err := cl.Put(ctx, fmt.Sprintf("page/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := cl.NewSession(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(context.Background())
	lk, err := sess.TryLock(ctx, "jobs/nightly")
	if err != nil {
		t.Fatal(err)
	}
	led, err := sess.Campaign(ctx, "primary", []byte("host-a"))
	if err != nil {
		t.Fatal(err)
	}

	var leader int
	waitFor(t, "a leader", 15*time.Second, func() bool { leader = c.leader(); return leader >= 0 })
	node := (leader + 1) % len(c.addrs) // a follower: it must ask the others
	base := "http://" + c.http[node] + "/"
	// The page's figures cover whole seconds: wait for the one with the
	// writes to close (and the follower to apply the lock and election).
	waitFor(t, "the writes, the lock and the election in /status.json", 10*time.Second, func() bool {
		var s struct {
			Throughput struct {
				Ops float64 `json:"ops_per_sec"`
			} `json:"throughput"`
			Locks []struct {
				Name string `json:"name"`
			} `json:"locks"`
			Elections []struct {
				Name string `json:"name"`
			} `json:"elections"`
		}
		resp, err := http.Get(base + "status.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&s) == nil && s.Throughput.Ops > 0 && len(s.Locks) > 0 && len(s.Elections) > 0
	})

	dir := artifactsDir(t)
	dom := runChromium(t, browser, base, "--dump-dom")
	if err := os.WriteFile(filepath.Join(dir, "statuspage.dom.html"), dom, 0o644); err != nil {
		t.Fatal(err)
	}
	d := parseDOM(string(dom))
	checkDOM(t, d, c, leader+1, sess.ID(), lk, led)

	screenshot(t, browser, base, filepath.Join(dir, "statuspage.png"))

	// The other follower goes down: the page still loads, and says so.
	down := len(c.addrs) - leader - node // the index that is neither
	c.kill(down)
	d = parseDOM(string(runChromium(t, browser, base, "--dump-dom")))
	for i, r := range d.rows("data-member") {
		reachable, role := "true", r.attrs["data-role"]
		if i == down {
			reachable = "false"
			if role != "unreachable" || !strings.HasPrefix(r.cell("reachable"), "no") || r.cell("lag") != "–" {
				t.Errorf("member %d is down, its row says %v %v", i+1, r.attrs, r.cells)
			}
		}
		if r.attrs["data-reachable"] != reachable || (i == leader) != (role == "leader") {
			t.Errorf("member %d (leader %d, down %d): row %v", i+1, leader+1, down+1, r.attrs)
		}
	}
	if l := d.byID("leader"); l.attrs["data-leader"] != strconv.Itoa(leader+1) {
		t.Errorf("with member %d down: leader %+v, want %d", down+1, l, leader+1)
	}
	screenshot(t, browser, base, filepath.Join(dir, "statuspage-member-down.png"))
}

// screenshot saves the page as png at 1280x900 and checks it is one.
func screenshot(t *testing.T, browser, url, png string) {
	t.Helper()
	os.Remove(png)
	runChromium(t, browser, url, "--screenshot="+png, "--window-size=1280,900")
	shot, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s: %v (%d bytes)", png, err, len(shot))
	}
	abs, _ := filepath.Abs(png)
	t.Logf("screenshot: %s (%d bytes)", abs, len(shot))
}

// checkDOM asserts on what the page's script rendered.
func checkDOM(t *testing.T, d dom, c *cluster, leaderID int, session uint64, lk *client.Lock, led client.Leader) {
	t.Helper()
	body := d.first("body")
	if updates, _ := strconv.Atoi(body.attrs["data-updates"]); body.attrs["data-state"] != "live" || updates < 2 {
		t.Errorf("body %v: want a live page refreshed at least twice", body.attrs)
	}
	if e := d.byID("error"); e.attrs == nil || !e.has("hidden") {
		t.Errorf("the error banner shows: %+v", e)
	}
	if l := d.byID("leader"); l.attrs["data-leader"] != strconv.Itoa(leaderID) || !strings.Contains(l.text, fmt.Sprintf("node %d (%s)", leaderID, c.addrs[leaderID-1])) {
		t.Errorf("leader %+v, want node %d", l, leaderID)
	}

	rows := d.rows("data-member")
	if len(rows) != len(c.addrs) {
		t.Fatalf("%d member rows, want %d: %+v", len(rows), len(c.addrs), rows)
	}
	for i, r := range rows {
		id := strconv.Itoa(i + 1)
		want := "follower"
		if i+1 == leaderID {
			want = "leader"
		}
		if r.attrs["data-member"] != id || r.attrs["data-role"] != want || r.attrs["data-reachable"] != "true" ||
			r.cell("addr") != c.addrs[i] || r.cell("reachable") != "yes" {
			t.Errorf("member row %v %v, want node %s at %s, %s, reachable", r.attrs, r.cells, id, c.addrs[i], want)
		}
		if _, err := strconv.ParseUint(strings.ReplaceAll(r.cell("commit"), ",", ""), 10, 64); err != nil {
			t.Errorf("member %s: commit %q", id, r.cell("commit"))
		}
	}

	sid, token := strconv.FormatUint(session, 10), strconv.FormatUint(lk.Token, 10)
	if r := d.row("data-lock", lk.Name); r.attrs["data-holder"] != sid || r.attrs["data-token"] != token ||
		r.cell("holder") != sid || r.cell("token") != token {
		t.Errorf("lock row %v %v, want %q held by session %s with token %s", r.attrs, r.cells, lk.Name, sid, token)
	}
	if r := d.row("data-election", led.Election); r.attrs["data-leader-session"] != sid ||
		r.attrs["data-term"] != strconv.FormatUint(led.Term, 10) || r.cell("value") != string(led.Value) {
		t.Errorf("election row %v %v, want %q led by session %s, term %d", r.attrs, r.cells, led.Election, sid, led.Term)
	}
	if r := d.row("data-session", sid); r.cell("locks") != lk.Name || r.cell("elections") != led.Election {
		t.Errorf("session row %v %v, want session %s holding %q in %q", r.attrs, r.cells, sid, lk.Name, led.Election)
	}

	ops := d.byID("ops")
	if v, err := strconv.ParseFloat(ops.text, 64); err != nil || v <= 0 || ops.attrs["data-ops"] == "" {
		t.Errorf("throughput figure %+v: want a positive number of ops/s", ops)
	}
}

// A dumped DOM, read just enough for the assertions: the start tags in
// document order, each with its attributes and the text right after it.
// Chromium serializes attributes with double quotes and escapes them.
type dom []domElement

type domElement struct {
	tag   string
	attrs map[string]string
	text  string
	cells map[string]string // a <tr>'s cells by data-field (rows only)
}

var (
	startTagRE = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*/?>([^<]*)`)
	attrRE     = regexp.MustCompile(`([^\s=]+)(?:="([^"]*)")?`)
)

func parseDOM(s string) dom {
	var d dom
	for _, m := range startTagRE.FindAllStringSubmatch(s, -1) {
		e := domElement{tag: strings.ToLower(m[1]), attrs: map[string]string{}, text: strings.TrimSpace(html.UnescapeString(m[3]))}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			e.attrs[a[1]] = html.UnescapeString(a[2])
		}
		d = append(d, e)
	}
	// A row's cells are the <td>s (and the badges in them) that follow it.
	for i := range d {
		if d[i].tag != "tr" {
			continue
		}
		d[i].cells = map[string]string{}
		for j := i + 1; j < len(d) && (d[j].tag == "td" || d[j].tag == "span"); j++ {
			if f, ok := d[j].attrs["data-field"]; ok {
				d[i].cells[f] = d[j].text
			}
		}
	}
	return d
}

func (e domElement) has(attr string) bool     { _, ok := e.attrs[attr]; return ok }
func (e domElement) cell(field string) string { return e.cells[field] }

func (d dom) first(tag string) domElement {
	for _, e := range d {
		if e.tag == tag {
			return e
		}
	}
	return domElement{}
}

func (d dom) byID(id string) domElement {
	for _, e := range d {
		if e.attrs["id"] == id {
			return e
		}
	}
	return domElement{}
}

// rows returns the <tr>s carrying attr, in document order.
func (d dom) rows(attr string) []domElement {
	var out []domElement
	for _, e := range d {
		if e.tag == "tr" && e.has(attr) {
			out = append(out, e)
		}
	}
	return out
}

// row returns the <tr> whose attr is value.
func (d dom) row(attr, value string) domElement {
	for _, e := range d.rows(attr) {
		if e.attrs[attr] == value {
			return e
		}
	}
	return domElement{}
}
