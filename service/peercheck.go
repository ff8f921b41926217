package service

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
)

// Peer input is checked, not trusted. Every message that arrives on a peer
// connection passes peerChecker.check on the connection's reader goroutine
// before it reaches the node's loop and the core (wire.ServerConfig's
// CheckPeerMessage). A message no honest member sends closes its
// connection, with one warning line (peer, message type, what is wrong)
// and one count in paxosd_peer_messages_rejected_total{reason}; the node
// goes on, and the peer's transport dials again.
//
// The bounds come from what honest members send (the construction sites
// in acceptor/, proposer/ and paxos/replica/), never from the state of the
// receiver: a follower far behind its leader legitimately gets Accepts and
// commits millions of slots ahead of its own, and closing the connection
// that carries them would cut it off from the catch-up it needs. So each
// check relates a message's fields to each other and to the
// configuration, and bounds every slot and round absolutely
// (paxos.SlotMax, paxos.RoundMax). What only the receiver's state can
// judge (a Promise whose entries lie beyond the candidate's horizon, an
// Accepted for a slot not in flight) the core drops silently, as before
// (replica.wellFormed, proposer.OnPromise). docs/SECURITY.md ("Peer
// messages") tabulates every field and where it is checked.

// Reasons label paxosd_peer_messages_rejected_total.
const (
	rejectMember  = "member"  // the sender is not a member
	rejectBallot  = "ballot"  // a ballot out of range or not the sender's (receiver's) own
	rejectSlot    = "slot"    // a slot 0 where one is named, or beyond what the message allows
	rejectOrder   = "order"   // entries or slots not in strictly increasing order
	rejectShape   = "shape"   // a list the message type never carries, or paging without entries
	rejectValue   = "value"   // a value of an unknown kind, or a no-op with commands
	rejectCommand = "command" // a forwarded command only the leader itself may propose
)

// peerRejectReasons are every reason, each exported at zero from the start.
var peerRejectReasons = []string{rejectMember, rejectBallot, rejectSlot, rejectOrder, rejectShape, rejectValue, rejectCommand}

// errBadPeerMessage marks what peerChecker.check refuses.
var errBadPeerMessage = errors.New("bad peer message")

// peerRejection is a refused message: reason is the metric's label, the
// error text says what is wrong.
type peerRejection struct {
	reason string
	text   string
}

func (e *peerRejection) Error() string { return errBadPeerMessage.Error() + ": " + e.text }
func (e *peerRejection) Unwrap() error { return errBadPeerMessage }

func reject(reason, format string, args ...any) error {
	return &peerRejection{reason: reason, text: fmt.Sprintf(format, args...)}
}

// peerRejectReason returns the metric label of an error check returned.
func peerRejectReason(err error) string {
	var r *peerRejection
	if errors.As(err, &r) {
		return r.reason
	}
	return rejectShape
}

// peerChecker holds what the checks need: this node's id. It asks no
// membership: members' views of it differ while a change spreads (see
// check and checkForward). check is safe for concurrent use.
type peerChecker struct {
	self paxos.NodeID
}

func newPeerChecker(self paxos.NodeID) *peerChecker {
	return &peerChecker{self: self}
}

// check returns why m, which arrived from a peer connection addressed to
// this node, is not a message an honest member sends; nil if it may be.
// The transport has already checked that m decodes, that From is the id
// the peer's hello gave and that To is this node. A sender this node does
// not know as a member is heard: a node that lags does not know the
// members added since (the core counts nobody it should not, see
// replica.Step).
func (c *peerChecker) check(m paxos.Message) error {
	if m.From == 0 || m.From == c.self {
		return reject(rejectMember, "node %d is not another node of this cluster", m.From)
	}
	if err := c.checkCommon(m); err != nil {
		return err
	}
	switch m.Type {
	case paxos.MsgPreVote, paxos.MsgHeartbeat, paxos.MsgTimeoutNow:
		return c.owner(m, m.From)
	case paxos.MsgPreVoteReply, paxos.MsgHeartbeatAck:
		// An answer echoes the ballot this node asked (or led) with.
		return c.owner(m, c.self)
	case paxos.MsgNack:
		if m.Ballot.IsZero() {
			return reject(rejectBallot, "a Nack carries the higher ballot its sender promised, never the zero ballot")
		}
		return nil
	case paxos.MsgPrepare:
		return c.checkPrepare(m)
	case paxos.MsgPromise:
		return c.checkPromise(m)
	case paxos.MsgAccept:
		return c.checkAccept(m)
	case paxos.MsgAccepted:
		return c.checkAccepted(m)
	case paxos.MsgDecide:
		return c.checkDecide(m)
	case paxos.MsgSnapshot:
		return c.checkSnapshot(m)
	case paxos.MsgForward:
		return c.checkForward(m)
	}
	return reject(rejectShape, "unknown message type %d", m.Type) // the decoder lets none through
}

