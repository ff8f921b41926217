package paxos

import (
	"errors"
	"fmt"
)

// Rand is the source of randomness the core uses (election timeout jitter).
// Passing a seeded *math/rand.Rand makes a run replayable.
type Rand interface {
	Intn(n int) int
}

// Config configures a replica. The zero value of every field except ID,
// Members and Rand is valid and means the default stated on the field.
type Config struct {
	// ID is this node.
	ID NodeID
	// Members are the voting nodes of a cluster whose log holds no
	// configuration yet (version 1 of its membership), this one
	// included. Ignored when Configs is set.
	Members []NodeID
	// Configs, when its Current version is not zero, is the membership
	// as of the replica's applied slot (the state machine keeps it, and
	// snapshots carry it): the replica folds the configuration values it
	// replays after that slot into it. A node need not be a member (it was
	// removed, or is not yet added): it then takes part in nothing.
	Configs Configs
	// HeartbeatTicks is how many ticks pass between leader heartbeats.
	// Default 2.
	HeartbeatTicks int
	// ElectionTicks is the minimum number of ticks a follower waits without
	// hearing from a leader before it campaigns; the actual timeout is drawn
	// from [ElectionTicks, 2*ElectionTicks). Default 10.
	ElectionTicks int
	// WindowSlots bounds the slots a leader has in flight (proposed, not yet
	// chosen). Default 256.
	WindowSlots int
	// BatchBytesMax bounds the command bytes batched into one slot and the
	// entry bytes of one catch-up message. A single larger command still
	// gets a slot of its own. Default 1 MiB.
	BatchBytesMax int
	// InflightBytesMax bounds the bytes a leader has in flight (proposed,
	// not yet chosen) as WindowSlots bounds the slots, so that what a new
	// leader must recover after a leader loss stays small whatever the
	// size of the values. A leader always has room for one slot. Default
	// 32 MiB.
	InflightBytesMax int
	// LaggardSlots: a follower whose reported watermark is more than
	// LaggardSlots behind the leader's gets no Accepts for new slots while
	// the voters the leader heard from lately, leaving out every such
	// follower, make a quorum of the slots' configurations. A follower
	// catching up from far below would otherwise hold every new slot it
	// accepts in memory until its watermark passed it (a follower rejoining
	// a loaded million-key cluster held 100 MB over its bound for the 20 s
	// of its catch-up); it gets the chosen values through catch-up
	// instead, and Accepts again once within LaggardSlots. Its vote is
	// never lost to the quorum: the slots' Accepts are sent to it again
	// when nobody else voted in time (the proposer's retransmit). At least
	// twice WindowSlots: a healthy follower reports a watermark up to the
	// slots in flight and those chosen in a round trip behind the
	// leader's. Default 4096 (or twice WindowSlots if more).
	LaggardSlots int
	// PendingMax and PendingBytesMax bound the commands (and their bytes)
	// a node queues while its window is full or until they are forwarded;
	// Propose fails with ErrBusy beyond either. Defaults 65536 and 64 MiB.
	PendingMax, PendingBytesMax int
	// MessageBytesMax bounds the encoded size of one message: what the
	// transport accepts. The core pages what could grow past it — Accepts,
	// Promises, catch-up — at a quarter of it, which leaves room for the
	// encoding. Default 16 MiB.
	MessageBytesMax int
	// Rand draws election jitter. Required.
	Rand Rand
	// Log reads entries back from durable storage once Replica.Compact has
	// dropped them from memory (catch-up of a follower far behind, a
	// Prepare from far back). Nil: nothing is ever compacted.
	Log LogReader
}

// LogReader reads accepted entries back from durable storage. It is the
// one thing the core reads from outside; it must return exactly what was
// persisted, in slot order, stopping after maxBytes as Entry.WireBytes
// counts them (at least one entry when any exists; maxBytes <= 0: no
// limit).
type LogReader interface {
	Entries(from, to Slot, maxBytes int) ([]Entry, error)
}

