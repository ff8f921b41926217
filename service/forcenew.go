package service

import (
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// Disaster recovery from a lost majority (paxosd serve --force-new-cluster,
// docs/MEMBERSHIP.md): a cluster whose majority is gone for good can
// choose nothing more, and nothing it did choose can be learned from the
// dead. What one survivor holds is all there is. ForceNewCluster turns the
// survivor's data directory into the first state of a new one-member
// cluster, by the path a restore takes (statemachine.StartNewCluster,
// writeFirstState), so that nothing of the old cluster can pass for
// something of the new one:
//
//   - The state is the survivor's applied state: its snapshot replayed to
//     its watermark, as the node itself would load it. Entries above the
//     watermark were accepted but are not known chosen: they are dropped,
//     never applied (applying one that another value beat would make up
//     history). What the dead majority had chosen and the survivor had not
//     learned is lost, acknowledged or not; the caller says so in its log.
//   - A new random cluster uuid. Peers compare uuids in their hellos
//     (wire.checkClusterUUID), so a member of the old cluster restarted
//     with its old data directory is refused by the new cluster's members
//     and refuses them: it can neither vote in it nor feed it values
//     chosen under the old identity. A random uuid rather than one derived
//     from the state (as a restore's, which every restored member must
//     agree on) because there is one member to agree, and two survivors
//     forced from equal states must still not take each other for one.
//   - Revisions, fencing tokens, election terms, session ids and election
//     change numbers continue DefaultBumpRevision above the survivor's,
//     and the revisions below are compacted: the old cluster's clients
//     may hold tokens and revisions from writes the survivor never saw.
//     Every session ends, as in a restore.
//   - The membership is version 1: this node alone at its --listen
//     address. The log starts empty after the state's slot, with no
//     promise: the new cluster's ballots are its own.
//
// The data directory is replaced whole (wal.ReplaceDir): the new store is
// written beside it and swapped in, and the old one kept as
// DIR.old-cluster, for the operator to inspect or delete. While that kept
// directory exists the flag is ignored (ErrForcedBefore): a command line
// that still carries it after the first start must not cut off the
// members added since, each time the node restarts.

// ErrForcedBefore says the data directory was forced before and the old
// directory is still kept beside it: the flag was left on, and is ignored.
var ErrForcedBefore = errors.New("--force-new-cluster was run on this data directory before")

// ForceNewConfig is what serve --force-new-cluster was given.
type ForceNewConfig struct {
	DataDir     string
	ClusterName string
	ID          paxos.NodeID
	// Listen is the node's address: the new cluster's only member.
	Listen string
	// OldPeers is the old cluster's --peers, if given: the membership
	// a state from before any change was chosen replays under.
	OldPeers map[paxos.NodeID]string
	Logger   zerolog.Logger
}

// ForceNewResult says what ForceNewCluster did.
type ForceNewResult struct {
	// OldClusterID and ClusterID: the old cluster's uuid and the new one's.
	OldClusterID, ClusterID []byte
	// Slot is the slot the state is as of (the survivor's watermark);
	// Dropped the entries above it, accepted but not known chosen.
	Slot    paxos.Slot
	Dropped int
	// Report: what StartNewCluster released and the numbers it starts from.
	Report statemachine.NewClusterReport
	// Kept is where the old data directory now is.
	Kept string
	// Level is the cluster level. Below statemachine.LevelMembership a
	// snapshot does not carry the membership, and every start takes it
	// from --peers: the node must then be given --peers naming it alone.
	Level uint64
}

// ForceNewKeptDir is where ForceNewCluster keeps the old data directory.
func ForceNewKeptDir(dataDir string) string { return filepath.Clean(dataDir) + ".old-cluster" }

// ForceNewCluster replaces the data directory by the first state of a new
// one-member cluster holding the node's applied state (see above). It
// refuses a directory that holds no store or no formed cluster's state,
// and one whose node was found diverged from its cluster.
func ForceNewCluster(cfg ForceNewConfig) (ForceNewResult, error) {
	var res ForceNewResult
	if cfg.ClusterName == "" {
		cfg.ClusterName = "paxosd"
	}
	dir := filepath.Clean(cfg.DataDir) // "DIR/" + ".old-cluster" would be inside it
	staged, kept := dir+".force-new-cluster", ForceNewKeptDir(dir)
	res.Kept = kept
	hasDir, err := wal.DirExists(dir)
	if err != nil {
		return res, err
	}
	hasKept, err := wal.DirExists(kept)
	if err != nil {
		return res, err
	}
	switch {
	case hasKept && hasDir:
		return res, fmt.Errorf("%w: its old state is kept in %s; the flag is ignored (drop it from the command line; if this cluster too lost its majority, remove %s and run it again)", ErrForcedBefore, kept, kept)
	case hasKept:
		return res, fmt.Errorf("--force-new-cluster: %s does not exist but %s does: an earlier --force-new-cluster was cut short; move %s back to %s and run it again", dir, kept, kept, dir)
	case !hasDir:
		return res, fmt.Errorf("--force-new-cluster: data directory %s does not exist: run it on a surviving member's data directory", dir)
	}
	if err := wal.RemoveDir(staged); err != nil { // a crash's leftover
		return res, err
	}
	sm, st, err := loadApplied(cfg)
	if err != nil {
		return res, err
	}
	res.OldClusterID, res.Slot, res.Level = sm.ClusterID(), sm.Applied(), sm.Level()
	for _, e := range st.Entries {
		if e.Slot > st.Commit {
			res.Dropped++
		}
	}
	res.ClusterID = make([]byte, statemachine.ClusterIDBytes)
	if _, err := rand.Read(res.ClusterID); err != nil {
		return res, fmt.Errorf("--force-new-cluster: drawing a cluster uuid: %w", err)
	}
	boot := (&Config{Peers: map[paxos.NodeID]string{cfg.ID: cfg.Listen}}).bootstrapMembers()
	if res.Report, err = sm.StartNewCluster(res.ClusterID, DefaultBumpRevision, boot); err != nil {
		return res, err
	}
	if err := writeFirstState(staged, cfg.ClusterName, cfg.ID, sm); err != nil {
		_ = wal.RemoveDir(staged)
		return res, fmt.Errorf("--force-new-cluster: writing the new state: %w", err)
	}
	if err := wal.ReplaceDir(dir, staged, kept); err != nil {
		return res, fmt.Errorf("--force-new-cluster: %w", err)
	}
	return res, nil
}

// loadApplied loads the node's state machine as the node would at start:
// the stored snapshot replayed through the chosen log up to the
// watermark. It also returns the stored tail (promise, watermark, entries
// above it).
func loadApplied(cfg ForceNewConfig) (*statemachine.StateMachine, paxos.State, error) {
	noState := fmt.Errorf("--force-new-cluster: data directory %s holds no state of this node's: it starts a new cluster from a surviving member's data directory (with the same --id and --cluster-id it ran with)", cfg.DataDir)
	store, err := wal.Open(cfg.DataDir, wal.Identity{ClusterID: cfg.ClusterName, NodeID: cfg.ID}, wal.Options{MustExist: true})
	if wal.IsNoStore(err) {
		return nil, paxos.State{}, noState
	}
	if err != nil {
		return nil, paxos.State{}, err
	}
	defer store.Close()
	if slot, diverged, err := store.Diverged(); err != nil {
		return nil, paxos.State{}, err
	} else if diverged {
		return nil, paxos.State{}, fmt.Errorf("--force-new-cluster: this node's state was found to differ from its cluster's (state check at slot %d): it cannot be the new cluster's state; use another survivor's data directory or a backup", slot)
	}
	st, err := store.LoadTail()
	if err != nil {
		return nil, paxos.State{}, err
	}
	clock := systemClock{}
	sm, err := loadSnapshot(store, smOptions(Config{}), cfg.Logger, clock)
	if err != nil {
		return nil, paxos.State{}, err
	}
	peers := cfg.OldPeers
	if len(peers) == 0 {
		peers = map[paxos.NodeID]string{cfg.ID: cfg.Listen}
	}
	sm.SetBootstrapMembers((&Config{Peers: peers}).bootstrapMembers())
	if err := replay(store, sm, st.Commit, cfg.Logger, clock); err != nil {
		return nil, paxos.State{}, err
	}
	if sm.Applied() == 0 {
		return nil, paxos.State{}, noState
	}
	if sm.ClusterID() == nil {
		return nil, paxos.State{}, fmt.Errorf("--force-new-cluster: the state in %s has no cluster identity: the cluster never formed, and there is nothing to recover (start a new cluster with --new-cluster)", cfg.DataDir)
	}
	return sm, st, nil
}
