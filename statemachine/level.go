package statemachine

import "fmt"

// The cluster level (etcd's cluster version): the replicated switch that
// turns on the behaviours of newer builds.
//
// The state machine's behaviour may only change at the same slot on every
// replica, or replicas diverge: a member of an older build applies a
// command as it always did, so a newer member must do the same until every
// member can do otherwise. The level is that switch, one for every such
// change. It starts at 0 (the behaviour of every build before levels
// existed) and only rises, by OpLevel{Level}, which a leader proposes once
// every member's connection negotiated a protocol version at least that
// level (service/level_node.go): levels are numbered after the protocol
// version that brought them, so the first is 5. From the slot of that
// OpLevel on, every replica behaves as the level says; a feature reads
// sm.level >= LevelDedupBytes, never a build's own version.
//
// The level is replicated state: in Hash (in the legacy hash only when
// above 0, so that the state of a cluster that never raised it hashes as
// before) and in snapshots (format 4, written only once it is above 0, so
// that members of older builds read every snapshot of a cluster that has
// not raised it). From LevelHashEncoding on it also decides how Hash is
// computed (hash.go).
// Unlike the quota it is in Hash on purpose: a member rolled back to a
// build that cannot apply OpLevel no longer behaves as the others, and the
// state check should say so at once rather than when the first behaviour
// differs.

// Levels, each the protocol version that introduced it.
const (
	// LevelDedupBytes bounds the duplicate-detection table by the bytes
	// of its stored results (SMOptions.DedupBytesMax, dedup_bytes.go), not
	// only by clients and results per client.
	LevelDedupBytes = 5

	// LevelHashEncoding computes the agreement hash (Hash, what members
	// report in the state check) from the snapshot encoding of the state
	// instead of the hand-kept legacy serialization (hash.go). Nothing
	// else changes: the switch needs a level only because members that
	// compute different hashes of the same state would convict each other.
	LevelHashEncoding = 6

	// LevelTxn applies transactions (OpTxn, txn.go): below it a
	// transaction is refused as invalid, as a build without them refuses
	// an unknown op, so a transaction proposed before every member can
	// apply it changes nothing anywhere. From it on a revision may hold
	// several KV events (a transaction's writes), and snapshots are
	// written in format 5, which keeps the stored results of
	// transactions for their retries (snapshot.go).
	LevelTxn = 8

	// LevelEphemeral binds keys to sessions (ephemeral.go): from it on a
	// put with a SessionID binds its key to that session, and the key is
	// deleted when the session ends. Below it a put applies as every
	// older build applies it, ignoring its SessionID (the node refuses
	// such a put before it reaches the log: service/ephemeral.go).
	// Snapshots are written in format 6, which carries the bindings.
	LevelEphemeral = 9

	// LevelAuth applies the user, role and auth commands (auth.go) and
	// records the user that opens a session (its owner); below it those
	// commands are refused as invalid. From it on snapshots are written
	// in format 7, which adds the auth state and the sessions' owners to
	// format 6 (snapshot.go).
	LevelAuth = 10

	// LevelKeepAliveBatch applies keep-alive batches
	// (OpSessionKeepAliveBatch, keepalive_batch.go): below it a batch is
	// refused as invalid, as a build without them refuses an unknown op,
	// so one proposed before every member can apply it renews nothing
	// anywhere. Nothing else changes: no new state, no new snapshot
	// format.
	LevelKeepAliveBatch = 12

	// LevelMembership allows membership changes: the node proposes a
	// configuration value (paxos.ValueConfig) only from it on
	// (service/members_ops.go), since an older member's core drops one
	// as malformed. From it on snapshots are written in format 8, which
	// carries the membership (members.go: the configuration in force and
	// a change waiting for its activation slot; members_snapshot.go), and
	// with them the agreement hash covers it. Below it the log holds no
	// change and the membership is the bootstrap one, which every member
	// is given (--peers): snapshots stay in the format older members
	// read.
	LevelMembership = 16

	// LevelMax is the highest level this build implements: what its
	// leader proposes, and the highest OpLevel it applies.
	LevelMax = LevelMembership
)

// Level returns the cluster level: 0 until an OpLevel is applied, then the
// highest level applied.
func (sm *StateMachine) Level() uint64 { return sm.level }

// execLevel runs a valid OpLevel: the level becomes max(level, c.Level).
// Raising it may tighten a bound at once (the duplicate table's bytes);
// apply enforces it after every command.
func (sm *StateMachine) execLevel(c *Command) Result {
	sm.level = max(sm.level, c.Level)
	return Result{Revision: sm.kv.rev}
}

func validateLevel(c *Command) error {
	if c.ClientID != 0 {
		return fmt.Errorf("%w: %s command from client %d: only nodes propose it, with client id 0", ErrInvalid, c.Op, c.ClientID)
	}
	if c.Level == 0 {
		return fmt.Errorf("%w: cluster level 0: a level command raises the level, to 1 or more", ErrInvalid)
	}
	if c.Level > LevelMax {
		// A newer build's level, which this build cannot behave as.
		// Refused, so that this member's Hash differs from the newer
		// members' and the state check flags it, rather than claim a
		// behaviour it does not have.
		return fmt.Errorf("%w: cluster level %d is above %d, the highest this build implements: upgrade this member", ErrInvalid, c.Level, LevelMax)
	}
	return nil
}
