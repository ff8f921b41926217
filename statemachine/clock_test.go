package statemachine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// TestClockMonotonic: the clock takes the largest Now seen, a clock
// command changes nothing else by itself, and it never enters the
// duplicate table.
func TestClockMonotonic(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	for _, step := range []struct{ now, want uint64 }{{0, 0}, {5, 5}, {3, 5}, {5, 5}, {1 << 62, 1 << 62}, {7, 1 << 62}} {
		r := h.do(clockCmd(step.now))
		if r.Err != nil || h.sm.Clock() != step.want {
			t.Fatalf("clock %d: %v, clock %d, want %d", step.now, r.Err, h.sm.Clock(), step.want)
		}
	}
	if len(h.sm.dedup.clients) != 0 || h.sm.Revision() != 0 {
		t.Fatalf("clock commands changed the store or the duplicate table")
	}
	before := h.sm.Hash()
	h.sm.clock++
	if h.sm.Hash() == before {
		t.Fatalf("the hash does not cover the clock")
	}
}

// coordGen produces a random stream of every kind of command: a few
// clients, sessions opened and kept alive or not, locks, elections, fenced
// writes, clock steps (forward, jumps, and stale ones), retries with the
// same sequence number, acknowledgements and garbage.
type coordGen struct {
	rng      *rand.Rand
	seq      map[uint64]uint64
	acked    map[uint64]uint64
	recent   map[uint64][]Command // per client, the last commands, for retries
	sessions []uint64             // ids the stream has seen opened
	now      uint64
	clients  int
}

func newCoordGen(seed uint64, clients int) *coordGen {
	return &coordGen{
		rng: rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1)),
		seq: map[uint64]uint64{}, acked: map[uint64]uint64{}, recent: map[uint64][]Command{}, clients: clients,
	}
}

var (
	coordLocks     = []string{"l1", "l2", "l3"}
	coordElections = []string{"e1", "e2"}
)

func (g *coordGen) session() uint64 {
	if len(g.sessions) == 0 || g.rng.IntN(20) == 0 {
		return uint64(g.rng.IntN(5)) // often bogus, sometimes 0 (invalid)
	}
	// Mostly recent sessions: old ones have likely expired.
	n := len(g.sessions)
	return g.sessions[n-1-g.rng.IntN(min(n, 6))]
}

// next returns the next command; learn feeds back the result so that the
// stream uses the sessions it opened.
func (g *coordGen) next() Command {
	r := g.rng
	var c Command
	if x := r.IntN(100); x < 12 {
		g.now += uint64(r.IntN(900))
		switch r.IntN(20) {
		case 0:
			g.now += 5000
		case 1:
			return clockCmd(g.now - min(g.now, 3000)) // stale: ignored
		}
		return clockCmd(g.now)
	} else if x < 14 {
		return Command{Op: notLogOps[r.IntN(len(notLogOps))], Name: "l1", SessionID: 1}
	}
	client := uint64(r.IntN(g.clients + 1))
	if client != 0 && len(g.recent[client]) > 0 && r.IntN(10) == 0 {
		rc := g.recent[client]
		return rc[r.IntN(len(rc))] // retry
	}
	switch x := r.IntN(100); {
	case x < 8:
		c = openCmd([]uint64{1000, 1500, 3000, 10000}[r.IntN(4)])
	case x < 20:
		c = keepCmd(g.session())
	case x < 23:
		c = closeCmd(g.session())
	case x < 43:
		c = acquireCmd(coordLocks[r.IntN(3)], g.session(), r.IntN(10) < 7, []uint64{0, 0, 200, 1500}[r.IntN(4)])
	case x < 53:
		c = releaseCmd(coordLocks[r.IntN(3)], g.session())
	case x < 57:
		c = checkCmd(coordLocks[r.IntN(3)], uint64(r.IntN(40)))
	case x < 67:
		c = campaignCmd(coordElections[r.IntN(2)], g.session(), fmt.Sprint("v", r.IntN(3)))
	case x < 71:
		c = proclaimCmd(coordElections[r.IntN(2)], g.session(), fmt.Sprint("p", r.IntN(3)))
	case x < 77:
		c = resignCmd(coordElections[r.IntN(2)], g.session())
	case x < 80:
		c = leaderCmd(coordElections[r.IntN(2)])
	case x < 90:
		c = fenced(putCmd(fmt.Sprint("k", r.IntN(3)), "v"), coordLocks[r.IntN(3)], uint64(r.IntN(40)))
		switch r.IntN(3) {
		case 0:
			c.Op, c.Value = OpDelete, nil
		case 1:
			c.FenceName, c.FenceToken = "", 0
		}
	default:
		c = putCmd(fmt.Sprint("k", r.IntN(3)), fmt.Sprint(r.IntN(9)))
	}
	if client != 0 {
		g.seq[client]++
		c.ClientID, c.Seq = client, g.seq[client]
		if r.IntN(8) == 0 && g.acked[client] < c.Seq {
			g.acked[client] += uint64(r.IntN(int(c.Seq-g.acked[client]) + 1))
		}
		c.AckedBelow = min(g.acked[client], c.Seq)
		rc := append(g.recent[client], c)
		g.recent[client] = rc[max(0, len(rc)-4):]
	}
	return c
}

