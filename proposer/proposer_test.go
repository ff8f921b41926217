package proposer

import (
	"errors"
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// The references are to Lamport, "Paxos Made Simple" (2001). PreVote and
// check-quorum are not in the paper; they refine the choice of the
// distinguished proposer (§2.4, §3), which the paper leaves to timeouts.

const (
	heartbeatTicks = 2
	electionTicks  = 10
)

// fakeRand returns v (capped to n-1) and records every n it is asked for.
type fakeRand struct {
	v     int
	calls []int
}

func (r *fakeRand) Intn(n int) int {
	r.calls = append(r.calls, n)
	if r.v >= n {
		return n - 1
	}
	return r.v
}

func b(round uint64, node paxos.NodeID) paxos.Ballot { return paxos.Ballot{Round: round, Node: node} }

func val(s string) paxos.Value { return paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{[]byte(s)}} }

func noVotes(paxos.Slot, paxos.NodeID) bool { return false }

// newProposer returns node 1 of an n-node cluster; edit adjusts the config.
func newProposer(n int, edit func(*paxos.Config)) *Proposer {
	cfg := paxos.Config{ID: 1, HeartbeatTicks: heartbeatTicks, ElectionTicks: electionTicks, Rand: &fakeRand{}}
	for i := 1; i <= n; i++ {
		cfg.Members = append(cfg.Members, paxos.NodeID(i))
	}
	if edit != nil {
		edit(&cfg)
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return New(cfg)
}

// preVote ticks p until its election timeout fires and returns the PreVotes.
func preVote(t *testing.T, p *Proposer, promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	t.Helper()
	for i := 0; i < 2*electionTicks; i++ {
		if ms := p.Tick(promised, commit, noVotes); len(ms) > 0 {
			return ms
		}
	}
	t.Fatal("no PreVote within 2*ElectionTicks")
	return nil
}

func grant(pv paxos.Message) paxos.Message {
	return paxos.Message{Type: paxos.MsgPreVoteReply, From: pv.To, To: pv.From, Ballot: pv.Ballot}
}

// prepare drives p through a granted PreVote and returns its Prepares.
func prepare(t *testing.T, p *Proposer, promised paxos.Ballot, commit paxos.Slot) []paxos.Message {
	t.Helper()
	var out []paxos.Message
	for _, pv := range preVote(t, p, promised, commit) {
		out = append(out, p.OnPreVoteReply(grant(pv), promised, commit)...)
	}
	if p.Role() != Candidate || len(out) == 0 {
		t.Fatalf("role %s after PreVote grants, want candidate", p.Role())
	}
	return out
}

func promise(prep paxos.Message, commit paxos.Slot, entries ...paxos.Entry) paxos.Message {
	return paxos.Message{Type: paxos.MsgPromise, From: prep.To, To: prep.From, Ballot: prep.Ballot, Slot: prep.Slot, Commit: commit, Entries: entries}
}

// onPromise hands p a Promise as the replica does, and, if p leads after
// it, flushes as the replica's next Ready does: what it proposes (the
// recovered values first) comes with the Promise that made it lead.
func onPromise(p *Proposer, m paxos.Message, commit paxos.Slot) (msgs []paxos.Message, proposed, chosen []paxos.Entry) {
	msgs, chosen = p.OnPromise(m, commit)
	if p.Role() == Leader {
		more, prop := p.Flush(commit)
		msgs, proposed = append(msgs, more...), prop
	}
	return msgs, proposed, chosen
}

// elect makes p lead with empty Promises from every member.
func elect(t *testing.T, p *Proposer, commit paxos.Slot) {
	t.Helper()
	for _, m := range prepare(t, p, paxos.Ballot{}, commit) {
		onPromise(p, promise(m, commit), commit)
	}
	if p.Role() != Leader {
		t.Fatalf("role %s after a quorum of Promises, want leader", p.Role())
	}
}

func ofType(ms []paxos.Message, typ paxos.MsgType) []paxos.Message {
	var out []paxos.Message
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

func recipients(ms []paxos.Message) []paxos.NodeID {
	var out []paxos.NodeID
	for _, m := range ms {
		out = append(out, m.To)
	}
	return out
}

// Reference: §2.4 and §3 (a new leader is elected using timeouts). The
// timeout is drawn from [ElectionTicks, 2*ElectionTicks) through the
// injected Rand, and when it expires the follower asks the others with a
// PreVote (not to itself) before disturbing anyone with a Prepare.
func TestElectionTimeoutIsRandomizedThenPreVote(t *testing.T) {
	for _, jitter := range []int{0, 4, electionTicks - 1} {
		r := &fakeRand{v: jitter}
		p := newProposer(3, func(c *paxos.Config) { c.Rand = r })
		if len(r.calls) == 0 || r.calls[0] != electionTicks {
			t.Fatalf("Rand.Intn called with %v, want [%d ...]", r.calls, electionTicks)
		}
		for i := 1; i < electionTicks+jitter; i++ {
			if ms := p.Tick(paxos.Ballot{}, 3, noVotes); len(ms) != 0 {
				t.Fatalf("jitter %d: tick %d sent %v before the timeout", jitter, i, ms)
			}
		}
		ms := p.Tick(paxos.Ballot{}, 3, noVotes)
		if got := recipients(ofType(ms, paxos.MsgPreVote)); len(ms) != 2 || !reflect.DeepEqual(got, []paxos.NodeID{2, 3}) {
			t.Fatalf("jitter %d: tick %d sent %v, want PreVotes to 2 and 3", jitter, electionTicks+jitter, ms)
		}
		if ms[0].Ballot != b(1, 1) || ms[0].Commit != 3 || p.Role() != PreCandidate {
			t.Errorf("jitter %d: PreVote %s as %s, want b=1.1 commit=3 as precandidate", jitter, ms[0], p.Role())
		}
	}
}

// silentSinceStart ticks p for an election timeout with no leader heard.
func silentSinceStart(t *testing.T, p *Proposer) {
	for i := 0; i < electionTicks; i++ {
		p.Tick(paxos.Ballot{}, 5, noVotes)
	}
}

// Reference: §2.4 (progress needs one distinguished proposer). A PreVote
// is granted only when no leader was heard for an election timeout and the
// candidate knows at least as many chosen slots; a leader never grants.
func TestHandlePreVote(t *testing.T) {
	for _, tc := range []struct {
		name         string
		setup        func(t *testing.T, p *Proposer)
		theirCommit  paxos.Slot
		ourCommit    paxos.Slot
		wantRejected bool
	}{
		{"no leader heard for ElectionTicks since start", silentSinceStart, 5, 5, false},
		{"candidate ahead", silentSinceStart, 6, 5, false},
		{"candidate behind", silentSinceStart, 4, 5, true},
		// A node that just (re)started may have forgotten a leader it
		// acknowledged a moment ago; granting at once could let a rival
		// be elected while that leader's lease still holds.
		{"just started", nil, 5, 5, true},
		{"leader heard within ElectionTicks", func(t *testing.T, p *Proposer) {
			p.OnLeaderContact(b(1, 2))
			for i := 0; i < electionTicks-1; i++ {
				p.Tick(paxos.Ballot{}, 5, noVotes)
			}
		}, 5, 5, true},
		{"leader silent for ElectionTicks", func(t *testing.T, p *Proposer) {
			p.OnLeaderContact(b(1, 2))
			for i := 0; i < electionTicks; i++ {
				p.Tick(paxos.Ballot{}, 5, noVotes)
			}
		}, 5, 5, false},
		{"receiver leads", func(t *testing.T, p *Proposer) { elect(t, p, 5) }, 5, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Jitter ElectionTicks-1 keeps p from campaigning itself here.
			p := newProposer(3, func(c *paxos.Config) { c.Rand = &fakeRand{v: electionTicks - 1} })
			if tc.setup != nil {
				tc.setup(t, p)
			}
			pv := paxos.Message{Type: paxos.MsgPreVote, From: 3, To: 1, Ballot: b(7, 3), Commit: tc.theirCommit}
			r := p.HandlePreVote(pv, tc.ourCommit)
			want := paxos.Message{Type: paxos.MsgPreVoteReply, From: 1, To: 3, Ballot: b(7, 3), Commit: tc.ourCommit, Reject: tc.wantRejected}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("reply = %s, want %s", r, want)
			}
		})
	}
}

