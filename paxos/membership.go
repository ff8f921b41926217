package paxos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Reconfiguration (docs/DESIGN.md, "Membership"): a configuration is a
// value like any other, chosen at some slot j through the log, and it
// governs the slots from j+ActivationSlots on (Lamport's α-window). A
// leader proposes no slot further than its window past its chosen
// watermark, and WindowSlots may not exceed ActivationSlots, so whoever
// proposes at slot s knows every value chosen at or below s-α: the
// configuration of s is a fact to it, the same for every proposer and
// every learner, whatever leaders come and go.

// ActivationSlots is α: how many slots after the slot that chose it a
// configuration takes effect (unless Configs.Alpha says otherwise: the
// simulations take a small one). It bounds Config.WindowSlots.
const ActivationSlots Slot = 1024

// Member is one node of a configuration.
type Member struct {
	ID NodeID
	// Addr is where the other nodes and clients reach it; opaque to the
	// core (the node layer dials it).
	Addr string
	// Learner: it receives the log and snapshots but does not vote.
	Learner bool
}

// Membership is one configuration. Version numbers them: the bootstrap
// configuration is version 1 and each change adds one.
type Membership struct {
	Version uint64
	// Members, sorted by ID.
	Members []Member
}

// NewMembership returns version 1 of a cluster whose members all vote.
func NewMembership(voters map[NodeID]string) Membership {
	m := Membership{Version: 1}
	for id, addr := range voters {
		m.Members = append(m.Members, Member{ID: id, Addr: addr})
	}
	m.sort()
	return m
}

func (m *Membership) sort() {
	sort.Slice(m.Members, func(i, j int) bool { return m.Members[i].ID < m.Members[j].ID })
}

// Voters returns the voting members' ids, in order.
func (m Membership) Voters() []NodeID {
	out := make([]NodeID, 0, len(m.Members))
	for _, x := range m.Members {
		if !x.Learner {
			out = append(out, x.ID)
		}
	}
	return out
}

// Member returns id's entry.
func (m Membership) Member(id NodeID) (Member, bool) {
	for _, x := range m.Members {
		if x.ID == id {
			return x, true
		}
	}
	return Member{}, false
}

// IsVoter reports whether id votes in m.
func (m Membership) IsVoter(id NodeID) bool {
	x, ok := m.Member(id)
	return ok && !x.Learner
}

// QuorumSize returns the smallest number of voters that forms a majority.
func (m Membership) QuorumSize() int { return len(m.Voters())/2 + 1 }

// IsQuorum reports whether the voters for which has returns true form a
// majority of m's voters. Learners and non-members never count.
func (m Membership) IsQuorum(has func(NodeID) bool) bool {
	n, voters := 0, 0
	for _, x := range m.Members {
		if x.Learner {
			continue
		}
		voters++
		if has(x.ID) {
			n++
		}
	}
	return voters > 0 && n >= voters/2+1
}

// Validate reports the first problem with m as a configuration.
func (m Membership) Validate() error {
	seen := map[NodeID]bool{}
	voters := 0
	for _, x := range m.Members {
		if x.ID == 0 {
			return fmt.Errorf("%w: member id must be positive", ErrInvalidMembership)
		}
		if seen[x.ID] {
			return fmt.Errorf("%w: member %d listed twice", ErrInvalidMembership, x.ID)
		}
		seen[x.ID] = true
		if !x.Learner {
			voters++
		}
	}
	if voters == 0 {
		return fmt.Errorf("%w: no voting member", ErrInvalidMembership)
	}
	return nil
}

// Clone returns a deep copy of m, sorted.
func (m Membership) Clone() Membership {
	out := Membership{Version: m.Version, Members: append([]Member(nil), m.Members...)}
	out.sort()
	return out
}

// Errors of configuration changes.
var (
	// ErrInvalidMembership marks a configuration that cannot be used.
	ErrInvalidMembership = errors.New("paxos: invalid membership")
	// ErrConfigInFlight refuses a change while another one is on its way
	// (proposed and not yet chosen, or chosen and not yet in force).
	ErrConfigInFlight = errors.New("paxos: a membership change is already in progress")
	// ErrConfigStale refuses a change made from a configuration that is
	// no longer the latest.
	ErrConfigStale = errors.New("paxos: the membership changed meanwhile")
)

// Configs is what the chosen log says about membership at a watermark:
// the configuration in force and, while a change waits for its
// activation slot, the next one. One change at a time: a change is
// admitted only once the one before it is in force.
type Configs struct {
	Current Membership
	// Next, when its Version is not zero, governs the slots from NextAt.
	Next   Membership
	NextAt Slot
	// Alpha is the cluster's α; 0 means ActivationSlots. It is set when
	// the cluster is made and never changes: every replica must use the
	// same.
	Alpha Slot
}

// Bootstrap returns the Configs of a new cluster: m in force from slot 1.
func Bootstrap(m Membership) Configs { return Configs{Current: m.Clone()} }

// Activation returns the cluster's α.
func (c Configs) Activation() Slot {
	if c.Alpha == 0 {
		return ActivationSlots
	}
	return c.Alpha
}

// Pending reports whether a chosen change waits for its activation slot.
func (c Configs) Pending() bool { return c.Next.Version != 0 }

