package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wal"
)

// snapshotSynopsis is what 'paxosd snapshot --help' prints above the flags.
const snapshotSynopsis = `paxosd snapshot save FILE [-w json]       save a backup: a snapshot the cluster takes now, at a linearizable point
       paxosd snapshot status FILE [-w json]     check a backup and print its slot, revision, keys, size and checksum
       paxosd snapshot restore FILE --data-dir DIR --id ID --peers 1=HOST:PORT,... [--bump-revision N]
                                                 write a data directory from which 'paxosd serve' starts a NEW cluster

A restore is run once per member of the new cluster, each with its own
--id and --data-dir and the same FILE, --peers and --bump-revision; then
'paxosd serve' starts each member on its data directory, without
--new-cluster. The new cluster has its own identity: no member of the old
cluster can join it. Its revisions, fencing tokens, election terms and
session ids continue --bump-revision above the backup's; every session
of the backup is ended (its locks are free, its leaderships and waits
gone); a watch resumed from the old cluster's revisions gets Compacted.
docs/BACKUP.md walks through it.`

// cmdSnapshot: paxosd snapshot save|status|restore.
func cmdSnapshot(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(stdout, "Usage: %s\n", snapshotSynopsis)
			return nil
		}
		return fmt.Errorf("%w: snapshot needs a subcommand: save, status or restore (see 'paxosd snapshot --help')", cli.ErrUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "save":
		return snapshotSave(args, stdout, stderr)
	case "status":
		return snapshotStatus(args, stdout)
	case "restore":
		return snapshotRestore(args, stdout)
	}
	return fmt.Errorf("%w: unknown snapshot subcommand %q: want save, status or restore (see 'paxosd snapshot --help')", cli.ErrUsage, sub)
}

// oneFile parses fs and returns its single FILE argument.
func oneFile(fs interface {
	NArg() int
	Arg(int) string
}, what string) (string, error) {
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return "", fmt.Errorf("%w: snapshot %s takes one FILE (see 'paxosd snapshot --help')", cli.ErrUsage, what)
	}
	return fs.Arg(0), nil
}