// Reference: §2.2 Phase 1(a) and §3. A quorum of PreVote grants (this node
// counting itself; rejections never count) starts Phase 1: a Prepare to
// every member, this node's own acceptor included, with a ballot above any
// promise seen and Slot = the first slot not known chosen.
func TestPreVoteQuorumSendsPrepareToAllMembers(t *testing.T) {
	for _, n := range []int{3, 5} {
		p := newProposer(n, nil)
		promised, commit := b(3, 2), paxos.Slot(7)
		pvs := preVote(t, p, promised, commit)
		reject := grant(pvs[0])
		reject.Reject = true
		if ms := p.OnPreVoteReply(reject, promised, commit); len(ms) != 0 {
			t.Fatalf("%d nodes: a rejection sent %v", n, ms)
		}
		need := n / 2 // grants from others; this node's own makes a majority
		var prepares []paxos.Message
		for i, pv := range pvs[1 : need+1] {
			prepares = p.OnPreVoteReply(grant(pv), promised, commit)
			if i < need-1 && len(prepares) != 0 {
				t.Fatalf("%d nodes: %d grants sent %v", n, i+1, prepares)
			}
		}
		if got := recipients(prepares); len(got) != n || got[0] != 1 {
			t.Fatalf("%d nodes: Prepare sent to %v, want all %d members", n, got, n)
		}
		for _, m := range prepares {
			if m.Type != paxos.MsgPrepare || m.Ballot != b(4, 1) || m.Slot != commit+1 {
				t.Errorf("%d nodes: sent %s, want Prepare b=4.1 slot=8", n, m)
			}
		}
	}
}

