package service

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Config configures a Node. Zero fields take the default their comment
// states; ID, Listen, Peers and DataDir are required.
type Config struct {
	// ID is this node's id, one of Peers.
	ID paxos.NodeID
	// ClusterID names the cluster; peers and clients of another cluster
	// are refused. Default "paxosd".
	ClusterID string
	// Listen is the address serving peers and clients, e.g. ":7401".
	Listen string
	// Peers maps every member's id (this node's included) to its address.
	Peers map[paxos.NodeID]string
	// DataDir holds the durable state.
	DataDir string
	// TLS, if set, makes every connection TLS: clients', and peers',
	// which are mutual TLS and recognised by their certificate's node URI
	// SAN (wire.NodeTLS; docs/SECURITY.md). A peer hello from a node not
	// in Peers is then refused too. Default: plaintext.
	TLS *wire.NodeTLS
	// TickInterval is the duration of one protocol tick. Default 10ms.
	TickInterval time.Duration
	// HeartbeatTicks and ElectionTicks: see paxos.Config. Defaults 3 and 15
	// (30 ms heartbeats; an election after 150–300 ms of silence, so writes
	// resume a few hundred milliseconds after a leader dies).
	HeartbeatTicks, ElectionTicks int
	// WindowSlots and BatchBytesMax: see paxos.Config. Defaults 256, 1 MiB.
	WindowSlots, BatchBytesMax int
	// LaggardSlots: see paxos.Config (how far behind a follower gets no
	// Accepts for new slots while the others make a quorum). Default 4096;
	// the simulation sets it small to reach the rule often.
	LaggardSlots int
	// SnapshotFetchRate bounds, in bytes a second, how fast this node
	// copies another member's snapshot when it rejoins: the copy costs the
	// member it reads from (often the leader) and this node CPU, memory
	// allocations and the disk's bandwidth, all of which the cluster's
	// writes need. Negative: no bound. Default DefaultSnapshotFetchRate.
	SnapshotFetchRate int64
	// InstallNice is how much higher than the node's the nice value is of
	// the threads that fetch, check and decode a snapshot from another
	// member (Linux; at most 19): on a machine short of CPU, the cluster's
	// writes go first and the rejoin takes longer. Negative: as the node's
	// other work. Default DefaultInstallNice.
	InstallNice int
	// ValueBytesMax bounds a value this node accepts from its clients
	// (at most 64 MiB: the state machine's own bound, the same on every
	// replica). Set it alike on every node, or a put that one node refuses
	// succeeds through another. Default 1 MiB.
	ValueBytesMax int
	// FrameBytesMax bounds a wire frame. Default 16 MiB.
	FrameBytesMax int
	// BacklogBytesMax bounds the bytes of client commands this node holds
	// waiting for the log; past shares of it the node sheds requests by
	// priority, writes first and keep-alives last (busy.go). Default
	// DefaultBacklogBytesMax (8 MiB).
	BacklogBytesMax int
	// SessionsPerClientMax bounds the sessions one client id may have
	// open through this node (session_limit.go); a SessionOpen past it is
	// refused with err QuotaExceeded. Negative: no limit. Default
	// DefaultSessionsPerClientMax (10,000).
	SessionsPerClientMax int
	// RequestTimeout bounds how long a request waits for its answer when
	// the client gives no deadline. Default 10s.
	RequestTimeout time.Duration
	// BcryptCost is the cost of the password hashes this node makes
	// (auth_login.go). Default bcrypt's (10); tests lower it.
	BcryptCost int
	// SnapshotEntries: the node snapshots its state machine every this
	// many applied slots and deletes the log below the snapshot (keeping
	// SnapshotKeepEntries slots), so the data directory stays bounded.
	// Default 10000.
	SnapshotEntries int
	// SnapshotKeepEntries is how many slots of log below a snapshot are
	// kept, so a follower a little behind catches up from the log rather
	// than by a snapshot transfer. Default min(SnapshotEntries, 5000).
	SnapshotKeepEntries int
	// StateCheckSlots: every this many slots the members compare the
	// hashes of their states (statecheck.go); negative: never. Default
	// 10000.
	StateCheckSlots int
	// WatchProgressInterval: a watch that has had no response for this
	// long gets a progress notification, an empty response carrying the
	// revision it is up to date with (docs/PROTOCOL.md, "Streams"), so its
	// client resumes from there after a reconnect. Checked every 10 ticks.
	// Negative: never. Default 10s.
	WatchProgressInterval time.Duration
	// WatchBacklogBytes bounds what a client connection may hold of
	// responses the client has not read yet before the node stops
	// pushing watch events on it: each held watch waits at its revision,
	// reading from the history when the client catches up, so a slow
	// client costs no more memory than this. Default 4 MiB.
	WatchBacklogBytes int64
	// WatchBacklogFrames: a connection with this many answers queued
	// holds its watches too. Its queue takes 1024 frames, and a client
	// that fills it has its connection closed ("not reading its
	// answers"); small events would fill it long before the byte bound,
	// so the count holds them first, and the watch ends SlowWatcher with
	// its position instead. Default 512.
	WatchBacklogFrames int
	// WatchSlowAfter: a watch held that long is ended with err
	// SlowWatcher, its revision saying where to resume (watch_slow.go).
	// Default 10s.
	WatchSlowAfter time.Duration
	// Join says what to do when DataDir holds no state (see JoinMode).
	// Default JoinCreate.
	Join JoinMode
	// NoSync skips fsync. Unsafe: for tests only.
	NoSync bool
	// FS is the filesystem holding DataDir. Default (nil): the real disk.
	// The simulation passes Pebble's crash-testing in-memory filesystem,
	// and small memtables (MemTableBytes, see wal.Options).
	FS            vfs.FS
	MemTableBytes int
	// Logger receives structured logs; the node adds its id to every line.
	Logger zerolog.Logger
	// Metrics receives the node's Prometheus instruments; nil gives the
	// node a registry of its own (Node.Metrics), with the Go runtime's,
	// the process's and the build's metrics besides.
	Metrics *prometheus.Registry
	// DefaultQuotaBytes is the space quota this node proposes, when it
	// leads a cluster that has none and whose members all speak protocol
	// 4 (quota_node.go). The first such proposal applied wins on every
	// replica, so a node's setting matters only if it is first. Default
	// statemachine.DefaultQuotaBytes (8 GiB); 'paxosd dev' uses 1 GiB.
	DefaultQuotaBytes uint64
	// Version is the release paxosd_build_info reports. Default: the main
	// module's version in the binary's build info ("(devel)" for a build
	// from a checkout).
	Version string
	// StateLoaded, if set, is told the key and value bytes of the state
	// the node decoded from its stored snapshot, before it replays the log
	// after it: replaying overwrites values, and the process sizes its
	// memory limit by the state so that the garbage does not grow the heap
	// past its bound meanwhile (cmd/paxosd/gc.go). Node.LiveBytes follows
	// the state once the node runs.
	StateLoaded func(liveBytes uint64)
}

