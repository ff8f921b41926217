package statemachine

import (
	"fmt"
	"math"
	"slices"

	"github.com/paxosd/paxosd/paxos"
)

// A restored backup starts a new cluster (docs/BACKUP.md, "What a restore
// keeps"): `paxosd snapshot restore` decodes the backup, calls
// StartNewCluster, and writes the result as every new member's first
// snapshot. The old cluster may still run, and its clients may still hold
// sessions, locks, leaderships, tokens and revisions from it; the new
// cluster must never let one of them pass for one of its own:
//
//   - Every session ends (as if closed, so without lock-delays): its locks
//     are free, its waiting acquires and campaigns are gone, its elections
//     have no leader, its ephemeral keys are deleted. A client of the old
//     cluster that reaches the new one finds its session unknown
//     (ErrSessionExpired) and opens another, which gets an id above every
//     old one: session ids continue bump above the last.
//   - Revisions, fencing tokens (and with them election terms, which share
//     the counter) and each election's change numbers continue bump above
//     the snapshot's. Every token the new cluster hands out is above every
//     one the old handed out, if the old handed out fewer than bump after
//     the backup was taken, so a resource fenced by the old cluster's
//     tokens refuses a stale holder of either cluster.
//   - The revisions up to the new store revision are compacted (so are the
//     elections' changes): a watch or an observe that resumes from where it
//     was on the old cluster gets ErrCompacted instead of a silent gap, and
//     re-reads.
//   - The duplicate table is emptied: its clients talked to another
//     cluster, whose answers this one cannot give.
//   - The cluster id is the one given, and no member has voted yet.
//   - The membership is the new cluster's first configuration, the one
//     its members are given (the restore's --peers), never the old
//     cluster's: the old members are other nodes, perhaps still running.
//     It is version 1, as any new cluster's, rather than continuing the
//     old numbering: a configuration's version is only ever compared with
//     the versions of its own cluster (a change must follow the latest),
//     no value of the old cluster's log reaches the new one (another
//     cluster id), and version 1 is also what a node of the new cluster
//     starts from when the snapshot does not carry the membership (below
//     LevelMembership: it then takes its --peers), so both ways give the
//     same state.
//
// Keys (with their create and mod revisions), users, roles, the auth
// switch, the quota, the cluster level and the clock are kept. The result
// depends on the state, clusterID and bump alone, so members restored from
// the same backup with the same flags hold the same state (and Hash).

// NewClusterReport says what StartNewCluster released.
type NewClusterReport struct {
	Sessions, Locks, Waiters, Leaders, Candidates, EphemeralKeys int
	// Revision and Fence are the store revision and the fence counter
	// after the bump: the new cluster's next revision and token are
	// above them.
	Revision, Fence uint64
}

// StartNewCluster turns a restored state into the first state of a new
// cluster with id clusterID (ClusterIDBytes long), numbers continuing bump
// above the snapshot's (bump > 0), and members as its membership: the
// bootstrap configuration its members' --peers give (paxos.Bootstrap:
// version 1, no change pending). See above for what it keeps. Call it
// between values, with no late answers pending.
func (sm *StateMachine) StartNewCluster(clusterID []byte, bump uint64, members paxos.Configs) (NewClusterReport, error) {
	var rep NewClusterReport
	if members.Current.Version != 1 || members.Pending() {
		return rep, fmt.Errorf("%w: a new cluster starts from its first configuration (version 1, no change pending), not version %d", ErrInvalid, members.Latest().Version)
	}
	if err := members.Current.Validate(); err != nil {
		return rep, fmt.Errorf("%w: the new cluster's members: %v", ErrInvalid, err)
	}
	if len(clusterID) != ClusterIDBytes {
		return rep, fmt.Errorf("%w: cluster id of %d bytes, want %d", ErrInvalid, len(clusterID), ClusterIDBytes)
	}
	if bump == 0 {
		return rep, fmt.Errorf("%w: a bump of 0: the new cluster's revisions and tokens must start above the old one's", ErrInvalid)
	}
	maxSeq := uint64(0)
	for _, e := range sm.elect.m {
		maxSeq = max(maxSeq, e.seq)
	}
	for _, v := range []uint64{sm.kv.rev, sm.fence, sm.sessions.last, maxSeq} {
		// The ephemeral keys' deletions add revisions: one per session.
		if v > math.MaxUint64-bump-uint64(len(sm.sessions.m)) {
			return rep, fmt.Errorf("%w: a bump of %d overflows the counters (revision %d, fence %d)", ErrInvalid, bump, sm.kv.rev, sm.fence)
		}
	}
	for _, l := range sm.locks.m {
		if l.holder != 0 {
			rep.Locks++
		}
		rep.Waiters += len(l.waiters)
	}
	for _, e := range sm.elect.m {
		if e.leader != 0 {
			rep.Leaders++
		}
		rep.Candidates += len(e.candidates)
	}
	rep.Sessions = len(sm.sessions.m)
	rep.EphemeralKeys = len(sm.bound.byKey)

	// Every session is marked ending first, so that a lock or a
	// leadership released by one is granted to no other (dying).
	ids := make([]uint64, 0, len(sm.sessions.m))
	for id, s := range sm.sessions.m {
		s.ending = true
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		sm.endSession(sm.sessions.m[id], false)
	}
	sm.answers = nil // their clients wait on the old cluster
	sm.locks = newLockTable()
	sm.dedup = newDedupTable(&sm.opts)

	sm.kv.rev += bump
	sm.fence += bump
	sm.sessions.last += bump
	sm.kvHist = newKVHistory(sm.opts.KVHistoryMax, sm.opts.KVHistoryBytesMax)
	sm.kvHist.dropped = sm.kv.rev
	for _, e := range sm.elect.m {
		e.seq += bump
		e.history = changeRing{}
		e.history.add(LeaderChange{Seq: e.seq, Revision: sm.kv.rev}, sm.opts.ElectionHistoryMax)
	}
	sm.ident = clusterIdentity{id: append([]byte(nil), clusterID...)}
	sm.members = members.Clone()
	rep.Revision, rep.Fence = sm.kv.rev, sm.fence
	return rep, nil
}
