package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
)

// nodeFlags are the tuning flags serve and dev share.
type nodeFlags struct {
	clusterID      string
	tick           time.Duration
	heartbeatTicks int
	electionTicks  int
	window         int
	batchBytesMax  int
	valueBytesMax  int
	frameBytesMax  int
	backlogBytes   int
	sessionsMax    int
	snapEntries    int
	snapKeep       int
	noSync         bool
	watchProgress  time.Duration
	watchBacklog   int
	watchSlowAfter time.Duration
	installNice    int
	fetchRate      string
}

func (f *nodeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.clusterID, "cluster-id", "paxosd", "cluster name; nodes and clients of another cluster are refused")
	fs.DurationVar(&f.tick, "tick", 10*time.Millisecond, "protocol tick")
	fs.IntVar(&f.heartbeatTicks, "heartbeat-ticks", 3, "ticks between leader heartbeats")
	fs.IntVar(&f.electionTicks, "election-ticks", 15, "ticks of leader silence before an election (randomized up to twice this); also bounds the leader's read lease")
	fs.IntVar(&f.window, "window", 256, "slots a leader keeps in flight")
	fs.IntVar(&f.batchBytesMax, "batch-bytes-max", 1<<20, "bytes of commands batched into one slot")
	fs.IntVar(&f.valueBytesMax, "value-bytes-max", 1<<20, "largest value this node accepts from clients (set it alike on every node; at most 64 MiB)")
	fs.IntVar(&f.frameBytesMax, "frame-bytes-max", 16<<20, "largest wire frame accepted")
	fs.IntVar(&f.sessionsMax, "sessions-per-client-max", service.DefaultSessionsPerClientMax, "sessions one client (client id) may have open through this node; a session open past it is refused, quota exceeded: too many sessions (0: no limit)")
	fs.IntVar(&f.backlogBytes, "backlog-bytes-max", service.DefaultBacklogBytesMax, "bytes of client commands waiting for the log before the node sheds requests: writes past half, lock and election ops past three quarters, keep-alives past all of it (answered busy: retry after N ms)")
	fs.IntVar(&f.snapEntries, "snapshot-entries", 10000, "snapshot the state machine every N applied slots and delete the log below it")
	fs.IntVar(&f.snapKeep, "snapshot-keep-entries", 0, "slots of log kept below a snapshot for followers slightly behind (default min(--snapshot-entries, 5000))")
	fs.DurationVar(&f.watchProgress, "watch-progress-interval", 10*time.Second, "send a watch that has had no change for this long the revision it is up to date with, so its client resumes from there (0: never)")
	fs.IntVar(&f.watchBacklog, "watch-backlog-bytes", 4<<20, "stop sending watch events on a client connection holding this many bytes of unread answers (each watch waits at its revision)")
	fs.DurationVar(&f.watchSlowAfter, "watch-slow-after", 10*time.Second, "end a watch held that long by --watch-backlog-bytes with err SlowWatcher (its client resumes it)")
	fs.StringVar(&f.fetchRate, "snapshot-fetch-rate", "32MiB", "the most bytes a second a rejoining node copies another member's snapshot at, leaving the member it reads from, and the disk, to the cluster's writes (0: no bound)")
	fs.IntVar(&f.installNice, "install-nice", service.DefaultInstallNice, "raise by this much (up to nice 19) the nice value of the threads that fetch, check and decode another member's snapshot, so that a rejoining node leaves the CPU to the cluster's writes (Linux; 0: they run as the node's other work)")
	fs.BoolVar(&f.noSync, "unsafe-no-fsync", false, "skip fsync (loses acknowledged writes on power failure; testing only)")
}

