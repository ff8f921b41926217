package proposer

import (
	"errors"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// The pending queue is bounded by bytes as well as by count: a burst of
// large values is refused with ErrBusy rather than held in memory without
// limit. A command larger than the bound alone is still taken when the
// queue is empty (the value limit is the service's business).
func TestPendingBoundedByBytes(t *testing.T) {
	p := newProposer(3, func(c *paxos.Config) { c.PendingBytesMax = 100 })
	elect(t, p, 0)
	for i := 0; i < 3; i++ {
		if err := p.Propose(make([]byte, 30)); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if err := p.Propose(make([]byte, 30)); !errors.Is(err, paxos.ErrBusy) {
		t.Fatalf("a fourth 30-byte command into a 100-byte queue: %v, want ErrBusy", err)
	}
	p.Flush(0)
	if err := p.Propose(make([]byte, 500)); err != nil {
		t.Fatalf("an oversized command into an empty queue: %v", err)
	}
}

// The leader stops opening slots once InflightBytesMax bytes are in flight,
// however many slots the window would allow, and opens more as slots are
// chosen; with nothing in flight one slot always goes.
func TestInflightBoundedByBytes(t *testing.T) {
	p := newProposer(3, func(c *paxos.Config) { c.InflightBytesMax = 250; c.BatchBytesMax = 100 })
	elect(t, p, 0)
	for i := 0; i < 10; i++ {
		_ = p.Propose(make([]byte, 100))
	}
	_, proposed := p.Flush(0)
	if len(proposed) != 3 || p.InflightBytes() < 250 {
		t.Fatalf("proposed %d slots (%d bytes in flight), want 3 (the third crosses 250 bytes)", len(proposed), p.InflightBytes())
	}
	if _, more := p.Flush(0); len(more) != 0 {
		t.Fatalf("proposed %d more slots past the byte bound", len(more))
	}
	p.OnCommit(2)
	if _, more := p.Flush(2); len(more) != 2 {
		t.Errorf("after two slots were chosen, proposed %d more, want 2", len(more))
	}
	q := newProposer(3, func(c *paxos.Config) { c.InflightBytesMax = 10 })
	elect(t, q, 0)
	_ = q.Propose(make([]byte, 100))
	if _, got := q.Flush(0); len(got) != 1 {
		t.Errorf("with nothing in flight, a value over the bound got %d slots, want 1", len(got))
	}
}

// A command only the leader's own view justifies (the cluster clock) is
// proposed ahead of client commands while the node leads, refused when it
// does not, and dropped — never forwarded to the next leader — when the
// node stops leading before it got a slot.
func TestProposeOwnIsNeverForwarded(t *testing.T) {
	p := newProposer(3, func(c *paxos.Config) { c.WindowSlots = 1 })
	if err := p.ProposeOwn([]byte("clock")); !errors.Is(err, paxos.ErrNoLeader) {
		t.Fatalf("ProposeOwn on a follower: %v, want ErrNoLeader", err)
	}
	elect(t, p, 0)
	_ = p.Propose([]byte("client"))
	_ = p.ProposeOwn([]byte("clock"))
	if _, got := p.Flush(0); len(got) != 1 || string(got[0].Value.Cmds[0]) != "clock" {
		t.Fatalf("first slot %v, want the leader's own command first", got)
	}
	_ = p.ProposeOwn([]byte("clock2")) // the window (1 slot) is full
	p.OnNack(paxos.Message{Type: paxos.MsgNack, From: 2, To: 1, Ballot: b(9, 2)})
	p.OnLeaderContact(b(9, 2))
	msgs, _ := p.Flush(0)
	fwd := ofType(msgs, paxos.MsgForward)
	if len(fwd) != 1 || len(fwd[0].Cmds) != 1 || string(fwd[0].Cmds[0]) != "client" {
		t.Errorf("after stepping down forwarded %v, want only the client command", fwd)
	}
}

// Reference: §2.2 Phase 1(b), paged. The candidate counts an acceptor
// only once the last page of its Promise is in; it asks for each next page
// from the slot after the previous page's last entry, ignores a page that
// does not start there (a stale or repeated one), and recovers the
// highest-ballot value of every slot across all pages.
func TestPhase1CollectsPagedPromises(t *testing.T) {
	p := newProposer(3, nil)
	preps := prepare(t, p, paxos.Ballot{}, 0)
	bal := preps[0].Ballot
	if !preps[0].More {
		t.Fatalf("Prepare %s does not offer to take pages", preps[0])
	}
	page := func(from, slot paxos.Slot, v string, more bool) paxos.Message {
		return paxos.Message{Type: paxos.MsgPromise, From: 2, To: 1, Ballot: bal, Slot: from, More: more,
			Entries: []paxos.Entry{{Slot: slot, Ballot: b(1, 3), Value: val(v)}}}
	}
	msgs, _, _ := onPromise(p, page(1, 1, "a", true), 0)
	if len(msgs) != 1 || msgs[0].Type != paxos.MsgPrepare || msgs[0].To != 2 || msgs[0].Slot != 2 || !msgs[0].More {
		t.Fatalf("after a first page, sent %v; want a Prepare to 2 from slot 2", msgs)
	}
	if msgs, _, _ := onPromise(p, page(1, 1, "a", true), 0); len(msgs) != 0 {
		t.Fatalf("a repeated first page was taken: %v", msgs)
	}
	self := paxos.Message{Type: paxos.MsgPromise, From: 1, To: 1, Ballot: bal, Slot: 1}
	if _, _, _ = onPromise(p, self, 0); p.Role() == Leader {
		t.Fatal("led with an acceptor whose Promise was still coming in pages")
	}
	_, proposed, _ := onPromise(p, page(2, 3, "c", false), 0)
	if p.Role() != Leader {
		t.Fatal("not leading after the last page of a quorum's Promises")
	}
	got := map[paxos.Slot]string{}
	for _, e := range proposed {
		got[e.Slot] = e.Value.String()
		if len(e.Value.Cmds) > 0 {
			got[e.Slot] = string(e.Value.Cmds[0])
		}
	}
	if got[1] != "a" || got[2] != "noop" || got[3] != "c" || len(got) != 3 {
		t.Errorf("re-proposed %v, want a, a no-op, c at slots 1..3", got)
	}
}