// Reference: §2.2 Phase 2(a) and §3. For each slot from the Prepare's Slot
// up to the highest reported, the new leader proposes the value of the
// highest-numbered proposal reported (whichever order Promises arrive in),
// fills a slot nobody reported with a no-op, and gives new commands the
// slots after that.
func TestPhase1ProposesHighestBallotValueAndNoopForHoles(t *testing.T) {
	fromTwo := []paxos.Entry{{Slot: 5, Ballot: b(1, 1), Value: val("A")}, {Slot: 7, Ballot: b(1, 1), Value: val("C")}}
	fromThree := []paxos.Entry{{Slot: 5, Ballot: b(2, 2), Value: val("B")}}
	for _, reversed := range []bool{false, true} {
		p := newProposer(3, nil)
		prep := prepare(t, p, b(2, 2), 4)
		nb := prep[0].Ballot
		if prep[0].Slot != 5 || !b(2, 2).Less(nb) {
			t.Fatalf("Prepare %s, want slot 5 and a ballot above 2.2", prep[0])
		}
		first, second := promise(prep[1], 4, fromTwo...), promise(prep[2], 4, fromThree...)
		if reversed {
			first, second = second, first
		}
		onPromise(p, first, 4)
		msgs, proposed, chosen := onPromise(p, second, 4)
		want := []paxos.Entry{{Slot: 5, Ballot: nb, Value: val("B")}, {Slot: 6, Ballot: nb, Value: paxos.Noop}, {Slot: 7, Ballot: nb, Value: val("C")}}
		if p.Role() != Leader || !reflect.DeepEqual(proposed, want) || len(chosen) != 0 {
			t.Fatalf("reversed=%v: role %s proposed %v chosen %v, want leader proposing %v", reversed, p.Role(), proposed, chosen, want)
		}
		if accepts := ofType(msgs, paxos.MsgAccept); len(accepts) != 3 || !reflect.DeepEqual(accepts[0].Entries, want) {
			t.Errorf("reversed=%v: Accepts %v, want the proposals to all 3 members", reversed, accepts)
		}
		if err := p.Propose([]byte("D")); err != nil {
			t.Fatal(err)
		}
		if _, next := p.Flush(4); len(next) != 1 || next[0].Slot != 8 {
			t.Errorf("reversed=%v: new command proposed as %v, want slot 8", reversed, next)
		}
	}
}