// At returns the configuration that governs slot s. It is exact for
// every s up to the watermark c describes plus ActivationSlots.
func (c Configs) At(s Slot) Membership {
	if c.Pending() && s >= c.NextAt {
		return c.Next
	}
	return c.Current
}

// Latest returns the newest configuration chosen, in force or not.
func (c Configs) Latest() Membership {
	if c.Pending() {
		return c.Next
	}
	return c.Current
}

// Knows reports whether id is a member (voter or learner) of the current
// or the next configuration: a node whose messages are heard.
func (c Configs) Knows(id NodeID) bool {
	if _, ok := c.Current.Member(id); ok {
		return true
	}
	_, ok := c.Next.Member(id)
	return ok
}

// Nodes returns every member of the current and next configurations, in
// order: the nodes a leader talks to.
func (c Configs) Nodes() []NodeID {
	seen := map[NodeID]bool{}
	var out []NodeID
	for _, m := range []Membership{c.Current, c.Next} {
		for _, x := range m.Members {
			if !seen[x.ID] {
				seen[x.ID] = true
				out = append(out, x.ID)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Admits reports whether a change to m, chosen at slot, takes effect: m
// must follow the latest configuration (its version one more), and no
// other change may still wait for its activation at slot. Every replica
// and every state machine decides alike, from the chosen log alone.
func (c Configs) Admits(slot Slot, m Membership) error {
	if c.Pending() && slot < c.NextAt {
		return fmt.Errorf("%w: the change to version %d is in force from slot %d", ErrConfigInFlight, c.Next.Version, c.NextAt)
	}
	if latest := c.Latest().Version; m.Version != latest+1 {
		return fmt.Errorf("%w: version %d does not follow version %d", ErrConfigStale, m.Version, latest)
	}
	return m.Validate()
}

// Apply folds the value chosen at slot into c: a configuration value that
// Admits takes effect at slot+ActivationSlots. It returns whether it did.
// Call it for every chosen slot, in order (with the slot's value), or at
// least for each configuration value and with Settle for the others.
func (c *Configs) Apply(slot Slot, v Value) bool {
	c.Settle(slot)
	if v.Kind != ValueConfig {
		return false
	}
	m, err := DecodeMembership(v)
	if err != nil || c.Admits(slot, m) != nil {
		return false
	}
	c.Next, c.NextAt = m.Clone(), slot+c.Activation()
	return true
}

// Settle promotes the next configuration once slot reaches its
// activation: the watermark is at least slot.
func (c *Configs) Settle(slot Slot) {
	if c.Pending() && slot+1 >= c.NextAt {
		c.Current, c.Next, c.NextAt = c.Next, Membership{}, 0
	}
}

// Clone returns a deep copy of c.
func (c Configs) Clone() Configs {
	out := Configs{Current: c.Current.Clone(), NextAt: c.NextAt, Alpha: c.Alpha}
	if c.Pending() {
		out.Next = c.Next.Clone()
	}
	return out
}

// ConfigValue returns the value that proposes m.
func ConfigValue(m Membership) Value {
	return Value{Kind: ValueConfig, Cmds: [][]byte{m.Encode()}}
}

// membershipFormat is the first byte of an encoded Membership.
const membershipFormat = 1

// Encode returns m's bytes: a format byte, the version, the member count,
// and per member its id, a learner flag and its address, numbers as
// uvarints and the address length-prefixed.
func (m Membership) Encode() []byte {
	b := []byte{membershipFormat}
	b = binary.AppendUvarint(b, m.Version)
	b = binary.AppendUvarint(b, uint64(len(m.Members)))
	for _, x := range m.Members {
		b = binary.AppendUvarint(b, uint64(x.ID))
		flag := byte(0)
		if x.Learner {
			flag = 1
		}
		b = append(b, flag)
		b = binary.AppendUvarint(b, uint64(len(x.Addr)))
		b = append(b, x.Addr...)
	}
	return b
}

// DecodeMembership reads the configuration a ValueConfig value carries.
func DecodeMembership(v Value) (Membership, error) {
	if v.Kind != ValueConfig || len(v.Cmds) != 1 {
		return Membership{}, fmt.Errorf("%w: not a configuration value", ErrInvalidMembership)
	}
	return decodeMembership(v.Cmds[0])
}

func decodeMembership(b []byte) (Membership, error) {
	bad := fmt.Errorf("%w: malformed encoding", ErrInvalidMembership)
	if len(b) == 0 || b[0] != membershipFormat {
		return Membership{}, bad
	}
	b = b[1:]
	next := func() (uint64, bool) {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return x, true
	}
	var m Membership
	var ok bool
	var count uint64
	if m.Version, ok = next(); !ok {
		return Membership{}, bad
	}
	if count, ok = next(); !ok || count > uint64(len(b)) {
		return Membership{}, bad
	}
	for i := uint64(0); i < count; i++ {
		id, ok := next()
		if !ok || len(b) == 0 || b[0] > 1 {
			return Membership{}, bad
		}
		learner := b[0] == 1
		b = b[1:]
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return Membership{}, bad
		}
		m.Members = append(m.Members, Member{ID: NodeID(id), Learner: learner, Addr: string(b[:n])})
		b = b[n:]
	}
	if len(b) != 0 {
		return Membership{}, bad
	}
	return m, nil
}
