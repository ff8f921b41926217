package paxos

import (
	"fmt"
	"strings"
)

// SlotsAheadMax bounds how far ahead of what a node knows a message may
// place entries: ahead of the receiver's (or the sending leader's)
// watermark for Accepts and Decides, ahead of the slot a Phase 1 starts at
// for Promises. A leader proposes at most a window beyond its watermark, so
// honest messages stay far below it; a slot further out can only come from
// a crafted or corrupted frame, and taking it would make Phase 1 walk (and
// fill with no-ops) an absurd range of slots.
const SlotsAheadMax = 1 << 20

// SlotMax and RoundMax bound every slot and ballot round a message may
// name. Honest values start at 1 and grow by one (a slot per proposal, a
// round per campaign): neither comes near 2^62 or 2^48 in any cluster's
// life (2^48 campaigns at a thousand a second take 9,000 years). A value
// beyond is a crafted or corrupted frame, and taking it would leave the
// arithmetic on it (slot+1, from+SlotsAheadMax, round+1 when the next
// leader takes over) without room: a promise of round 2^64-1 would make
// every later ballot wrap to round 0, below it, and no member could lead
// again.
const (
	SlotMax  Slot   = 1 << 62
	RoundMax uint64 = 1 << 48
)

// MsgType names a protocol message. The names follow the paper.
type MsgType uint8

const (
	// MsgPreVote asks whether a Prepare with Ballot would be welcome: the
	// receiver grants it only if it has not heard from a leader for an
	// election timeout, and the candidate's Commit is not behind its own.
	// Nothing is persisted; a minority node coming back therefore cannot
	// depose a healthy leader by raising ballots.
	MsgPreVote MsgType = iota + 1
	// MsgPreVoteReply answers a PreVote; Reject says it was refused.
	MsgPreVoteReply
	// MsgPrepare is Phase 1a: Ballot, and Slot = the lowest slot the
	// proposer does not know to be chosen (or, asking for the next page of
	// a Promise, the slot after the last one reported). More says the
	// proposer takes a Promise in pages.
	MsgPrepare
	// MsgPromise is Phase 1b: the acceptor promised Ballot and reports in
	// Entries every value it accepted at or above the Prepare's Slot (which
	// Slot repeats). With More, the report stopped at the page limit: it
	// covers the slots up to the last entry's, and the rest follows when
	// the proposer asks again from the slot after it. Commit is the
	// sender's chosen watermark: its entries at or below it hold chosen
	// values.
	MsgPromise
	// MsgAccept is Phase 2a: accept Entries (their values) under Ballot.
	// Commit piggybacks the leader's chosen watermark.
	MsgAccept
	// MsgAccepted is Phase 2b: the acceptor accepted Slots under Ballot.
	// Commit is the sender's chosen watermark.
	MsgAccepted
	// MsgNack refuses a Prepare or Accept (or a heartbeat) because the
	// acceptor promised the higher Ballot carried here.
	MsgNack
	// MsgHeartbeat asserts leadership under Ballot and carries the leader's
	// Commit watermark.
	MsgHeartbeat
	// MsgHeartbeatAck answers a heartbeat or a Decide; Commit is the
	// follower's chosen watermark, which the leader uses to push catch-up.
	MsgHeartbeatAck
	// MsgDecide carries chosen Entries (catch-up) to a follower that is
	// behind; each entry's Ballot is the one under which it was chosen.
	// Under no Ballot (zero) it comes from a node that answers a lagging
	// node's PreVote with what it lacks (replica.catchUpPeer): facts all
	// the same, but no leader's contact.
	MsgDecide
	// MsgForward carries client commands (Cmds) from a follower to the
	// leader, which proposes them.
	MsgForward
	// MsgSnapshot tells a follower that the chosen slots it lacks are gone
	// from the leader's log (truncated below a snapshot): it must fetch the
	// leader's snapshot. Commit is the leader's watermark, Slot its
	// truncation point. The node layer, not the core, moves the snapshot.
	// Under no Ballot it answers a PreVote or Prepare from a node behind
	// the sender's log: that node fetches the sender's snapshot.
	MsgSnapshot
	// MsgTimeoutNow (protocol version 3) hands leadership over: the leader
	// of Ballot has stepped down, giving up its lease, and asks the
	// receiver to campaign at once. The receiver's Prepares then carry
	// Transfer = Ballot, which lets the members that pledged their lease to
	// that leader promise without waiting out the lease.
	MsgTimeoutNow
)

var msgTypeNames = [...]string{
	MsgPreVote:      "PreVote",
	MsgPreVoteReply: "PreVoteReply",
	MsgPrepare:      "Prepare",
	MsgPromise:      "Promise",
	MsgAccept:       "Accept",
	MsgAccepted:     "Accepted",
	MsgNack:         "Nack",
	MsgHeartbeat:    "Heartbeat",
	MsgHeartbeatAck: "HeartbeatAck",
	MsgDecide:       "Decide",
	MsgForward:      "Forward",
	MsgSnapshot:     "Snapshot",
	MsgTimeoutNow:   "TimeoutNow",
}

func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) && msgTypeNames[t] != "" {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Valid reports whether t is a known message type.
func (t MsgType) Valid() bool { return t >= MsgPreVote && t <= MsgTimeoutNow }

// Message is every protocol message, one flat struct (as etcd's raftpb):
// each type uses the fields its comment names and leaves the rest zero.
type Message struct {
	Type    MsgType
	From    NodeID
	To      NodeID
	Ballot  Ballot
	Slot    Slot
	Commit  Slot
	Reject  bool
	Entries []Entry
	Slots   []Slot
	Cmds    [][]byte
	// More pages a Promise (see MsgPrepare and MsgPromise).
	More bool
	// Transfer, on a Prepare, is the ballot of the leader that handed its
	// leadership to the sender (MsgTimeoutNow); zero otherwise.
	Transfer Ballot
	// Addr, on a Snapshot offer, is where the sender serves clients (and
	// so its snapshot); empty otherwise. The protocol core leaves it
	// empty: the node that sends the offer fills it in. A node that lagged
	// through the membership change that added the sender knows no
	// address for it, and without one could never fetch the snapshot
	// that would catch it up.
	Addr string
}

// String describes m on one line, stably, for logs and golden tests.
func (m Message) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d->%d %s b=%s", m.From, m.To, m.Type, m.Ballot)
	if m.Slot != 0 {
		fmt.Fprintf(&b, " slot=%d", m.Slot)
	}
	if m.Commit != 0 {
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	}
	if m.Reject {
		b.WriteString(" reject")
	}
	if m.More {
		b.WriteString(" more")
	}
	if !m.Transfer.IsZero() {
		fmt.Fprintf(&b, " transfer=%s", m.Transfer)
	}
	if m.Addr != "" {
		fmt.Fprintf(&b, " addr=%s", m.Addr)
	}
	if len(m.Entries) > 0 {
		b.WriteString(" entries=[")
		for i, e := range m.Entries {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(e.String())
		}
		b.WriteByte(']')
	}
	if len(m.Slots) > 0 {
		fmt.Fprintf(&b, " slots=%v", m.Slots)
	}
	if len(m.Cmds) > 0 {
		fmt.Fprintf(&b, " cmds=%d", len(m.Cmds))
	}
	return b.String()
}
