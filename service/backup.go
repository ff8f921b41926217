package service

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// Backup files and restores (docs/BACKUP.md). A backup is a snapshot that
// OpSnapshotSave streamed (snapshot_save.go), framed by wal's backup file
// format; these read one back for `paxosd snapshot status` and `paxosd
// snapshot restore`, with the state machine options every node uses.

// DefaultBumpRevision is the default of paxosd snapshot restore
// --bump-revision: how far above the backup's the restored cluster's
// revisions, fencing tokens, election terms, session ids and election
// change numbers start. It must exceed what the old cluster handed out
// after the save (it may have run on for hours, and its clients still
// hold its tokens): a billion is about three hours of writes at 100,000
// per second, far more than any cluster hands out tokens, and still
// leaves room for 18 billion restores before a 64-bit counter runs out.
// It is etcdutl's recommended bump as well.
const DefaultBumpRevision = 1_000_000_000

// BackupInfo describes a backup file.
type BackupInfo struct {
	// Slot, Revision: the log slot and store revision its state is as of.
	Slot     paxos.Slot
	Revision uint64
	// Keys and LiveBytes: its keys, and their keys' and values' bytes.
	Keys      int
	LiveBytes uint64
	// Size and CRC: the snapshot's bytes and their CRC-32C; FileBytes
	// the file's size (the snapshot and its frame).
	Size      uint64
	CRC       uint32
	FileBytes int64
	// Fence: the last fencing token (or election term) handed out.
	Fence uint64
	// ClusterID: the uuid of the cluster it was saved from (nil: none).
	ClusterID []byte
	// Level: the cluster level.
	Level uint64
	// Sessions, Locks, Elections: the open sessions and lock and
	// election records it holds (a restore ends every session).
	Sessions, Locks, Elections int
}

