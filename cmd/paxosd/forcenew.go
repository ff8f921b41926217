package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/statemachine"
)

// forceNewCluster prepares a node started with --force-new-cluster
// (service.ForceNewCluster says what of the old cluster is kept and why):
// it rewrites the data directory as a new one-member cluster's, logs what
// was lost, and leaves --peers naming this node alone, so that the node
// then starts as any member restarting. A data directory forced before
// (its old state still kept beside it) is started normally, with a
// warning: the flag was left on the command line.
func forceNewCluster(sf *serveFlags, stderr io.Writer) error {
	if sf.join != "" || sf.rejoin || sf.newCl {
		return fmt.Errorf("%w: --force-new-cluster starts a new cluster from this node's own state: leave out --join, --rejoin and --new-cluster", cli.ErrUsage)
	}
	if err := sf.nf.check(); err != nil {
		return err // before the data directory changes, not after
	}
	if sf.id == 0 {
		return fmt.Errorf("%w: --force-new-cluster needs --id (the id this node ran with)", cli.ErrUsage)
	}
	if sf.dataDir == "" {
		return fmt.Errorf("%w: --force-new-cluster needs --data-dir (a surviving member's)", cli.ErrUsage)
	}
	var old map[paxos.NodeID]string
	if sf.peers != "" {
		var err error
		if old, err = parsePeers(sf.peers); err != nil {
			return err
		}
	}
	listen := sf.listen
	if listen == "" {
		listen = old[paxos.NodeID(sf.id)]
	}
	if err := checkHostPort(listen, true); err != nil {
		return fmt.Errorf("%w: --force-new-cluster needs --listen HOST:PORT (the new cluster's only member's address, which clients and new members reach): %v", cli.ErrUsage, err)
	}
	base, err := sf.lf.logger(stderr)
	if err != nil {
		return err
	}
	log := base.With().Uint32("node", sf.id).Logger()
	res, err := service.ForceNewCluster(service.ForceNewConfig{
		DataDir: sf.dataDir, ClusterName: sf.nf.clusterID, ID: paxos.NodeID(sf.id),
		Listen: listen, OldPeers: old, Logger: log,
	})
	if errors.Is(err, service.ErrForcedBefore) {
		log.Warn().Msg(err.Error())
	} else if err != nil {
		return err
	} else {
		log.Warn().Uint64("slot", uint64(res.Slot)).Int("dropped_unchosen_entries", res.Dropped).
			Hex("old_cluster_uuid", res.OldClusterID).Hex("cluster_uuid", res.ClusterID).Str("old_data_dir", res.Kept).
			Msg("--force-new-cluster: a new one-member cluster starts from this node's state as of slot " + fmt.Sprint(res.Slot) +
				": writes acknowledged by the old cluster that this node had not applied are LOST; its members can never rejoin it (another cluster identity): " +
				"wipe their data directories and add them back with 'paxosd member add' and 'paxosd serve --join'")
		log.Info().Uint64("revision", res.Report.Revision).Uint64("fence", res.Report.Fence).Int("sessions_ended", res.Report.Sessions).
			Int("locks_released", res.Report.Locks).Int("leaders_ended", res.Report.Leaders).
			Msg("--force-new-cluster: revisions, fencing tokens and terms continue above the old cluster's; every session ended")
		if res.Level < statemachine.LevelMembership {
			log.Warn().Uint64("level", res.Level).Msg("--force-new-cluster: the cluster level is below 16, so the membership is not in the state: start this node from now on with --peers " +
				formatPeers(map[paxos.NodeID]string{paxos.NodeID(sf.id): listen}) + " (its old --peers would make the dead members members again), until the level is raised")
		}
	}
	// From here on the node is a member of whatever cluster its state
	// names; --peers only bootstraps, and the new cluster's first
	// configuration is this node alone.
	sf.peers = formatPeers(map[paxos.NodeID]string{paxos.NodeID(sf.id): listen})
	sf.listen = listen
	return nil
}