// ErrInvalidConfig marks a Config that Validate rejects.
var ErrInvalidConfig = errors.New("paxos: invalid config")

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 2
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.WindowSlots == 0 {
		c.WindowSlots = 256
	}
	if c.BatchBytesMax == 0 {
		c.BatchBytesMax = 1 << 20
	}
	if c.LaggardSlots == 0 {
		c.LaggardSlots = max(4096, 2*c.WindowSlots)
	}
	if c.PendingMax == 0 {
		c.PendingMax = 1 << 16
	}
	if c.PendingBytesMax == 0 {
		c.PendingBytesMax = 64 << 20
	}
	if c.InflightBytesMax == 0 {
		c.InflightBytesMax = 32 << 20
	}
	if c.MessageBytesMax == 0 {
		c.MessageBytesMax = 16 << 20
	}
}

// InitialConfigs returns the membership the replica starts from: Configs
// if set, else version 1 with Members voting (addresses unknown to the
// core).
func (c *Config) InitialConfigs() Configs {
	if c.Configs.Current.Version != 0 {
		return c.Configs.Clone()
	}
	m := Membership{Version: 1}
	for _, id := range c.Members {
		m.Members = append(m.Members, Member{ID: id})
	}
	out := Bootstrap(m)
	out.Alpha = c.Configs.Alpha
	return out
}

// PageBytes is how many bytes of entries (as Entry.WireBytes counts them)
// one message carries at most, unless a single entry is larger.
func (c *Config) PageBytes() int { return c.MessageBytesMax / 4 }

// Validate reports the first problem with c. Call EnsureDefaults first:
// Validate checks the values in force, and zero ticks are not valid ones.
func (c *Config) Validate() error {
	if c.ID == 0 {
		return fmt.Errorf("%w: node id must be positive", ErrInvalidConfig)
	}
	if c.Configs.Current.Version != 0 {
		if err := c.Configs.Current.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
	} else {
		seen := map[NodeID]bool{}
		for _, m := range c.Members {
			if m == 0 {
				return fmt.Errorf("%w: member id must be positive", ErrInvalidConfig)
			}
			if seen[m] {
				return fmt.Errorf("%w: member %d listed twice", ErrInvalidConfig, m)
			}
			seen[m] = true
		}
		if !seen[c.ID] {
			return fmt.Errorf("%w: node %d is not among the members %v", ErrInvalidConfig, c.ID, c.Members)
		}
	}
	if c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks {
		return fmt.Errorf("%w: election ticks (%d) must exceed heartbeat ticks (%d)", ErrInvalidConfig, c.ElectionTicks, c.HeartbeatTicks)
	}
	if alpha := c.InitialConfigs().Activation(); Slot(c.WindowSlots) > alpha {
		return fmt.Errorf("%w: the window (%d slots) may not exceed %d slots, the distance at which a membership change takes effect", ErrInvalidConfig, c.WindowSlots, alpha)
	}
	if c.WindowSlots <= 0 || c.BatchBytesMax <= 0 || c.PendingMax <= 0 || c.PendingBytesMax <= 0 || c.InflightBytesMax <= 0 {
		return fmt.Errorf("%w: window, batch, in-flight and pending limits must be positive", ErrInvalidConfig)
	}
	if c.LaggardSlots < 2*c.WindowSlots {
		return fmt.Errorf("%w: laggard slots (%d) must be at least twice the window (%d slots)", ErrInvalidConfig, c.LaggardSlots, c.WindowSlots)
	}
	if c.BatchBytesMax > c.PageBytes() {
		return fmt.Errorf("%w: a batch (%d bytes) must fit a quarter of a message (%d bytes)", ErrInvalidConfig, c.BatchBytesMax, c.MessageBytesMax)
	}
	if c.Rand == nil {
		return fmt.Errorf("%w: Rand is required", ErrInvalidConfig)
	}
	return nil
}
