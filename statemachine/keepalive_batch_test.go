package statemachine

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func batchCmd(ids ...uint64) Command { return Command{Op: OpSessionKeepAliveBatch, SessionIDs: ids} }

// TestKeepAliveBatchAsSingles: a batch renews each live session exactly as
// a keep-alive of its own does (deadline = clock + TTL, restarted by the
// next clock command) and reports the others: the state after a batch is
// the state after the same sessions' single keep-alives, hash included
// (a batch adds no state, so snapshots and the state check are
// unaffected), and the same sessions expire at the same clock commands.
func TestKeepAliveBatchAsSingles(t *testing.T) {
	batch, singles := newSMHarness(t, SMOptions{}), newSMHarness(t, SMOptions{})
	both := func(c Command) {
		t.Helper()
		rb, rs := batch.do(c), singles.do(c)
		if rb.Err != nil || rs.Err != nil {
			t.Fatalf("%s: %v / %v", c.String(), rb.Err, rs.Err)
		}
	}
	both(levelCmd(LevelKeepAliveBatch))
	// Sessions 1-4 with different TTLs; 4 is closed before the batch.
	for _, ttl := range []uint64{1000, 2000, 5000, 3000} {
		both(openCmd(ttl))
	}
	both(clockCmd(0))
	both(closeCmd(4))
	both(clockCmd(900))
	r := batch.do(batchCmd(3, 99, 1, 4, 1))
	if r.Err != nil || !slices.Equal(r.Expired, []uint64{99, 4}) {
		t.Fatalf("batch: %s, expired %v; want expired [99 4]", describeResult(r), r.Expired)
	}
	for _, id := range []uint64{3, 1} {
		if r := singles.do(keepCmd(id)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	batch.slot++ // the applied slot is hashed: one batch, two singles
	for _, now := range []uint64{950, 1899, 1900, 2100, 5949, 5950, 6000} {
		both(clockCmd(now))
		if batch.sm.Hash() != singles.sm.Hash() {
			t.Fatalf("clock %d: hash after the batch %x, after single keep-alives %x", now, batch.sm.Hash(), singles.sm.Hash())
		}
		var got, want []uint64
		for _, s := range batch.sm.Sessions() {
			got = append(got, s.ID)
		}
		for _, s := range singles.sm.Sessions() {
			want = append(want, s.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("clock %d: sessions %v after the batch, %v after single keep-alives", now, got, want)
		}
	}
	// Renewed at 900 and restarted by the clock at 950: session 1 (1 s)
	// lives until 1950, session 2 (not in the batch) ended at 2000, session
	// 3 (5 s) until 5950.
	if n := batch.sm.SessionCount(); n != 0 {
		t.Fatalf("%d sessions left at clock 6000", n)
	}
}

// TestKeepAliveBatchExpiry: the sessions a batch renews outlive the ones
// it does not, by the clock.
func TestKeepAliveBatchExpiry(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	atLevel(h, LevelKeepAliveBatch)
	h.do(openCmd(1000))
	h.do(openCmd(1000))
	h.do(clockCmd(0))
	h.do(clockCmd(800))
	if r := h.do(batchCmd(2)); r.Err != nil || len(r.Expired) != 0 {
		t.Fatalf("batch: %s", describeResult(r))
	}
	h.do(clockCmd(1000))
	if _, ok := h.sm.Session(1); ok {
		t.Fatal("session 1, not in the batch, outlived its TTL")
	}
	s, ok := h.sm.Session(2)
	if !ok || s.RemainingMs != 1000 {
		t.Fatalf("session 2: %+v %v, want 1000 ms left (renewed, restarted by the clock at 1000)", s, ok)
	}
	if r := h.do(batchCmd(1, 2)); !slices.Equal(r.Expired, []uint64{1}) {
		t.Fatalf("batch of an expired and a live session: expired %v, want [1]", r.Expired)
	}
}

// TestKeepAliveBatchRetryRenewsAgain: a batch is not kept for retries: the
// same (client, seq) applied again renews again (the client counts from
// the attempt it saw acknowledged, so this only moves the cluster's
// deadline later) and stores nothing in the duplicate table.
func TestKeepAliveBatchRetryRenewsAgain(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	atLevel(h, LevelKeepAliveBatch)
	h.do(openCmd(1000))
	h.do(clockCmd(0))
	c := cs(7, 1, batchCmd(1))
	h.do(clockCmd(300))
	h.do(c)
	h.do(clockCmd(600))
	h.do(c)
	h.do(clockCmd(700))
	// Renewed at 300 (restarted at 600: 1600), again at 600 (restarted
	// at 700: 1700).
	if s, _ := h.sm.Session(1); s.RemainingMs != 1000 {
		t.Fatalf("after a retry at clock 600: %d ms left, want 1000 (renewed again)", s.RemainingMs)
	}
	if e := h.sm.dedup.clients[7]; e != nil && len(e.results) != 0 {
		t.Fatalf("the batch's result was stored for retries: %d results", len(e.results))
	}
}

// TestKeepAliveBatchBelowLevel: below LevelKeepAliveBatch a batch is
// refused as invalid and changes nothing, as an older build refuses the
// unknown op 47, so a mixed cluster never diverges.
func TestKeepAliveBatchBelowLevel(t *testing.T) {
	for _, level := range []uint64{0, LevelTxn} {
		h, old := newSMHarness(t, SMOptions{}), newSMHarness(t, SMOptions{})
		for _, x := range []*smHarness{h, old} {
			atLevel(x, level)
			x.do(openCmd(1000))
			x.do(clockCmd(0))
			x.do(clockCmd(500))
		}
		r := h.do(cs(1, 1, batchCmd(1)))
		if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "cluster level 12") {
			t.Fatalf("level %d: %v, want ErrInvalid naming level 12", level, r.Err)
		}
		if o := old.do(cs(1, 1, Command{Op: Op(99), SessionID: 1})); !errors.Is(o.Err, ErrInvalid) {
			t.Fatalf("level %d: unknown op: %v", level, o.Err)
		}
		if h.sm.Hash() != old.sm.Hash() {
			t.Fatalf("level %d: a refused batch changed the state", level)
		}
		if s, _ := h.sm.Session(1); s.RemainingMs != 500 {
			t.Fatalf("level %d: a refused batch renewed the session (%d ms left)", level, s.RemainingMs)
		}
	}
}

// TestKeepAliveBatchInvalid: empty, too long, and id 0.
func TestKeepAliveBatchInvalid(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	atLevel(h, LevelKeepAliveBatch)
	h.do(openCmd(1000))
	long := make([]uint64, SessionKeepAliveBatchMax+1)
	for i := range long {
		long[i] = 1
	}
	for _, tt := range []struct {
		ids  []uint64
		want error
		msg  string
	}{
		{nil, ErrInvalid, "without session ids"},
		{long, ErrTooLarge, "limit is 4096"},
		{[]uint64{1, 0}, ErrInvalid, "session id 0"},
	} {
		r := h.do(batchCmd(tt.ids...))
		if !errors.Is(r.Err, tt.want) || !strings.Contains(r.Err.Error(), tt.msg) {
			t.Errorf("%d ids: %v, want %v saying %q", len(tt.ids), r.Err, tt.want, tt.msg)
		}
	}
	if r := h.do(batchCmd(long[:SessionKeepAliveBatchMax]...)); r.Err != nil || len(r.Expired) != 0 {
		t.Fatalf("a batch at the limit: %v", r.Err)
	}
}