// check reports flag values that would otherwise be replaced by defaults
// without a word.
func (f *nodeFlags) check() error {
	if f.snapEntries <= 0 {
		return fmt.Errorf("%w: --snapshot-entries must be at least 1 (got %d)", cli.ErrUsage, f.snapEntries)
	}
	if f.watchProgress < 0 {
		return fmt.Errorf("%w: --watch-progress-interval must not be negative (got %v; 0 turns progress notifications off)", cli.ErrUsage, f.watchProgress)
	}
	if f.watchBacklog < 64<<10 {
		return fmt.Errorf("%w: --watch-backlog-bytes must be at least 65536 (got %d): below that a watch would be held for every push", cli.ErrUsage, f.watchBacklog)
	}
	if f.watchSlowAfter <= 0 {
		return fmt.Errorf("%w: --watch-slow-after must be positive (got %v)", cli.ErrUsage, f.watchSlowAfter)
	}
	if f.sessionsMax < 0 {
		return fmt.Errorf("%w: --sessions-per-client-max must not be negative (got %d; 0 turns the limit off)", cli.ErrUsage, f.sessionsMax)
	}
	if f.backlogBytes <= 0 {
		return fmt.Errorf("%w: --backlog-bytes-max must be at least 1 (got %d)", cli.ErrUsage, f.backlogBytes)
	}
	if _, err := f.snapshotFetchRate(); err != nil {
		return err
	}
	if f.installNice < 0 || f.installNice > 19 {
		return fmt.Errorf("%w: --install-nice must be 0 to 19 (got %d)", cli.ErrUsage, f.installNice)
	}
	if f.snapKeep < 0 {
		return fmt.Errorf("%w: --snapshot-keep-entries must not be negative (got %d)", cli.ErrUsage, f.snapKeep)
	}
	return nil
}

// snapshotFetchRate is --snapshot-fetch-rate as service.Config takes it:
// bytes a second, -1 for no bound.
func (f *nodeFlags) snapshotFetchRate() (int64, error) {
	if strings.TrimSpace(f.fetchRate) == "0" {
		return -1, nil
	}
	n, err := parseBytes(f.fetchRate)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("%w: --snapshot-fetch-rate %q is not a size: want bytes a second, such as 32MiB or 100MB (0: no bound)", cli.ErrUsage, f.fetchRate)
	}
	return int64(n), nil
}

func (f *nodeFlags) apply(c *service.Config) {
	c.ClusterID = f.clusterID
	c.TickInterval = f.tick
	c.HeartbeatTicks = f.heartbeatTicks
	c.ElectionTicks = f.electionTicks
	c.WindowSlots = f.window
	c.BatchBytesMax = f.batchBytesMax
	c.ValueBytesMax = f.valueBytesMax
	c.FrameBytesMax = f.frameBytesMax
	c.BacklogBytesMax = f.backlogBytes
	c.SessionsPerClientMax = f.sessionsMax
	if f.sessionsMax == 0 {
		c.SessionsPerClientMax = -1 // no limit; the Config's zero is the default
	}
	c.SnapshotEntries = f.snapEntries
	c.SnapshotKeepEntries = f.snapKeep
	c.InstallNice = f.installNice
	c.SnapshotFetchRate, _ = f.snapshotFetchRate() // check refused a bad one
	if f.installNice == 0 {
		c.InstallNice = -1 // as the node's; the Config's zero is the default
	}
	c.NoSync = f.noSync
	c.WatchBacklogBytes = int64(f.watchBacklog)
	c.WatchSlowAfter = f.watchSlowAfter
	c.WatchProgressInterval = f.watchProgress
	if f.watchProgress == 0 {
		c.WatchProgressInterval = -1 // off; the Config's zero is the default
	}
}

// serveSynopsis is what 'paxosd serve --help' prints above the flags.
const serveSynopsis = `paxosd serve --id N --listen HOST:PORT --peers 1=HOST:PORT,2=...,3=... --data-dir DIR
       paxosd serve --config FILE

Runs one member of a cluster. Start a new cluster with --new-cluster on
every member (left on later, it does nothing: a member that voted and lost
its data is refused whatever its flags); see docs/OPERATIONS.md.

Every flag but --new-cluster, --rejoin and --force-new-cluster may also be set
  - in the YAML file --config (or $PAXOSD_CONFIG) names, whose keys are the
    flag names ("data-dir: /var/lib/paxosd"; peers may be a list), and
  - in an environment variable: PAXOSD_DATA_DIR for --data-dir, and so on.
The command line wins over the environment, the environment over the file,
and the file over the defaults shown below. --new-cluster, --rejoin and
--force-new-cluster act once and are read only from the command line.`

// serveFlags are serve's flags.
type serveFlags struct {
	config  string
	id      uint32
	listen  string
	peers   string
	dataDir string
	httpAt  string
	pprof   bool
	newCl   bool
	rejoin  bool
	force   bool
	join    string
	nf      nodeFlags
	tf      tlsFlags
	lf      logFlags
	fs      *pflag.FlagSet // the set these are bound to
}