// CheckBackup reads the backup file at path through and checks it: its
// frame and checksum (wal.OpenBackup), then every check a member makes of
// a snapshot before installing one, without keeping the keys. Any error
// wraps wal.ErrBadBackup or statemachine.ErrBadSnapshot, or is the file's
// (it cannot be opened).
func CheckBackup(path string) (BackupInfo, error) {
	b, err := wal.OpenBackup(path)
	if err != nil {
		return BackupInfo{}, err
	}
	defer b.Close()
	if err := b.Verify(); err != nil {
		return BackupInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	info, err := statemachine.CheckSnapshot(smOptions(Config{}), b.Open, int64(b.Meta().Size))
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	m := b.Meta()
	if info.Applied != m.Slot {
		return BackupInfo{}, fmt.Errorf("%s: %w: its trailer says slot %d, its state is as of slot %d", path, wal.ErrBadBackup, m.Slot, info.Applied)
	}
	return BackupInfo{
		Slot: info.Applied, Revision: info.Revision, Keys: info.Keys, LiveBytes: info.LiveBytes,
		Size: m.Size, CRC: m.CRC, FileBytes: b.FileBytes, Fence: info.Fence, ClusterID: info.ClusterID, Level: info.Level,
		Sessions: info.Sessions, Locks: info.Locks, Elections: info.Elections,
	}, nil
}

// RestoreConfig is what paxosd snapshot restore was given.
type RestoreConfig struct {
	// File is the backup; DataDir the new member's data directory (it
	// must hold no store); ID the member and Peers the new cluster's
	// members (the same on every member: the new cluster's uuid derives
	// from them); ClusterName the cluster name (serve --cluster-id).
	File        string
	DataDir     string
	ID          paxos.NodeID
	Peers       map[paxos.NodeID]string
	ClusterName string
	// Bump: how far above the backup's the numbers continue (> 0).
	Bump uint64
}

// RestoreResult says what a restore wrote.
type RestoreResult struct {
	Backup    BackupInfo
	ClusterID []byte
	// Report: what the restore released, and the numbers it starts from.
	Report statemachine.NewClusterReport
	// Hash: the state check's hash of the restored state; every member
	// restored from the same backup with the same flags has the same.
	Hash uint64
}

// RestoreBackup writes a data directory from which `paxosd serve` starts
// a member of a new cluster holding the backup's state
// (statemachine.StartNewCluster says what of it is kept): the state is
// the store's snapshot, the log is empty after it, and the store is
// marked formed. The new cluster's uuid is derived from the backup and
// the flags, so that every member restored with the same ones agrees on
// it and on the state, and no member of the old cluster (or of a cluster
// restored with other members) is ever taken for one of its own.
func RestoreBackup(cfg RestoreConfig) (RestoreResult, error) {
	var res RestoreResult
	if _, ok := cfg.Peers[cfg.ID]; !ok || cfg.ID == 0 {
		return res, fmt.Errorf("--id %d is not one of --peers", cfg.ID)
	}
	if cfg.Bump == 0 {
		return res, errors.New("--bump-revision must be above 0: the new cluster's revisions and fencing tokens must start above the old cluster's")
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "paxosd"
	}
	info, err := CheckBackup(cfg.File)
	if err != nil {
		return res, err
	}
	res.Backup = info
	b, err := wal.OpenBackup(cfg.File)
	if err != nil {
		return res, err
	}
	defer b.Close()
	sm, err := statemachine.RestoreFrom(smOptions(Config{}), b.Open, int64(b.Meta().Size))
	if err != nil {
		return res, fmt.Errorf("%s: %w", cfg.File, err)
	}
	res.ClusterID = restoredClusterID(b.Meta(), cfg)
	// The new cluster's membership is its --peers, as serve's
	// (bootstrapMembers), so that the snapshot's (from cluster level 16
	// on) is the configuration its members would start from anyway.
	boot := (&Config{Peers: cfg.Peers}).bootstrapMembers()
	if res.Report, err = sm.StartNewCluster(res.ClusterID, cfg.Bump, boot); err != nil {
		return res, err
	}
	res.Hash = sm.Hash()
	return res, writeFirstState(cfg.DataDir, cfg.ClusterName, cfg.ID, sm)
}

// writeFirstState writes a new store in dataDir (which must hold none)
// whose state is sm's: sm as its snapshot, an empty log after it, and the
// store marked formed (wal.Store.RestoreSnapshot). A restore and a
// --force-new-cluster write their new cluster's first state so.
func writeFirstState(dataDir, clusterName string, id paxos.NodeID, sm *statemachine.StateMachine) error {
	store, err := wal.Open(dataDir, wal.Identity{ClusterID: clusterName, NodeID: id}, wal.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if !store.IsNew() {
		return fmt.Errorf("data directory %s holds a store already: restore into a new, empty directory", dataDir)
	}
	if err := writeState(store, sm); err != nil {
		return err
	}
	return store.Close()
}

// writeState makes sm's state the new store's: sm as its snapshot, an
// empty log after it, the store marked formed (wal.Store.RestoreSnapshot).
// A restore, a --force-new-cluster and a join write their store so.
func writeState(store *wal.Store, sm *statemachine.StateMachine) error {
	view, err := sm.View()
	if err != nil {
		return err
	}
	w, err := store.CreateSnapshot(view.Applied())
	if err != nil {
		return err
	}
	if _, err := view.WriteTo(w); err != nil {
		w.Abort()
		return err
	}
	if _, err := w.Finish(); err != nil {
		w.Abort()
		return err
	}
	if err := store.RestoreSnapshot(w); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// restoredClusterID derives the new cluster's uuid from the backup (its
// slot, size and checksum), the bump, the cluster name and the members:
// the same on every member restored with the same flags, different for
// another backup or another membership.
func restoredClusterID(m wal.SnapshotMeta, cfg RestoreConfig) []byte {
	h := sha256.New()
	io.WriteString(h, "paxosd restore 1\x00")
	var nums [8 * 4]byte
	binary.BigEndian.PutUint64(nums[0:], uint64(m.Slot))
	binary.BigEndian.PutUint64(nums[8:], m.Size)
	binary.BigEndian.PutUint64(nums[16:], uint64(m.CRC))
	binary.BigEndian.PutUint64(nums[24:], cfg.Bump)
	h.Write(nums[:])
	io.WriteString(h, cfg.ClusterName+"\x00")
	ids := make([]paxos.NodeID, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(h, "%d=%s\x00", id, cfg.Peers[id])
	}
	return h.Sum(nil)[:statemachine.ClusterIDBytes]
}