// Reference: §2.3 and §3. An entry at or below a promiser's chosen watermark
// holds a chosen value: the new leader learns it as chosen instead of
// proposing it again.
func TestPhase1ReturnsEntriesAtOrBelowPromiserCommitAsChosen(t *testing.T) {
	p := newProposer(3, nil)
	prep := prepare(t, p, paxos.Ballot{}, 4)
	reported := []paxos.Entry{
		{Slot: 5, Ballot: b(1, 2), Value: val("A")},
		{Slot: 6, Ballot: b(1, 2), Value: val("B")},
		{Slot: 7, Ballot: b(1, 2), Value: val("C")},
	}
	onPromise(p, promise(prep[1], 6, reported...), 4)
	_, proposed, chosen := onPromise(p, promise(prep[2], 4), 4)
	if !reflect.DeepEqual(chosen, reported[:2]) {
		t.Errorf("chosen = %v, want %v", chosen, reported[:2])
	}
	want := []paxos.Entry{{Slot: 7, Ballot: prep[0].Ballot, Value: val("C")}}
	if !reflect.DeepEqual(proposed, want) || p.NextSlot() != 8 {
		t.Errorf("proposed = %v next slot %d, want %v and 8", proposed, p.NextSlot(), want)
	}
}

// Reference: §2.4 (a proposer told of a higher-numbered prepare abandons its
// proposal). A Nack with a higher ballot makes the leader
// a follower and drops its queued and in-flight proposals; a lower one is
// ignored.
func TestNackWithHigherBallotStepsLeaderDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nack     paxos.Ballot
		wantRole Role
	}{
		{"higher", b(9, 2), Follower},
		{"lower", paxos.Ballot{Round: 0, Node: 3}, Leader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProposer(3, nil)
			elect(t, p, 0)
			_ = p.Propose([]byte("x"))
			p.Flush(0)
			_ = p.Propose([]byte("y"))
			p.OnNack(paxos.Message{Type: paxos.MsgNack, From: 2, To: 1, Ballot: tc.nack})
			if p.Role() != tc.wantRole {
				t.Fatalf("role %s, want %s", p.Role(), tc.wantRole)
			}
			// In-flight slots are given up (their clients retry); the queued,
			// never-proposed "y" stays queued for whichever leader comes next.
			if tc.wantRole == Follower && (p.InFlight() != 0 || p.Pending() != 1 || p.Leader() != 0) {
				t.Errorf("after stepping down: %d in flight, %d pending, leader %d; want 0 in flight, 1 pending, no leader", p.InFlight(), p.Pending(), p.Leader())
			}
			if tc.wantRole == Follower {
				p.OnLeaderContact(b(9, 2))
				msgs, _ := p.Flush(0)
				if len(msgs) != 1 || msgs[0].Type != paxos.MsgForward || msgs[0].To != 2 || string(msgs[0].Cmds[0]) != "y" {
					t.Errorf("queued command after a new leader appeared: %v, want one Forward of y to node 2", msgs)
				}
			}
		})
	}
}

// Reference: §2.4 (the distinguished proposer must be able to communicate
// with a majority). Check-quorum: a leader that hears from nobody for
// ElectionTicks steps down; one answer from a peer makes a majority of 3.
func TestCheckQuorumStepsDownSilentLeader(t *testing.T) {
	for _, heard := range []bool{false, true} {
		p := newProposer(3, nil)
		elect(t, p, 0)
		for i := 1; i < electionTicks; i++ {
			p.Tick(paxos.Ballot{}, 0, noVotes)
		}
		if p.Role() != Leader {
			t.Fatalf("heard=%v: stepped down after %d ticks, before ElectionTicks", heard, electionTicks-1)
		}
		if heard {
			p.MarkActive(2)
		}
		p.Tick(paxos.Ballot{}, 0, noVotes)
		want := Follower
		if heard {
			want = Leader
		}
		if p.Role() != want {
			t.Errorf("heard=%v: role %s after ElectionTicks, want %s", heard, p.Role(), want)
		}
	}
}