func (s *serveFlags) flagSet() *pflag.FlagSet {
	fs := cli.NewFlags("serve", serveSynopsis)
	s.fs = fs
	fs.StringVar(&s.config, "config", "", "YAML file of flag settings (or $PAXOSD_CONFIG)")
	fs.Uint32Var(&s.id, "id", 0, "this node's id (one of --peers)")
	fs.StringVar(&s.listen, "listen", "", "address serving peers and clients (default: this node's --peers address)")
	fs.StringVar(&s.peers, "peers", "", "every member as ID=HOST:PORT, comma-separated")
	fs.StringVar(&s.dataDir, "data-dir", "", "directory for durable state")
	fs.BoolVar(&s.newCl, "new-cluster", false, "the cluster may be new: with an empty --data-dir, form it once a quorum of members is as new as this one, or join it if it formed without this node (harmless later: ignored once the node has state; command line only)")
	fs.StringVar(&s.join, "join", "", "a new member joins a running cluster through these members (HOST:PORT,...), after 'paxosd member add ID=HOST:PORT': with an empty --data-dir it takes the cluster's membership and a snapshot of its state; --peers is not needed")
	fs.BoolVar(&s.rejoin, "rejoin", false, "this member lost its data directory: rebuild it from the other members, voting again only once caught up; with --join HOST:PORT,... it takes the membership from the cluster instead of --peers (needed once the membership has changed) (ignored, with a warning, once the node has state; command line only)")
	fs.BoolVar(&s.force, "force-new-cluster", false, "disaster recovery after the majority's machines are lost: start a new one-member cluster from this surviving member's --data-dir (a new cluster identity; writes it had not applied are lost); add members to it with 'paxosd member add' and --join. Act once: command line only (docs/MEMBERSHIP.md)")
	fs.StringVar(&s.httpAt, "http-listen", "", "address for the status page (/), /metrics, /healthz and /readyz, over TLS when TLS is on (default: off)")
	fs.BoolVar(&s.pprof, "enable-pprof", false, "also serve Go's profiles on --http-listen at /debug/pprof/")
	s.tf.register(fs)
	s.nf.register(fs)
	s.lf.register(fs, "info")
	return fs
}

// parseServe reads serve's settings from the command line, the
// environment and the config file.
func parseServe(args, environ []string) (*serveFlags, *configSources, error) {
	var s serveFlags
	fs := s.flagSet()
	if err := cli.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%w: serve takes no arguments, got %q", cli.ErrUsage, fs.Args())
	}
	src, err := layerConfig(fs, environ)
	if err != nil {
		return nil, nil, err
	}
	return &s, src, nil
}