// checkCommon applies what holds for every message type: each slot and
// ballot in range, and lists only on the types that carry them.
func (c *peerChecker) checkCommon(m paxos.Message) error {
	if m.Slot > paxos.SlotMax || m.Commit > paxos.SlotMax {
		return reject(rejectSlot, "slot %d, commit %d: beyond the largest slot a cluster reaches (%d)", m.Slot, m.Commit, paxos.SlotMax)
	}
	for _, b := range [...]struct {
		what string
		b    paxos.Ballot
	}{{"ballot", m.Ballot}, {"transfer ballot", m.Transfer}} {
		if err := checkBallot(b.what, b.b); err != nil {
			return err
		}
	}
	if len(m.Entries) > 0 && m.Type != paxos.MsgPromise && m.Type != paxos.MsgAccept && m.Type != paxos.MsgDecide {
		return reject(rejectShape, "%s carries no entries; this one has %d", article(m.Type), len(m.Entries))
	}
	switch {
	case m.Type == paxos.MsgHeartbeatAck && len(m.Slots) > 1:
		// One: the last slot of the Decide it answers (version 20).
		return reject(rejectShape, "a HeartbeatAck carries at most one slot; this one has %d", len(m.Slots))
	case m.Type == paxos.MsgHeartbeatAck && len(m.Slots) == 1 && (m.Slots[0] == 0 || m.Slots[0] > paxos.SlotMax):
		return reject(rejectSlot, "a HeartbeatAck names slot %d: not a slot a Decide carries", m.Slots[0])
	case len(m.Slots) > 0 && m.Type != paxos.MsgAccepted && m.Type != paxos.MsgHeartbeatAck:
		return reject(rejectShape, "%s carries no slots; this one has %d", article(m.Type), len(m.Slots))
	}
	if len(m.Cmds) > 0 && m.Type != paxos.MsgForward {
		return reject(rejectShape, "%s carries no commands; this one has %d", article(m.Type), len(m.Cmds))
	}
	if m.Addr != "" && m.Type != paxos.MsgSnapshot {
		return reject(rejectShape, "%s carries no address; this one has %q", article(m.Type), m.Addr)
	}
	return nil
}