// Reference: §3 (the leader may run at most α instances ahead). With
// WindowSlots=2 only two slots are in flight; a slot being chosen lets the
// next one go.
func TestWindowBoundsSlotsInFlight(t *testing.T) {
	p := newProposer(3, func(c *paxos.Config) { c.WindowSlots = 2 })
	elect(t, p, 0)
	var slots []paxos.Slot
	for _, cmd := range []string{"a", "b", "c"} {
		_ = p.Propose([]byte(cmd))
		_, proposed := p.Flush(0)
		for _, e := range proposed {
			slots = append(slots, e.Slot)
		}
	}
	if !reflect.DeepEqual(slots, []paxos.Slot{1, 2}) || p.InFlight() != 2 || p.Pending() != 1 {
		t.Fatalf("proposed slots %v, %d in flight, %d pending; want [1 2], 2, 1", slots, p.InFlight(), p.Pending())
	}
	p.OnCommit(1)
	if _, proposed := p.Flush(1); len(proposed) != 1 || proposed[0].Slot != 3 {
		t.Errorf("after slot 1 was chosen: proposed %v, want slot 3", proposed)
	}
}

// Reference: §3 (one value per instance; batching commands into that value
// goes beyond the paper). Commands proposed before one Flush share a slot,
// cut at BatchBytesMax; a single oversized command still gets its own slot.
func TestFlushBatchesCommandsIntoSlots(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
		want  []int // commands per slot
	}{
		{"all fit", []int{3, 3, 3}, []int{3}},
		{"split at limit", []int{4, 4, 4, 4, 4}, []int{2, 2, 1}},
		{"exactly the limit", []int{5, 5, 1}, []int{2, 1}},
		{"oversized alone", []int{4, 20, 4}, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProposer(3, func(c *paxos.Config) { c.BatchBytesMax = 10 })
			elect(t, p, 0)
			var all [][]byte
			for i, n := range tc.sizes {
				cmd := make([]byte, n)
				cmd[0] = byte('a' + i)
				all = append(all, cmd)
				_ = p.Propose(cmd)
			}
			msgs, proposed := p.Flush(0)
			var per []int
			var got [][]byte
			for _, e := range proposed {
				per = append(per, len(e.Value.Cmds))
				got = append(got, e.Value.Cmds...)
			}
			if !reflect.DeepEqual(per, tc.want) || !reflect.DeepEqual(got, all) {
				t.Errorf("commands per slot %v, want %v (in proposal order)", per, tc.want)
			}
			if accepts := ofType(msgs, paxos.MsgAccept); len(accepts) != 3 {
				t.Errorf("%d Accepts, want one to each of 3 members", len(accepts))
			}
		})
	}
}

