package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wal"
)

// joinTimeout bounds asking the cluster for its membership and snapshot.
const joinTimeout = 5 * time.Minute

// joinCluster prepares a node started with --join: it asks the cluster
// at the --join endpoints for its membership (refusing to start unless
// the membership names this node: member add comes first), and, if the
// data directory holds no state, for a snapshot taken now, which becomes
// the node's state (service.JoinFromBackup). It returns the members'
// addresses, which stand in for --peers. On a data directory with state
// (a joined node restarting) only the membership is asked for, and the
// node starts from its own state if the cluster cannot be reached.
//
// With --rejoin too (a member that lost its data directory after the
// membership changed, so that --peers no longer names the cluster) it
// does the same, and the node starts by the rejoin procedure
// (service/join.go), voting only once every member has answered and it
// has caught up past them. Its state comes from the cluster's snapshot,
// not from --peers, whose first configuration the log's first slots
// would be applied on top of.
func joinCluster(sf *serveFlags, log zerolog.Logger) (map[paxos.NodeID]string, error) {
	id := paxos.NodeID(sf.id)
	if id == 0 {
		return nil, fmt.Errorf("%w: --join needs --id", cli.ErrUsage)
	}
	if sf.listen == "" {
		return nil, fmt.Errorf("%w: --join needs --listen HOST:PORT, the address given to paxosd member add", cli.ErrUsage)
	}
	if sf.dataDir == "" {
		return nil, fmt.Errorf("%w: --join needs --data-dir", cli.ErrUsage)
	}
	if sf.peers != "" || sf.newCl {
		return nil, fmt.Errorf("%w: --join takes the membership from the cluster: leave out --peers and --new-cluster", cli.ErrUsage)
	}
	endpoints := strings.Split(sf.join, ",")
	for i, e := range endpoints {
		endpoints[i] = strings.TrimSpace(e)
		if err := checkHostPort(endpoints[i], true); err != nil {
			return nil, fmt.Errorf("%w: --join endpoint %q: %v", cli.ErrUsage, e, err)
		}
	}
	has, err := service.HasState(sf.dataDir, sf.nf.clusterID, id)
	if err != nil {
		return nil, err
	}
	ccfg := client.Config{Endpoints: endpoints, ClusterID: sf.nf.clusterID, AutoSyncInterval: -1}
	if sf.tf.on() {
		if ccfg.TLS, err = sf.tf.joinTLS(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	cl, err := client.NewWithConfig(ctx, ccfg)
	if err != nil {
		if has {
			log.Warn().Err(err).Msg("--join: the cluster cannot be reached; starting from this node's own state")
			return map[paxos.NodeID]string{id: sf.listen}, nil
		}
		return nil, fmt.Errorf("--join: %w", err)
	}
	defer cl.Close()
	m, err := cl.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("--join: asking %s for the membership: %w", sf.join, err)
	}
	peers := map[paxos.NodeID]string{}
	var self *client.Member
	for i, x := range m.Members {
		peers[x.ID] = x.Addr
		if x.ID == id {
			self = &m.Members[i]
		}
	}
	if self == nil && !has && sf.rejoin {
		return nil, fmt.Errorf("node %d is not a member of the cluster at %s (membership version %d): it was removed, or never added; to bring this machine back, run 'paxosd member add ID=%s' with an id never used, then start it with --join and that id on an empty data directory", id, sf.join, m.Version, sf.listen)
	}
	if self == nil && !has {
		return nil, fmt.Errorf("node %d is not a member of the cluster at %s (membership version %d): run 'paxosd member add %d=%s' first", id, sf.join, m.Version, id, sf.listen)
	}
	if self != nil && self.Addr != sf.listen {
		return nil, fmt.Errorf("node %d is a member at %s, not at --listen %s: start it there, or run 'paxosd member update %d=%s' first", id, self.Addr, sf.listen, id, sf.listen)
	}
	if has {
		return peers, nil
	}
	if self != nil && !sf.rejoin && !has {
		self = heardOf(ctx, cl, ccfg, id, *self)
	}
	if self != nil && !sf.rejoin && (self.Reachable || self.Commit > 0) {
		// A new id has never been heard from. This one has: it runs
		// elsewhere, or it ran here and its data directory was lost (a
		// unit file's --join run again), and then it must not vote with
		// the promises it forgot. (Only as good as the answering node's
		// memory: a leader hears every member, and forgets on restart.)
		return nil, fmt.Errorf("node %d has taken part in the cluster already (last heard at slot %d): if its data directory was lost, start it with --rejoin --join %s; if it runs elsewhere, stop that one first", id, self.Commit, sf.join)
	}
	// The snapshot goes to a backup file beside the data directory (a
	// file the store's own checks then read, as paxosd snapshot save
	// writes one), removed once the store holds it.
	file := filepath.Join(filepath.Dir(filepath.Clean(sf.dataDir)), "."+filepath.Base(filepath.Clean(sf.dataDir))+".join-snapshot")
	w, err := wal.CreateBackup(file)
	if err != nil {
		return nil, fmt.Errorf("--join: %w", err)
	}
	defer w.Abort() // a no-op once committed
	defer wal.RemoveBackup(file)
	what := "joining"
	if sf.rejoin {
		what = "rejoining with the cluster's membership"
	}
	log.Info().Strs("from", endpoints).Uint64("membership_version", m.Version).Msg(what + ": fetching a snapshot of the cluster's state")
	saved, err := cl.SnapshotSave(ctx, w, nil)
	if err != nil {
		return nil, fmt.Errorf("--join: fetching the cluster's snapshot: %w", err)
	}
	if _, err := w.Finish(paxos.Slot(saved.Slot)); err != nil {
		return nil, fmt.Errorf("--join: %w", err)
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("--join: %w", err)
	}
	if _, err := service.JoinFromBackup(service.JoinConfig{File: file, DataDir: sf.dataDir, ClusterName: sf.nf.clusterID, ID: id, Rejoin: sf.rejoin}); err != nil {
		return nil, fmt.Errorf("--join: %w", err)
	}
	log.Info().Uint64("slot", saved.Slot).Uint64("bytes", saved.Size).Msg("joined: state written from the cluster's snapshot; the log follows from the leader")
	return peers, nil
}

// heardOf returns what the leader knows of member id (a leader hears
// every member's watermark; a follower, none), or self, as first
// answered, if the leader cannot be asked.
func heardOf(ctx context.Context, cl *client.Client, ccfg client.Config, id paxos.NodeID, self client.Member) *client.Member {
	for _, ms := range cl.Members(ctx) {
		if ms.Err != nil || ms.Status.Role != "leader" {
			continue
		}
		lcfg := ccfg
		lcfg.Endpoints = []string{ms.Endpoint}
		lc, err := client.NewWithConfig(ctx, lcfg)
		if err != nil {
			break
		}
		defer lc.Close()
		m, err := lc.MemberList(ctx)
		if err != nil {
			break
		}
		for _, x := range m.Members {
			if x.ID == id && (x.Reachable || x.Commit > 0) {
				return &x
			}
		}
		break
	}
	return &self
}

// joinTLS is the client TLS a joining node asks the cluster with: its
// own certificate (a node's is good for clientAuth, and names it a
// member) and the CA that signs the nodes'.
func (f *tlsFlags) joinTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: --cert-file/--key-file: %w", err)
	}
	caFile := f.trustedCA
	if f.peerTrustedCA != "" {
		caFile = f.peerTrustedCA
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS: %s holds no PEM certificate", caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}