func (g *coordGen) learn(c Command, r Result) {
	if c.Op == OpSessionOpen && r.Err == nil && !slices.Contains(g.sessions, r.Session.ID) {
		g.sessions = append(g.sessions, r.Session.ID)
	}
}

// TestSessionLockElectionDeterminism feeds two state machines the same
// random stream of every kind of command (garbage included) and checks that
// they give the same results and the same late answers in the same order,
// and end with the same Hash; a different stream ends elsewhere.
func TestSessionLockElectionDeterminism(t *testing.T) {
	hashes := map[uint64]bool{}
	for seed := uint64(1); seed <= 4; seed++ {
		opts := SMOptions{ClientsMax: 3, ResultsPerClientMax: 6}
		a, b := NewStateMachine(opts), NewStateMachine(opts)
		g := newCoordGen(seed, 4)
		slot := paxos.Slot(1)
		var answers int
		for i := 0; i < 20000; i++ {
			if g.rng.IntN(3) == 0 {
				slot++
			}
			var cmd []byte
			var c Command
			if g.rng.IntN(100) == 0 {
				cmd = make([]byte, g.rng.IntN(8))
				for j := range cmd {
					cmd[j] = byte(g.rng.Uint32())
				}
			} else {
				c = g.next()
				cmd = EncodeCommand(&c)
			}
			ra, rb := a.Apply(slot, cmd), b.Apply(slot, slices.Clone(cmd))
			if !resultEqual(ra, rb) || fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
				t.Fatalf("seed %d command %d %s: results differ:\n %s\n %s", seed, i, c.String(), describeResult(ra), describeResult(rb))
			}
			aa, ab := a.TakeAnswers(), b.TakeAnswers()
			if describeAnswers(aa) != describeAnswers(ab) {
				t.Fatalf("seed %d command %d %s: answers differ:\n %s\n %s", seed, i, c.String(), describeAnswers(aa), describeAnswers(ab))
			}
			answers += len(aa)
			g.learn(c, ra)
		}
		if a.Hash() != b.Hash() {
			t.Fatalf("seed %d: hashes differ", seed)
		}
		if answers < 100 || a.fence < 100 || a.sessions.last < 100 {
			t.Fatalf("seed %d: the stream did too little: %d answers, %d tokens, %d sessions", seed, answers, a.fence, a.sessions.last)
		}
		hashes[a.Hash()] = true
	}
	if len(hashes) != 4 {
		t.Fatalf("different streams gave the same hash")
	}
}