// Reference: §3 (clients send commands to the leader). A follower that
// knows the leader forwards queued commands to it in one MsgForward.
func TestFollowerForwardsCommandsToKnownLeader(t *testing.T) {
	p := newProposer(3, nil)
	p.OnLeaderContact(b(1, 2))
	for _, c := range []string{"a", "b"} {
		if err := p.Propose([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, proposed := p.Flush(0)
	want := []paxos.Message{{Type: paxos.MsgForward, From: 1, To: 2, Cmds: [][]byte{[]byte("a"), []byte("b")}}}
	if !reflect.DeepEqual(msgs, want) || proposed != nil {
		t.Fatalf("Flush = %v %v, want %v", msgs, proposed, want)
	}
	if msgs, _ := p.Flush(0); len(msgs) != 0 {
		t.Errorf("second Flush re-sent %v", msgs)
	}
}

// Reference: §3. A follower that knows no leader has nobody to hand a
// command to, and says so.
func TestFollowerWithoutLeaderReturnsErrNoLeader(t *testing.T) {
	p := newProposer(3, nil)
	if err := p.Propose([]byte("a")); !errors.Is(err, paxos.ErrNoLeader) {
		t.Errorf("Propose = %v, want ErrNoLeader", err)
	}
}

// Reference: §2.2 Phase 2(a) over lossy links (§2.1: messages can be lost).
// Once a slot has waited retransmitTicks without a vote, the leader sends
// its Accept again to the acceptors that have not answered — only to them,
// never to itself — and then waits as long again before the next resend:
// a slow acceptor must not be fed the same writes on every heartbeat.
func TestRetransmitToNonVotersOncePerInterval(t *testing.T) {
	p := newProposer(3, nil) // retransmitTicks = max(2, 10/3) = 3
	elect(t, p, 0)
	_ = p.Propose([]byte("x"))
	_, proposed := p.Flush(0)
	voted := func(s paxos.Slot, id paxos.NodeID) bool { return s == 1 && id == 2 }
	var resent []int                              // ticks at which an Accept was resent
	for tick := 1; tick < electionTicks; tick++ { // check-quorum ends it at 10
		ms := p.Tick(paxos.Ballot{}, 0, voted)
		accepts := ofType(ms, paxos.MsgAccept)
		if len(accepts) == 0 {
			continue
		}
		if len(accepts) != 1 || accepts[0].To != 3 || !reflect.DeepEqual(accepts[0].Entries, proposed) {
			t.Fatalf("tick %d: retransmitted %v, want the slot-1 Accept to node 3 only", tick, accepts)
		}
		resent = append(resent, tick)
	}
	// Heartbeats go out every 2 ticks; the slot was sent at tick 0, so it
	// is due at the first heartbeat at least 3 ticks later (4), then at
	// the first one at least 3 ticks after that (8), not at 6.
	if !reflect.DeepEqual(resent, []int{4, 8}) {
		t.Errorf("resent at ticks %v, want [4 8]", resent)
	}
}

// Reference: §3 (clients send commands to the leader). A command handed to
// a node campaigning in PreVote (no leader known) must be refused with
// ErrNoLeader or reach the leader the node then finds; it must not stay
// queued on a follower that never proposes it.
func TestCommandProposedDuringPreVoteIsNotStranded(t *testing.T) {
	p := newProposer(3, nil)
	preVote(t, p, paxos.Ballot{}, 0)
	err := p.Propose([]byte("x"))
	p.OnLeaderContact(b(5, 2))
	msgs, _ := p.Flush(0)
	if !errors.Is(err, paxos.ErrNoLeader) && len(ofType(msgs, paxos.MsgForward)) != 1 {
		t.Errorf("Propose = %v and Flush sent %v: the command was neither refused nor forwarded", err, msgs)
	}
	if p.Pending() != 0 {
		t.Errorf("Pending() = %d on a follower after Flush", p.Pending())
	}
}

// Two followers whose timeouts fire together must not refuse each other:
// campaigning restarts a node's election timer, not its count of the time
// since it last heard a leader, so its PreVote grants still go out and one
// of the two wins this round instead of both waiting for another timeout.
func TestPreCandidateGrantsPeerPreVote(t *testing.T) {
	p := newProposer(3, func(c *paxos.Config) { c.Rand = &fakeRand{v: 0} })
	p.OnLeaderContact(b(1, 2))
	for i := 0; i < electionTicks && p.Role() != PreCandidate; i++ {
		p.Tick(paxos.Ballot{}, 5, noVotes)
	}
	if p.Role() != PreCandidate {
		t.Fatalf("role %s after an election timeout of silence, want precandidate", p.Role())
	}
	r := p.HandlePreVote(paxos.Message{Type: paxos.MsgPreVote, From: 3, To: 1, Ballot: b(2, 3), Commit: 5}, 5)
	if r.Reject {
		t.Fatalf("a precandidate refused a peer's PreVote: %s", r)
	}
}