// JoinMode says how a node treats a data directory without state.
type JoinMode uint8

const (
	// JoinCreate creates the state and votes at once: the cluster is new
	// by construction (paxosd dev, tests). Unsafe for a member that may
	// have voted before and lost its data: use JoinForm.
	JoinCreate JoinMode = iota
	// JoinExisting refuses to start without a store: a member of a running
	// cluster that lost its data must not vote with forgotten promises
	// (paxosd serve's default). A store without state (left by a gated
	// start) starts gated, never forming a cluster (bootstrap.go).
	JoinExisting
	// JoinRejoin rebuilds a member that lost its data: it raises its
	// promise to the highest ballot the other members know and takes no
	// part in voting until it has learned every slot that could hold a
	// vote it forgot (serve --rejoin).
	JoinRejoin
	// JoinForm (serve --new-cluster) creates the state if there is none,
	// then starts gated: it forms a new cluster only with a quorum of
	// members as fresh as itself, joins one that formed without it, and
	// refuses to start if the cluster recorded it as a voter (it lost its
	// data). On a store with state it changes nothing (bootstrap.go).
	JoinForm
)

func (j JoinMode) String() string {
	switch j {
	case JoinCreate:
		return "create"
	case JoinExisting:
		return "existing"
	case JoinRejoin:
		return "--rejoin"
	case JoinForm:
		return "--new-cluster"
	}
	return fmt.Sprintf("JoinMode(%d)", uint8(j))
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("service: invalid config")

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.ClusterID == "" {
		c.ClusterID = "paxosd"
	}
	if c.TickInterval == 0 {
		c.TickInterval = 10 * time.Millisecond
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 3
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 15
	}
	if c.WindowSlots == 0 {
		c.WindowSlots = 256
	}
	if c.BatchBytesMax == 0 {
		c.BatchBytesMax = 1 << 20
	}
	if c.ValueBytesMax == 0 {
		c.ValueBytesMax = 1 << 20
	}
	if c.FrameBytesMax == 0 {
		c.FrameBytesMax = 16 << 20
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.BacklogBytesMax == 0 {
		c.BacklogBytesMax = DefaultBacklogBytesMax
	}
	if c.SessionsPerClientMax == 0 {
		c.SessionsPerClientMax = DefaultSessionsPerClientMax
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10000
	}
	if c.StateCheckSlots == 0 {
		c.StateCheckSlots = 10000
	}
	if c.SnapshotKeepEntries == 0 {
		c.SnapshotKeepEntries = min(c.SnapshotEntries, 5000)
	}
	if c.DefaultQuotaBytes == 0 {
		c.DefaultQuotaBytes = statemachine.DefaultQuotaBytes
	}
	if c.WatchProgressInterval == 0 {
		c.WatchProgressInterval = 10 * time.Second
	}
	if c.WatchBacklogBytes == 0 {
		c.WatchBacklogBytes = 4 << 20
	}
	if c.WatchBacklogFrames == 0 {
		c.WatchBacklogFrames = 512
	}
	if c.WatchSlowAfter == 0 {
		c.WatchSlowAfter = 10 * time.Second
	}
	if c.InstallNice == 0 {
		c.InstallNice = DefaultInstallNice
	}
	if c.SnapshotFetchRate == 0 {
		c.SnapshotFetchRate = DefaultSnapshotFetchRate
	}
}

// DefaultSnapshotFetchRate is Config.SnapshotFetchRate's default, 32 MiB
// a second: see docs/BENCHMARKS.md ("A rejoin that gives way").
const DefaultSnapshotFetchRate = 32 << 20

// DefaultInstallNice is Config.InstallNice's default: see docs/BENCHMARKS.md
// ("A rejoin that gives way") for what it was chosen by.
const DefaultInstallNice = 10

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	if c.ID == 0 {
		return fmt.Errorf("%w: --id must be a positive node id", ErrConfig)
	}
	if len(c.Peers) == 0 {
		return fmt.Errorf("%w: --peers must list every member, e.g. 1=host:7401,2=host:7402,3=host:7403", ErrConfig)
	}
	if _, ok := c.Peers[c.ID]; !ok {
		return fmt.Errorf("%w: node %d is not in --peers", ErrConfig, c.ID)
	}
	if c.Listen == "" {
		return fmt.Errorf("%w: --listen is required", ErrConfig)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: --data-dir is required", ErrConfig)
	}
	if c.SnapshotEntries < 0 || c.SnapshotKeepEntries < 0 {
		return fmt.Errorf("%w: --snapshot-entries and --snapshot-keep-entries must be positive", ErrConfig)
	}
	if c.WatchBacklogBytes < 0 || c.WatchSlowAfter < 0 || c.WatchBacklogFrames < 0 {
		return fmt.Errorf("%w: --watch-backlog-bytes and --watch-slow-after must be positive", ErrConfig)
	}
	if c.InstallNice > 19 {
		return fmt.Errorf("%w: --install-nice must be 0 to 19 (got %d)", ErrConfig, c.InstallNice)
	}
	if c.BacklogBytesMax < 0 {
		return fmt.Errorf("%w: --backlog-bytes-max must be positive (got %d)", ErrConfig, c.BacklogBytesMax)
	}
	if c.ValueBytesMax > valueBytesLimit {
		return fmt.Errorf("%w: --value-bytes-max %d is over the largest value the state machine takes (%d)", ErrConfig, c.ValueBytesMax, valueBytesLimit)
	}
	if c.ValueBytesMax+4096 > c.FrameBytesMax || c.BatchBytesMax > c.FrameBytesMax/4 {
		return fmt.Errorf("%w: value and batch limits must fit well inside the frame limit (%d bytes)", ErrConfig, c.FrameBytesMax)
	}
	return nil
}

// bootstrapMembers is the cluster's first configuration, as --peers
// gives it: every peer votes.
func (c *Config) bootstrapMembers() paxos.Configs {
	return paxos.Bootstrap(paxos.NewMembership(c.Peers))
}

func (c *Config) members() []paxos.NodeID {
	out := make([]paxos.NodeID, 0, len(c.Peers))
	for id := range c.Peers {
		out = append(out, id)
	}
	sortNodeIDs(out)
	return out
}