// snapshotSave streams a fresh snapshot into FILE: a temporary file beside
// it, checked in full (checksum, then every check a member makes of a
// snapshot), synced and renamed. Progress goes to stderr every 2 s.
// --timeout bounds the connection, not the transfer, which runs until it
// is done or interrupted.
func snapshotSave(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("snapshot", snapshotSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	path, err := oneFile(fs, "save")
	if err != nil {
		return err
	}
	cl, _, cancelConnect, err := cf.Connect()
	if err != nil {
		return err
	}
	cancelConnect()
	defer cl.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := wal.CreateBackup(path)
	if err != nil {
		return err
	}
	defer w.Abort() // a no-op once committed
	start := time.Now()
	last := start
	saved, err := cl.SnapshotSave(ctx, w, func(p client.SnapshotProgress) {
		if now := time.Now(); now.Sub(last) >= 2*time.Second {
			last = now
			fmt.Fprintf(stderr, "paxosd: snapshot save: %s received (slot %d, revision %d)\n", statemachine.FormatBytes(p.Bytes), p.Slot, p.Revision)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("snapshot save interrupted; %s was not written", path)
		}
		return err
	}
	if _, err := w.Finish(paxos.Slot(saved.Slot)); err != nil {
		return err
	}
	info, err := service.CheckBackup(w.TempPath())
	if err != nil {
		return fmt.Errorf("the snapshot from %s does not check (%s was not written): %w", saved.Endpoint, path, err)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	if o.json() {
		return o.print(snapshotSaveJSON{File: path, snapshotInfoJSON: snapshotJSON(info), Endpoint: saved.Endpoint, TookMs: uint64(took.Milliseconds())})
	}
	fmt.Fprintf(stdout, "saved %s: slot %d, revision %d, %d keys, %s, crc32c %08x (from %s in %s)\n",
		path, info.Slot, info.Revision, info.Keys, statemachine.FormatBytes(info.Size), info.CRC, saved.Endpoint, took)
	return nil
}

// snapshotStatus checks a backup and prints what it holds.
func snapshotStatus(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("snapshot", snapshotSynopsis)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	path, err := oneFile(fs, "status")
	if err != nil {
		return err
	}
	info, err := service.CheckBackup(path)
	if err != nil {
		return err
	}
	if o.json() {
		return o.print(snapshotStatusJSON{File: path, snapshotInfoJSON: snapshotJSON(info)})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tREVISION\tKEYS\tSIZE\tCHECKSUM")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%s\tcrc32c:%08x\n", info.Slot, info.Revision, info.Keys, statemachine.FormatBytes(info.Size), info.CRC)
	return tw.Flush()
}

// snapshotRestore writes a new member's data directory from a backup.
func snapshotRestore(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("snapshot", snapshotSynopsis)
	var dataDir, peers, clusterID string
	var id uint32
	var bump uint64
	fs.StringVar(&dataDir, "data-dir", "", "the new member's data directory (must hold no store)")
	fs.Uint32Var(&id, "id", 0, "the new member's id, one of --peers")
	fs.StringVar(&peers, "peers", "", "the new cluster's members: 1=HOST:PORT,2=HOST:PORT,... (the same on every member)")
	fs.Uint64Var(&bump, "bump-revision", service.DefaultBumpRevision, "how far above the backup's the new cluster's revisions, fencing tokens, terms and session ids start")
	fs.StringVar(&clusterID, "cluster-id", "paxosd", "cluster name, as 'paxosd serve --cluster-id'")
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	path, err := oneFile(fs, "restore")
	if err != nil {
		return err
	}
	if dataDir == "" {
		return fmt.Errorf("%w: snapshot restore needs --data-dir DIR: the new member's data directory", cli.ErrUsage)
	}
	if id == 0 {
		return fmt.Errorf("%w: snapshot restore needs --id ID: the new member's id, one of --peers", cli.ErrUsage)
	}
	pm, err := parsePeers(peers)
	if err != nil {
		return err
	}
	if _, ok := pm[paxos.NodeID(id)]; !ok {
		return fmt.Errorf("%w: --id %d is not one of --peers (%s)", cli.ErrUsage, id, formatPeers(pm))
	}
	if bump == 0 {
		return fmt.Errorf("%w: --bump-revision must be above 0: the new cluster's revisions and fencing tokens must start above the old cluster's", cli.ErrUsage)
	}
	res, err := service.RestoreBackup(service.RestoreConfig{File: path, DataDir: dataDir, ID: paxos.NodeID(id), Peers: pm, ClusterName: clusterID, Bump: bump})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snapshot restore: %w", err)
		}
		return err
	}
	r := res.Report
	if o.json() {
		return o.print(snapshotRestoreJSON{
			File: path, DataDir: dataDir, ID: id, ClusterUUID: fmt.Sprintf("%x", res.ClusterID), Slot: uint64(res.Backup.Slot),
			Keys: res.Backup.Keys, Revision: r.Revision, Fence: r.Fence, StateHash: fmt.Sprintf("%016x", res.Hash),
			SessionsEnded: r.Sessions, LocksReleased: r.Locks, WaitersDropped: r.Waiters, LeadersDropped: r.Leaders,
			CandidatesDropped: r.Candidates, EphemeralKeysDeleted: r.EphemeralKeys,
		})
	}
	fmt.Fprintf(stdout, "restored %s into %s as member %d of a new cluster (uuid %x)\n", path, dataDir, id, res.ClusterID)
	fmt.Fprintf(stdout, "  %d keys; revisions continue above %d, fencing tokens and terms above %d\n", res.Backup.Keys, r.Revision, r.Fence)
	fmt.Fprintf(stdout, "  ended %d sessions: released %d locks, dropped %d lock waiters, %d election leaders, %d candidates; deleted %d ephemeral keys\n",
		r.Sessions, r.Locks, r.Waiters, r.Leaders, r.Candidates, r.EphemeralKeys)
	fmt.Fprintf(stdout, "  state hash %016x (the same on every member restored with the same flags)\n", res.Hash)
	named := ""
	if clusterID != "paxosd" {
		named = " --cluster-id " + clusterID
	}
	fmt.Fprintf(stdout, "start it with: paxosd serve --id %d --listen %s --peers %s --data-dir %s%s\n", id, pm[paxos.NodeID(id)], formatPeers(pm), dataDir, named)
	return nil
}
