package service

import (
	"fmt"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// A new member joins a running cluster (paxosd serve --join, after
// paxosd member add): it asks the cluster for a snapshot taken now (the
// backup's stream, OpSnapshotSave) and writes it into its empty data
// directory as its own state; then it starts as any member restarting,
// from that snapshot and an empty log after it. The snapshot carries the
// cluster's identity and its membership (paxos.Configs), which is how the
// new node knows the configuration of the slots after it — and that it
// is one of its members. Its log then comes from the leader like any
// follower's. A new id never voted, so it may vote as soon as the
// configuration counts it. A member that did vote and lost its data
// directory after the membership changed joins the same way, with
// --rejoin (JoinConfig.Rejoin): then its store also holds the rejoin
// record, and it votes only once the rejoin procedure lets it (rejoin.go).

// JoinConfig says where a joining node writes its state.
type JoinConfig struct {
	// File is the snapshot saved from the cluster (a backup file).
	File        string
	DataDir     string
	ClusterName string
	ID          paxos.NodeID
	// Rejoin: the member voted before and lost its data directory
	// (serve --rejoin --join): it rebuilds by the rejoin procedure.
	Rejoin bool
}

// JoinFromBackup writes DataDir's state from File: the store's snapshot
// is the file's state, as the cluster's (its identity kept: unlike a
// restore, this is the same cluster). It refuses a directory that holds a
// store already, and a snapshot whose membership does not name ID (the
// member add has not taken effect where the snapshot was taken).
func JoinFromBackup(cfg JoinConfig) (paxos.Configs, error) {
	if cfg.ClusterName == "" {
		cfg.ClusterName = "paxosd"
	}
	if _, err := CheckBackup(cfg.File); err != nil {
		return paxos.Configs{}, err
	}
	b, err := wal.OpenBackup(cfg.File)
	if err != nil {
		return paxos.Configs{}, err
	}
	defer b.Close()
	sm, err := statemachine.RestoreFrom(smOptions(Config{}), b.Open, int64(b.Meta().Size))
	if err != nil {
		return paxos.Configs{}, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return writeJoinedStore(Config{ID: cfg.ID, ClusterID: cfg.ClusterName, DataDir: cfg.DataDir}, sm, cfg.Rejoin)
}

// writeJoinedStore writes a new member's store in cfg's data directory
// (on cfg.FS) from sm, a state of the cluster taken once the member add
// was chosen: the store's snapshot is sm's state, its log empty after it
// (and, if rejoin, the rejoin record before anything else). It refuses a
// directory that holds a store already, and a state whose membership does
// not name cfg.ID. JoinFromBackup and the node simulation's joins both
// come here.
func writeJoinedStore(cfg Config, sm *statemachine.StateMachine, rejoin bool) (paxos.Configs, error) {
	members := sm.Members()
	if _, ok := members.Latest().Member(cfg.ID); !ok {
		return members, fmt.Errorf("node %d is not a member of the cluster's configuration (version %d, members %v): run 'paxosd member add %d=HOST:PORT' first", cfg.ID, members.Latest().Version, memberIDs(members.Latest()), cfg.ID)
	}
	if sm.ClusterID() == nil {
		return members, fmt.Errorf("the cluster has no identity yet: a node can join only a cluster that has formed")
	}
	store, err := wal.Open(cfg.DataDir, wal.Identity{ClusterID: cfg.ClusterID, NodeID: cfg.ID}, wal.Options{FS: cfg.FS, MemTableBytes: cfg.MemTableBytes})
	if err != nil {
		return members, err
	}
	defer store.Close()
	if !store.IsNew() {
		return members, fmt.Errorf("data directory %s holds a store already: --join starts a new member from an empty one (a member that lost its data restarts with --rejoin)", cfg.DataDir)
	}
	if rejoin {
		// First: a crash before the state is written must not leave a
		// store that votes (a restart resumes the rejoin).
		if err := store.SetRejoin(wal.RejoinUnknown); err != nil {
			return members, err
		}
	}
	if err := writeState(store, sm); err != nil {
		return members, err
	}
	return members, store.Close()
}

// HasState reports whether dataDir holds a store with state.
func HasState(dataDir, clusterName string, id paxos.NodeID) (bool, error) {
	if clusterName == "" {
		clusterName = "paxosd"
	}
	store, err := wal.Open(dataDir, wal.Identity{ClusterID: clusterName, NodeID: id}, wal.Options{MustExist: true})
	if wal.IsNoStore(err) {
		return false, nil // nothing created either
	}
	if err != nil {
		return false, err
	}
	defer store.Close()
	return !store.IsNew(), nil
}

func memberIDs(m paxos.Membership) []paxos.NodeID {
	out := make([]paxos.NodeID, len(m.Members))
	for i, x := range m.Members {
		out[i] = x.ID
	}
	return out
}