// TestLockElectionInvariantsRandom runs long random streams and checks
// after every command: the structural invariants (checkCoordInvariants:
// one holder per lock, and sessions agree; at most one leader per election;
// ...), that each lock's tokens and each election's terms strictly grow
// across grants, that the lock check and fenced writes accept only the
// current token, and that every late answer answers a command that was
// pending, exactly once.
func TestLockElectionInvariantsRandom(t *testing.T) {
	for seed := uint64(100); seed < 106; seed++ {
		h := newSMHarness(t, SMOptions{ClientsMax: 4, ResultsPerClientMax: 5, ElectionHistoryMax: 8})
		g := newCoordGen(seed, 4)
		lastToken := map[string]uint64{}  // per lock: the last token granted
		lastTerm := map[string]uint64{}   // per election: the last term
		lastSeq := map[string]uint64{}    // per election: the last change seen
		pending := map[[2]uint64]string{} // (client, seq) -> what it waits for
		var grants, expired, changes int
		for i := 0; i < 15000; i++ {
			c := g.next()
			before := h.sm.Revision()
			r := h.do(c)
			g.learn(c, r)
			where := func() string { return fmt.Sprintf("seed %d command %d %s: %s", seed, i, c.String(), describeResult(r)) }
			checkCoordInvariants(t, h.sm)

			// Pending results and late answers.
			if r.Pending {
				if c.Op != OpLockAcquire && c.Op != OpCampaign || r.Err != nil {
					t.Fatalf("%s: pending", where())
				}
				if c.ClientID != 0 {
					pending[[2]uint64{c.ClientID, c.Seq}] = c.Op.String() + " " + c.Name
				}
			}
			for _, a := range h.sm.TakeAnswers() {
				if a.Result.Pending {
					t.Fatalf("%s: a pending answer %s", where(), describeAnswers([]Answer{a}))
				}
				if a.ClientID == 0 {
					continue
				}
				k := [2]uint64{a.ClientID, a.Seq}
				if _, ok := pending[k]; !ok {
					t.Fatalf("%s: answer %s to a command that is not waiting", where(), describeAnswers([]Answer{a}))
				}
				delete(pending, k)
				if a.Result.Err != nil {
					expired++
				}
			}

			// Tokens and terms grow with every grant.
			for name, l := range h.sm.locks.m {
				if l.holder != 0 && l.token != lastToken[name] {
					if l.token < lastToken[name] {
						t.Fatalf("%s: lock %s granted with token %d after %d", where(), name, l.token, lastToken[name])
					}
					lastToken[name] = l.token
					grants++
				}
			}
			for name, e := range h.sm.elect.m {
				if e.leader != 0 && e.term != lastTerm[name] {
					if e.term < lastTerm[name] {
						t.Fatalf("%s: election %s term %d after %d", where(), name, e.term, lastTerm[name])
					}
					lastTerm[name] = e.term
				}
				// The observable history has no gaps.
				chs, err := h.sm.ElectionChanges(name, lastSeq[name])
				if err != nil {
					t.Fatalf("%s: election %s: %v", where(), name, err)
				}
				for _, ch := range chs {
					if ch.Seq != lastSeq[name]+1 {
						t.Fatalf("%s: election %s: change %d after %d", where(), name, ch.Seq, lastSeq[name])
					}
					lastSeq[name] = ch.Seq
					changes++
				}
			}

			// Lock checks and fenced writes accept exactly the current token.
			if r.Err == nil && !r.Pending {
				if c.Op == OpLockCheck {
					l := h.sm.locks.m[c.Name]
					if r.Held != (l != nil && l.holder != 0 && l.token == c.Token) {
						t.Fatalf("%s: check disagrees with the lock %+v", where(), l)
					}
				}
			}
			if c.Op.fenceable() && c.FenceName != "" && r.Err == nil && r.Revision == before+1 {
				if l := h.sm.locks.m[c.FenceName]; l == nil || l.token != c.FenceToken {
					t.Fatalf("%s: fenced write accepted, lock %+v", where(), l)
				}
			}
		}
		// Whatever still waits is queued under the same (client, seq).
		for k, what := range pending {
			found := false
			for _, l := range h.sm.locks.m {
				for _, w := range l.waiters {
					found = found || w.client == k[0] && w.seq == k[1]
				}
			}
			for _, e := range h.sm.elect.m {
				for _, cd := range e.candidates {
					found = found || cd.client == k[0] && cd.seq == k[1]
				}
			}
			if !found {
				t.Fatalf("seed %d: %d/%d (%s) was never answered and no longer waits", seed, k[0], k[1], what)
			}
		}
		if grants < 200 || expired < 20 || changes < 200 {
			t.Fatalf("seed %d: the stream did too little: %d grants, %d error answers, %d election changes", seed, grants, expired, changes)
		}
	}
}