// article names t with its indefinite article, for the error texts.
func article(t paxos.MsgType) string {
	name := t.String()
	if strings.ContainsRune("AEIOU", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// checkBallot: a ballot is zero, or one a proposer made with Next: a round
// from 1 (well below paxos.RoundMax) and a node id. The node need not be a
// member now: entries and promises keep the ballots of members an
// operator has since replaced.
func checkBallot(what string, b paxos.Ballot) error {
	switch {
	case b.IsZero():
		return nil
	case b.Round == 0 || b.Node == 0:
		return reject(rejectBallot, "%s %s: no proposer makes round 0 or node 0", what, b)
	case b.Round > paxos.RoundMax:
		return reject(rejectBallot, "%s %s: round beyond %d, which leaves no room for the ballots after it", what, b, paxos.RoundMax)
	}
	return nil
}

// owner checks that m's ballot is node's: the sender's for what a leader or
// candidate sends under its own ballot, this node's for the answers to it.
func (c *peerChecker) owner(m paxos.Message, node paxos.NodeID) error {
	if m.Ballot.IsZero() || m.Ballot.Node != node {
		return reject(rejectBallot, "%s from node %d under ballot %s, which is not node %d's", m.Type, m.From, m.Ballot, node)
	}
	return nil
}

// checkPrepare: the candidate's own ballot, from a slot (its watermark + 1,
// or the next page's first), and a handed-over leadership below it.
func (c *peerChecker) checkPrepare(m paxos.Message) error {
	if err := c.owner(m, m.From); err != nil {
		return err
	}
	if m.Slot == 0 {
		return reject(rejectSlot, "a Prepare from slot 0: slots start at 1")
	}
	if !m.Transfer.IsZero() && !m.Transfer.Less(m.Ballot) {
		return reject(rejectBallot, "a Prepare under %s naming a handed-over leadership %s that is not below it", m.Ballot, m.Transfer)
	}
	return nil
}

// checkPromise: an answer to this node's Prepare (its ballot, its from
// slot), entries at or above that slot in order; a page that says more
// follows holds at least one entry (the next page starts after its last).
// How far the entries reach is the candidate's to judge: an acceptor that
// lagged and then accepted far ahead of its old entries reports both.
func (c *peerChecker) checkPromise(m paxos.Message) error {
	if err := c.owner(m, c.self); err != nil {
		return err
	}
	if m.Slot == 0 {
		return reject(rejectSlot, "a Promise from slot 0: slots start at 1")
	}
	if m.More && len(m.Entries) == 0 {
		return reject(rejectShape, "a Promise page that says more follows but holds no entry")
	}
	return checkEntries(m, m.Slot, paxos.SlotMax)
}

// checkAccept: the leader's own ballot; entries no further ahead of its
// watermark than it proposes: new slots within its window, recovered ones
// from its Phase 1, which starts at most one past its watermark and takes
// no report beyond paxos.SlotsAheadMax after that start.
func (c *peerChecker) checkAccept(m paxos.Message) error {
	if err := c.owner(m, m.From); err != nil {
		return err
	}
	return checkEntries(m, 1, min(m.Commit+1+paxos.SlotsAheadMax, paxos.SlotMax))
}

// checkAccepted: an answer to this node's Accept (its ballot), naming the
// slots of that Accept, in its order; they lie within one Accept's reach.
func (c *peerChecker) checkAccepted(m paxos.Message) error {
	if err := c.owner(m, c.self); err != nil {
		return err
	}
	var prev paxos.Slot
	for i, s := range m.Slots {
		switch {
		case s == 0:
			return reject(rejectSlot, "Accepted slot %d is slot 0: slots start at 1", i+1)
		case s > paxos.SlotMax:
			return reject(rejectSlot, "Accepted slot %d is %d, beyond the largest slot a cluster reaches (%d)", i+1, s, paxos.SlotMax)
		case s <= prev:
			return reject(rejectOrder, "Accepted slot %d is %d, after %d: slots must increase", i+1, s, prev)
		case s-m.Slots[0] > paxos.SlotsAheadMax:
			return reject(rejectSlot, "Accepted slots %d to %d: further apart than one Accept reaches (%d)", m.Slots[0], s, paxos.SlotsAheadMax)
		}
		prev = s
	}
	return nil
}

// checkDecide: sent by the leader of its ballot, or under no ballot by a
// member answering a lagging node's PreVote, carrying chosen values: none
// beyond the watermark it announces.
func (c *peerChecker) checkDecide(m paxos.Message) error {
	if !m.Ballot.IsZero() {
		if err := c.owner(m, m.From); err != nil {
			return err
		}
	}
	return checkEntries(m, 1, m.Commit)
}

// checkSnapshot: the leader's own ballot, or none (a member answering a
// candidate's Prepare from below its log); its log starts after Slot,
// which is at or below its watermark (only chosen slots are truncated),
// and the node it answers is behind Slot, so Slot is at least 1.
func (c *peerChecker) checkSnapshot(m paxos.Message) error {
	if !m.Ballot.IsZero() {
		if err := c.owner(m, m.From); err != nil {
			return err
		}
	}
	if m.Slot == 0 || m.Slot > m.Commit {
		return reject(rejectSlot, "a Snapshot offer truncated at slot %d with watermark %d: the truncation point is a chosen slot, from 1", m.Slot, m.Commit)
	}
	if len(m.Addr) > offerAddrBytesMax {
		return reject(rejectShape, "a Snapshot offer's address of %d bytes: at most %d", len(m.Addr), offerAddrBytesMax)
	}
	return nil
}

// offerAddrBytesMax bounds the address a Snapshot offer carries: a
// host:port, which a node learns and dials.
const offerAddrBytesMax = 1024

// checkEntries: entries in strictly increasing slot order within [lo, hi],
// of a known value kind, under well-formed ballots.
func checkEntries(m paxos.Message, lo, hi paxos.Slot) error {
	var prev paxos.Slot
	for i, e := range m.Entries {
		switch {
		case e.Slot == 0:
			return reject(rejectSlot, "%s entry %d at slot 0: slots start at 1", m.Type, i+1)
		case e.Slot < lo || e.Slot > hi:
			return reject(rejectSlot, "%s entry %d at slot %d, outside %d..%d (%s)", m.Type, i+1, e.Slot, lo, hi, entriesRange(m.Type))
		case e.Slot <= prev:
			return reject(rejectOrder, "%s entry %d at slot %d, after slot %d: entries must be in increasing slot order", m.Type, i+1, e.Slot, prev)
		}
		prev = e.Slot
		if err := checkBallot(fmt.Sprintf("%s entry %d ballot", m.Type, i+1), e.Ballot); err != nil {
			return err
		}
		switch e.Value.Kind {
		case paxos.ValueNoop:
			if len(e.Value.Cmds) != 0 {
				return reject(rejectValue, "%s entry %d: a no-op with %d commands", m.Type, i+1, len(e.Value.Cmds))
			}
		case paxos.ValueBatch:
		case paxos.ValueConfig:
			// A membership change (protocol 16): its contents are the
			// core's to judge, which folds a malformed or inadmissible
			// one as nothing, alike on every replica.
		default:
			return reject(rejectValue, "%s entry %d: value of unknown kind %d", m.Type, i+1, e.Value.Kind)
		}
	}
	return nil
}

// entriesRange says where a type's entries may lie, for the error text.
func entriesRange(t paxos.MsgType) string {
	switch t {
	case paxos.MsgPromise:
		return "at or above the Prepare's slot"
	case paxos.MsgAccept:
		return "a leader proposes at most a window, or a Phase 1's reach, past its watermark"
	case paxos.MsgDecide:
		return "catch-up carries chosen slots, at or below the leader's watermark"
	}
	return ""
}

// checkForward: a follower forwards the commands its clients sent and the
// state-check reports of members (its own, or others' it took in as leader
// and passes on after stepping down, with what else it had queued: so the
// reporter need not be the sender). The reporter need not be a member as
// this node knows the membership either: a report hashed while its
// reporter was a member arrives after this node applied its removal, and
// a lagging node does not know the members added since (onStateHash
// counts only members' reports, so nothing else is decided by one).
// Refusing them cut connections of honest members in 5 of the node
// simulation's 24 default seeds once they changed membership (seeds 0, 1,
// 7, 9 and 13). The commands that only
// a leader proposes for itself (the cluster clock, identity, voters, the
// default quota, the level: replica.ProposeOwn, dropped when it steps
// down, never forwarded) are forged when they arrive this way. A command
// that does not decode passes: the log rejects it alike on every replica
// (a newer member's command in a mixed cluster is one), and refusing it
// here would let a client's request cut a member's connection.
func (c *peerChecker) checkForward(m paxos.Message) error {
	for i, raw := range m.Cmds {
		if len(raw) == 0 {
			continue // the rejoin filler (rejoin.go)
		}
		cmd, err := statemachine.DecodeCommand(raw)
		if err != nil {
			continue
		}
		switch cmd.Op {
		case statemachine.OpClock, statemachine.OpClusterID, statemachine.OpVoter, statemachine.OpQuotaDefault, statemachine.OpLevel:
			return reject(rejectCommand, "forwarded command %d is the internal %s command, which only a leader proposes, for itself", i+1, cmd.Op)
		case statemachine.OpStateHash:
			if cmd.Reporter == 0 || cmd.Reporter > math.MaxUint32 || cmd.HashSlot == 0 {
				return reject(rejectCommand, "forwarded command %d is a state-check report of node %d for slot %d: reports come from a node id, for a slot from 1", i+1, cmd.Reporter, cmd.HashSlot)
			}
		}
	}
	return nil
}

// checkPeerMessage is the node's wire.ServerConfig.CheckPeerMessage: it
// counts what it refuses (the transport logs it and closes the
// connection). Safe from any goroutine.
func (n *Node) checkPeerMessage(m paxos.Message) error {
	err := n.peerCheck.check(m)
	if err != nil {
		n.m.peerRejected.WithLabelValues(peerRejectReason(err)).Inc()
	}
	return err
}
