package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
)

func cmdDev(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("dev", "paxosd dev [--data-dir DIR] [--base-port 7401] [--nodes 3] [--tls]")
	var (
		dataDir  string
		host     string
		basePort int
		nodes    int
		httpBase int
		withTLS  bool
		pprof    bool
		nf       nodeFlags
		lf       logFlags
	)
	fs.StringVar(&dataDir, "data-dir", "", "directory for the nodes' data (default: a new temporary directory)")
	fs.StringVar(&host, "host", "127.0.0.1", "address the nodes listen on")
	fs.IntVar(&basePort, "base-port", 7401, "node i listens on base-port+i-1")
	fs.IntVar(&nodes, "nodes", 3, "number of nodes (3 or 5 make sense)")
	fs.IntVar(&httpBase, "http-base-port", 8401, "node i serves its status page (/), /metrics, /healthz, /readyz on http-base-port+i-1 (0: off)")
	fs.BoolVar(&pprof, "enable-pprof", false, "also serve Go's profiles at /debug/pprof/ on the HTTP ports")
	fs.BoolVar(&withTLS, "tls", false, "make a throwaway CA and certificates in DATA-DIR/tls and run the cluster with TLS and client certificates required")
	nf.register(fs)
	lf.register(fs, "warn")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := nf.check(); err != nil {
		return err
	}
	if nodes < 1 || nodes > 9 {
		return fmt.Errorf("%w: --nodes must be between 1 and 9", cli.ErrUsage)
	}
	if dataDir == "" {
		d, err := os.MkdirTemp("", "paxosd-dev-")
		if err != nil {
			return err
		}
		dataDir = d
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	peers := map[paxos.NodeID]string{}
	var endpoints []string
	for i := 1; i <= nodes; i++ {
		addr := fmt.Sprintf("%s:%d", host, basePort+i-1)
		peers[paxos.NodeID(i)] = addr
		endpoints = append(endpoints, addr)
	}
	var running []*service.Node
	stopAll := func() {
		for _, n := range running {
			n.Stop()
		}
	}
	var httpLns []net.Listener
	if httpBase != 0 {
		for i := 1; i <= nodes; i++ {
			ln, err := listenHTTP(fmt.Sprintf("%s:%d", host, httpBase+i-1))
			if err != nil {
				for _, ln := range httpLns {
					ln.Close()
				}
				return err
			}
			httpLns = append(httpLns, ln)
		}
	}
	var dirs []string
	for i := 1; i <= nodes; i++ {
		dirs = append(dirs, filepath.Join(dataDir, fmt.Sprintf("node%d", i)))
	}
	var dt *devTLS
	if withTLS {
		if dt, err = makeDevTLS(filepath.Join(dataDir, "tls"), nodes, []string{host}, log); err != nil {
			for _, ln := range httpLns {
				ln.Close()
			}
			return fmt.Errorf("--tls: %w", err)
		}
	}
	limitMemoryForLoad(dirs...)
	for i := 1; i <= nodes; i++ {
		cfg := service.Config{
			ID: paxos.NodeID(i), Listen: peers[paxos.NodeID(i)], Peers: peers,
			DataDir: dirs[i-1], Logger: log,
			Version: version,
			// A laptop's disk: the first leader proposes this as the
			// cluster's quota (replicated, so every node agrees).
			DefaultQuotaBytes: 1 << 30,
		}
		if dt != nil {
			cfg.TLS = dt.nodes[i-1]
		}
		nf.apply(&cfg)
		n, err := service.Start(cfg)
		if err != nil {
			stopAll()
			return fmt.Errorf("starting node %d: %w", i, err)
		}
		running = append(running, n)
		if httpBase != 0 {
			serveHTTP(httpLns[i-1], n, log, httpOptions{pprof: pprof, tls: cfg.TLS})
		}
	}
	stopMemory := make(chan struct{})
	defer close(stopMemory)
	followMemory(stopMemory, running...)
	eps := strings.Join(endpoints, ",")
	scheme, mode := "http", ""
	if dt != nil {
		scheme, mode = "https", ", TLS with client certificates"
	}
	fmt.Fprintf(stdout, "paxosd dev: %d nodes running (cluster %q%s)\n", nodes, nf.clusterID, mode)
	fmt.Fprintf(stdout, "  data:      %s\n", dataDir)
	fmt.Fprintf(stdout, "  endpoints: %s\n", eps)
	fmt.Fprintf(stdout, "  peers:     %s\n", formatPeers(peers))
	if dt != nil {
		fmt.Fprintf(stdout, "  tls:       %s (CA, node and client certificates; throwaway)\n", dt.dir)
		fmt.Fprintf(stdout, "  client:    %s\n", dt.clientFlags())
	}
	if httpBase != 0 {
		fmt.Fprintf(stdout, "  status:    %s://%s:%d/ (node i: port %d+i-1)\n", scheme, host, httpBase, httpBase)
		fmt.Fprintf(stdout, "  metrics:   %s://%s:%d/metrics\n", scheme, host, httpBase)
	}
	fmt.Fprintf(stdout, "try:\n  export PAXOSD_ENDPOINTS=%s\n", eps)
	if dt != nil {
		fmt.Fprintf(stdout, "  export PAXOSD_CACERT=%s PAXOSD_CERT=%s PAXOSD_KEY=%s\n", dt.caFile, dt.clientCert, dt.clientKey)
	}
	fmt.Fprintf(stdout, "  paxosd kv put hello world && paxosd kv get hello\n  paxosd status\n")
	if dt != nil && httpBase != 0 {
		fmt.Fprintf(stdout, "  curl --cacert %s --cert %s --key %s https://%s:%d/metrics\n", dt.caFile, dt.clientCert, dt.clientKey, host, httpBase)
	}
	fmt.Fprintf(stdout, "Ctrl-C stops the cluster.\n")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	failed := make(chan error, len(running))
	for _, n := range running {
		go func() {
			<-n.Done()
			if err := n.Err(); err != nil {
				failed <- err
			}
		}()
	}
	select {
	case <-sig:
		fmt.Fprintln(stdout, "paxosd dev: stopping")
		stopAll()
		return nil
	case err := <-failed:
		stopAll()
		return err
	}
}
