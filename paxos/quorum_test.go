package paxos_test

import (
	"errors"
	"testing"
	"testing/quick"

	"github.com/paxosd/paxosd/paxos"
)

// The references are to Lamport, "Paxos Made Simple" (2001).

func cluster(n int) paxos.Membership {
	var m paxos.Membership
	for i := 1; i <= n; i++ {
		m.Members = append(m.Members, paxos.Member{ID: paxos.NodeID(i)})
	}
	return m
}

// Reference: §2.2 (a majority of acceptors; any two majorities intersect).
func TestQuorumSize(t *testing.T) {
	for n, want := range []int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4} {
		if n == 0 {
			continue
		}
		if got := cluster(n).QuorumSize(); got != want {
			t.Errorf("QuorumSize of %d nodes = %d, want %d", n, got, want)
		}
	}
}

// Reference: §2.2. IsQuorum agrees with a reference that counts the members
// present and asks for more than half; members are any subset of 1..16 and
// the responders any subset of 1..32, so non-members respond too and must
// not count.
func TestIsQuorumMatchesReference(t *testing.T) {
	f := func(memberMask uint16, hasMask uint32) bool {
		var m paxos.Membership
		for i := 0; i < 16; i++ {
			if memberMask&(1<<i) != 0 {
				m.Members = append(m.Members, paxos.Member{ID: paxos.NodeID(i + 1)})
			}
		}
		has := func(id paxos.NodeID) bool { return id >= 1 && id <= 32 && hasMask&(1<<(id-1)) != 0 }
		present := 0
		for _, id := range m.Voters() {
			if has(id) {
				present++
			}
		}
		return m.IsQuorum(has) == (len(m.Members) > 0 && 2*present > len(m.Members))
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
}

// Reference: §2.2. Responses from nodes outside the membership never make
// a quorum, however many there are.
func TestIsQuorumIgnoresNonMembers(t *testing.T) {
	m := cluster(3)
	if m.IsQuorum(func(id paxos.NodeID) bool { return id == 1 || id > 3 }) {
		t.Error("one member plus non-members counted as a quorum of 3")
	}
	if m.IsVoter(4) || !m.IsVoter(3) {
		t.Error("IsVoter wrong")
	}
}

type zeroRand struct{}

func (zeroRand) Intn(int) int { return 0 }

// Config.Validate accepts a defaulted config and rejects each problem with
// an error marked ErrInvalidConfig.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*paxos.Config)
		ok   bool
	}{
		{"valid", func(*paxos.Config) {}, true},
		{"single node", func(c *paxos.Config) { c.Members = []paxos.NodeID{1} }, true},
		{"zero id", func(c *paxos.Config) { c.ID = 0 }, false},
		{"zero member", func(c *paxos.Config) { c.Members = []paxos.NodeID{1, 0, 3} }, false},
		{"duplicate member", func(c *paxos.Config) { c.Members = []paxos.NodeID{1, 2, 2} }, false},
		{"id not a member", func(c *paxos.Config) { c.ID = 4 }, false},
		{"election equals heartbeat", func(c *paxos.Config) { c.ElectionTicks, c.HeartbeatTicks = 3, 3 }, false},
		{"negative heartbeat", func(c *paxos.Config) { c.HeartbeatTicks = -1 }, false},
		{"negative window", func(c *paxos.Config) { c.WindowSlots = -1 }, false},
		{"negative batch", func(c *paxos.Config) { c.BatchBytesMax = -1 }, false},
		{"negative pending", func(c *paxos.Config) { c.PendingMax = -1 }, false},
		{"no rand", func(c *paxos.Config) { c.Rand = nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := paxos.Config{ID: 1, Members: []paxos.NodeID{1, 2, 3}, Rand: zeroRand{}}
			c.EnsureDefaults()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, paxos.ErrInvalidConfig)) {
				t.Errorf("Validate = %v, want ok=%v (and ErrInvalidConfig otherwise)", err, tc.ok)
			}
		})
	}
}

// EnsureDefaults fills exactly the zero fields, with the defaults their
// comments state.
func TestConfigEnsureDefaults(t *testing.T) {
	c := paxos.Config{ElectionTicks: 30}
	c.EnsureDefaults()
	if c.HeartbeatTicks != 2 || c.ElectionTicks != 30 || c.WindowSlots != 256 || c.BatchBytesMax != 1<<20 || c.PendingMax != 1<<16 {
		t.Errorf("after EnsureDefaults: %+v", c)
	}
}
