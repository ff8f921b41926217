package paxos

import (
	"bytes"
	"fmt"
)

// ValueKind says what a slot's value holds.
type ValueKind uint8

const (
	// ValueNoop fills a hole found during Phase 1; it changes nothing.
	ValueNoop ValueKind = 0
	// ValueBatch carries one or more client commands, applied in order.
	ValueBatch ValueKind = 1
	// ValueConfig (protocol version 16) carries one configuration (one
	// command: Membership.Encode), which takes effect ActivationSlots
	// after the slot that chooses it (membership.go).
	ValueConfig ValueKind = 2
)

// Value is what a slot chooses: a no-op or a batch of client commands. The
// commands are opaque to the protocol; the service encodes and applies them.
type Value struct {
	Kind ValueKind
	Cmds [][]byte
}

// Noop is the value a new leader proposes for a slot nobody accepted.
var Noop = Value{Kind: ValueNoop}

// Bytes returns the payload size of v, the measure batch limits use.
func (v Value) Bytes() int {
	n := 0
	for _, c := range v.Cmds {
		n += len(c)
	}
	return n
}

// Per-entry and per-command allowances for encoding overhead (slot, ballot,
// kind and length prefixes), generous for any encoding the wire uses.
const (
	entryOverheadBytes = 40
	cmdOverheadBytes   = 8
)

// WireBytes bounds the bytes v takes in an encoded message: its payload
// plus an allowance per command. Paging messages by it (not by Bytes)
// keeps a message of many tiny commands under the frame limit too.
func (v Value) WireBytes() int { return v.Bytes() + cmdOverheadBytes*len(v.Cmds) }

// Equal reports whether v and o are the same value.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind || len(v.Cmds) != len(o.Cmds) {
		return false
	}
	for i := range v.Cmds {
		if !bytes.Equal(v.Cmds[i], o.Cmds[i]) {
			return false
		}
	}
	return true
}

func (v Value) String() string {
	if v.Kind == ValueNoop {
		return "noop"
	}
	if v.Kind == ValueConfig {
		if m, err := DecodeMembership(v); err == nil {
			return fmt.Sprintf("config(v%d %v)", m.Version, m.Voters())
		}
		return "config(malformed)"
	}
	return fmt.Sprintf("batch(%d cmds, %d bytes)", len(v.Cmds), v.Bytes())
}

// Entry is a value at a slot, with the ballot under which it was accepted
// (or, in a Decide message, the ballot under which it was chosen).
type Entry struct {
	Slot   Slot
	Ballot Ballot
	Value  Value
}

// WireBytes bounds the bytes e takes in an encoded message.
func (e Entry) WireBytes() int { return entryOverheadBytes + e.Value.WireBytes() }

func (e Entry) String() string { return fmt.Sprintf("%d@%s:%s", e.Slot, e.Ballot, e.Value) }