func cmdServe(args []string, stderr io.Writer) error {
	sf, src, err := parseServe(args, os.Environ())
	if err != nil {
		return err
	}
	if sf.force {
		if err := forceNewCluster(sf, stderr); err != nil {
			return err
		}
	}
	if sf.join != "" {
		log, err := sf.lf.logger(stderr)
		if err != nil {
			return err
		}
		peers, err := joinCluster(sf, log.With().Uint32("node", sf.id).Logger())
		if err != nil {
			return err
		}
		sf.peers = formatPeers(peers)
	}
	cfg, err := sf.nodeConfig(stderr)
	if err != nil {
		return src.explain(err)
	}
	log := cfg.Logger
	for _, w := range src.warnings {
		log.Warn().Msg(w)
	}
	if len(src.from) > 0 {
		log.Info().Str("config", src.file).Strs("from_file", src.setBy(false)).Strs("from_env", src.setBy(true)).Msg("settings read")
	}
	if cfg.TLS != nil {
		c := cfg.TLS.Certificate()
		log.Info().Str("cert", c.Subject.CommonName).Time("not_after", c.NotAfter).Bool("client_cert_auth", sf.tf.clientCertAuth).
			Bool("peer_ca", sf.tf.peerTrustedCA != "").Bool("crl", sf.tf.crlFile != "").Msg("TLS on: peers and clients")
	}
	if sf.pprof && sf.httpAt == "" {
		log.Warn().Msg("--enable-pprof does nothing without --http-listen")
	}
	var httpLn net.Listener
	if sf.httpAt != "" {
		if httpLn, err = listenHTTP(sf.httpAt); err != nil {
			return src.explain(err)
		}
	}
	limitMemoryForLoad(cfg.DataDir)
	cfg.StateLoaded = limitMemoryForReplay
	n, err := service.Start(cfg)
	if err != nil {
		if httpLn != nil {
			httpLn.Close()
		}
		return err
	}
	if httpLn != nil {
		serveHTTP(httpLn, n, log, httpOptions{pprof: sf.pprof, tls: cfg.TLS})
	}
	stopMemory := make(chan struct{})
	defer close(stopMemory)
	followMemory(stopMemory, n)
	if cfg.TLS != nil {
		go cfg.TLS.Watch(stopMemory)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	// SIGHUP re-reads the TLS files (systemctl reload); it never stops
	// the node, TLS or not.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stopStatus := notifyReady(n, cfg, log)
	var s os.Signal
wait:
	for {
		select {
		case <-hup:
			if cfg.TLS == nil {
				log.Info().Msg("SIGHUP: nothing to reload (TLS is off)")
				continue
			}
			cfg.TLS.Reload() // it logs what it did
		case s = <-sig:
			log.Info().Uint32("node", sf.id).Str("signal", s.String()).Msg("shutting down")
			// A leader hands its leadership over first: writes then pause for
			// one election round instead of an election timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			start := time.Now()
			if to, err := n.TransferLeadership(ctx, 0); err != nil {
				log.Warn().Err(err).Msg("could not hand leadership over before stopping")
			} else if to != 0 {
				log.Info().Uint32("node", sf.id).Uint32("new_leader", uint32(to)).Dur("took_ms", time.Since(start)).Msg("leadership handed over")
			}
			cancel()
			break wait
		case <-n.Done():
			break wait
		}
	}
	stopStatus()
	notify(log, "STOPPING=1")
	n.Stop()
	if s != nil {
		return nil
	}
	return n.Err()
}

// nodeConfig turns the flags into the node's configuration, checking them.
func (sf *serveFlags) nodeConfig(stderr io.Writer) (service.Config, error) {
	if err := sf.nf.check(); err != nil {
		return service.Config{}, err
	}
	peerMap, err := parsePeers(sf.peers)
	if err != nil {
		return service.Config{}, err
	}
	listen := sf.listen
	if listen == "" {
		listen = peerMap[paxos.NodeID(sf.id)]
	} else if err := checkHostPort(listen, false); err != nil {
		return service.Config{}, fmt.Errorf("%w: --listen: %v", cli.ErrUsage, err)
	}
	log, err := sf.lf.logger(stderr)
	if err != nil {
		return service.Config{}, err
	}
	cfg := service.Config{ID: paxos.NodeID(sf.id), Listen: listen, Peers: peerMap, DataDir: sf.dataDir, Logger: log, Join: service.JoinExisting, Version: version}
	switch {
	case sf.rejoin:
		// --rejoin wins over a --new-cluster left on the command line: it
		// is what a refused member is told to add.
		cfg.Join = service.JoinRejoin
	case sf.newCl:
		cfg.Join = service.JoinForm
	}
	sf.nf.apply(&cfg)
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		// The command line's mistake, said without the package's prefix.
		return service.Config{}, fmt.Errorf("%w: %s", cli.ErrUsage, strings.TrimPrefix(err.Error(), service.ErrConfig.Error()+": "))
	}
	if cfg.TLS, err = sf.tf.nodeTLS(cfg.ID, log); err != nil {
		return service.Config{}, err
	}
	return cfg, nil
}

// parsePeers reads "1=host:port,2=host:port".
func parsePeers(s string) (map[paxos.NodeID]string, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: --peers is required, e.g. --peers 1=10.0.0.1:7401,2=10.0.0.2:7401,3=10.0.0.3:7401", cli.ErrUsage)
	}
	out := map[paxos.NodeID]string{}
	for _, part := range strings.Split(s, ",") {
		idStr, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		id, err := strconv.ParseUint(idStr, 10, 32)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("%w: --peers entry %q: want ID=HOST:PORT with a positive ID", cli.ErrUsage, part)
		}
		if err := checkHostPort(addr, true); err != nil {
			return nil, fmt.Errorf("%w: --peers entry %q: %v; want ID=HOST:PORT", cli.ErrUsage, part, err)
		}
		if _, dup := out[paxos.NodeID(id)]; dup {
			return nil, fmt.Errorf("%w: --peers lists node %d twice", cli.ErrUsage, id)
		}
		out[paxos.NodeID(id)] = addr
	}
	return out, nil
}

// checkHostPort says what is wrong with a HOST:PORT address, if anything;
// the host may be empty (every interface) only where needHost is false.
func checkHostPort(addr string, needHost bool) error {
	if strings.ContainsAny(addr, " \t\n") {
		return fmt.Errorf("address %q contains a space", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("address %q: %s", addr, ae.Err)
		}
		return err
	}
	if host == "" && needHost {
		return fmt.Errorf("address %q has no host", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("address %q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}

func formatPeers(m map[paxos.NodeID]string) string {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d=%s", id, m[paxos.NodeID(id)])
	}
	return strings.Join(parts, ",")
}
