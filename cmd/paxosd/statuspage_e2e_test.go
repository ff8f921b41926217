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
// script left (--dump-dom). The screenshots and the DOMs are kept as
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
	want := pageWant{c: c, session: sess.ID(), lock: lk, led: led}
	loadDOM(t, browser, base, filepath.Join(dir, "statuspage.dom.html"), func(d dom) []string {
		return want.check(d, c.leader(), -1)
	})
	screenshot(t, browser, base, filepath.Join(dir, "statuspage.png"))

	// The other follower goes down: the page still loads, shows it
	// unreachable and the rest as before.
	down := len(c.addrs) - leader - node // the index that is neither
	c.kill(down)
	loadDOM(t, browser, base, filepath.Join(dir, "statuspage-member-down.dom.html"), func(d dom) []string {
		return want.check(d, c.leader(), down)
	})
	screenshot(t, browser, base, filepath.Join(dir, "statuspage-member-down.png"))
}

// loadDOM loads the page until check finds nothing wrong with the DOM its
// script left, a few times at most: the cluster's state is eventually
// consistent (a follower applies a moment later, a loaded machine may
// delay a status answer), the assertions are not. The last DOM is kept.
func loadDOM(t *testing.T, browser, url, keep string, check func(dom) []string) {
	t.Helper()
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		raw := runChromium(t, browser, url, "--dump-dom")
		if err := os.WriteFile(keep, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if problems = check(parseDOM(string(raw))); len(problems) == 0 {
			return
		}
		t.Logf("attempt %d: %s", attempt, strings.Join(problems, "; "))
		time.Sleep(time.Second)
	}
	abs, _ := filepath.Abs(keep)
	t.Errorf("the page (DOM kept in %s):\n%s", abs, strings.Join(problems, "\n"))
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

// pageWant is what the test did, which the page must show.
type pageWant struct {
	c       *cluster
	session uint64
	lock    *client.Lock
	led     client.Leader
}

// check lists what is wrong with the page's DOM, given the index of the
// leader (as the cluster reports it now) and of the member that is down
// (-1: none).
func (w pageWant) check(d dom, leader, down int) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	body := d.first("body")
	if updates, _ := strconv.Atoi(body.attrs["data-updates"]); body.attrs["data-state"] != "live" || updates < 2 {
		fail("body %v: want a live page refreshed at least twice", body.attrs)
	}
	if e := d.byID("error"); e.attrs == nil || !e.has("hidden") {
		fail("the error banner shows: %+v", e)
	}
	if leader < 0 {
		return append(bad, "the cluster reports no leader")
	}
	if l := d.byID("leader"); l.attrs["data-leader"] != strconv.Itoa(leader+1) ||
		!strings.Contains(l.text, fmt.Sprintf("node %d (%s)", leader+1, w.c.addrs[leader])) {
		fail("leader %+v, want node %d", l, leader+1)
	}

	rows := d.rows("data-member")
	if len(rows) != len(w.c.addrs) {
		return append(bad, fmt.Sprintf("%d member rows, want %d: %+v", len(rows), len(w.c.addrs), rows))
	}
	for i, r := range rows {
		id, role, reachable := strconv.Itoa(i+1), "follower", "true"
		switch i {
		case leader:
			role = "leader"
		case down:
			role, reachable = "unreachable", "false"
		}
		if r.attrs["data-member"] != id || r.attrs["data-role"] != role || r.attrs["data-reachable"] != reachable ||
			r.cell("addr") != w.c.addrs[i] {
			fail("member row %v %v, want node %s at %s, %s", r.attrs, r.cells, id, w.c.addrs[i], role)
		}
		if i == down {
			if !strings.HasPrefix(r.cell("reachable"), "no") || r.cell("lag") != "–" {
				fail("member %s is down, its row says %v", id, r.cells)
			}
			continue
		}
		if _, err := strconv.ParseUint(strings.ReplaceAll(r.cell("commit"), ",", ""), 10, 64); err != nil || r.cell("reachable") != "yes" {
			fail("member %s: commit %q, reachable %q", id, r.cell("commit"), r.cell("reachable"))
		}
	}

	sid, token := strconv.FormatUint(w.session, 10), strconv.FormatUint(w.lock.Token, 10)
	if r := d.row("data-lock", w.lock.Name); r.attrs["data-holder"] != sid || r.attrs["data-token"] != token ||
		r.cell("holder") != sid || r.cell("token") != token {
		fail("lock row %v %v, want %q held by session %s with token %s", r.attrs, r.cells, w.lock.Name, sid, token)
	}
	if r := d.row("data-election", w.led.Election); r.attrs["data-leader-session"] != sid ||
		r.attrs["data-term"] != strconv.FormatUint(w.led.Term, 10) || r.cell("value") != string(w.led.Value) {
		fail("election row %v %v, want %q led by session %s, term %d", r.attrs, r.cells, w.led.Election, sid, w.led.Term)
	}
	if r := d.row("data-session", sid); r.cell("locks") != w.lock.Name || r.cell("elections") != w.led.Election {
		fail("session row %v %v, want session %s holding %q in %q", r.attrs, r.cells, sid, w.lock.Name, w.led.Election)
	}

	ops := d.byID("ops")
	if v, err := strconv.ParseFloat(ops.text, 64); err != nil || v <= 0 || ops.attrs["data-ops"] == "" {
		fail("throughput figure %+v: want a positive number of ops/s", ops)
	}
	return bad
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
