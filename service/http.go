package service

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics returns the registry holding the node's instruments.
func (n *Node) Metrics() *prometheus.Registry { return n.reg }

// HTTPHandler serves the node's observability endpoints:
//
//	/              the status page: members, leader, throughput and
//	               latency, sessions, locks, elections (statuspage.go);
//	               it polls /status.json
//	/status.json   the page's data
//	/metrics       Prometheus metrics
//	/healthz       200 while the node's loop runs
//	/readyz        200 while the node knows a leader and can reach it and a
//	               quorum (it can serve requests)
//
// Go's profiles (/debug/pprof/) are not here: paxosd serve adds them with
// --enable-pprof.
func (n *Node) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-n.done:
			http.Error(w, "node stopped", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("ok\n"))
		}
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-n.done:
			http.Error(w, "node stopped", http.StatusServiceUnavailable)
			return
		default:
		}
		if !n.led.Load() {
			http.Error(w, "no leader known", http.StatusServiceUnavailable)
			return
		}
		if why := n.unreachable(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		if n.leading.Load() {
			w.Write([]byte("ok: leader\n"))
			return
		}
		w.Write([]byte("ok: follower\n"))
	})
	// Only "/" itself (the {$}): any other unknown path stays a 404.
	// With auth enabled the page and its JSON need root (RequireRoot),
	// since they list every session, lock holder and fencing token.
	mux.HandleFunc("GET /{$}", serveStatusHTML)
	mux.HandleFunc("GET /status.json", n.serveStatusJSON)
	return n.RequireRoot(mux)
}

// openPaths are what the HTTP port serves to anyone, auth or not: they
// show no data of the users (counts and health only), and scrapers and
// health probes seldom carry credentials.
var openPaths = map[string]bool{"/metrics": true, "/healthz": true, "/readyz": true}

// RequireRoot wraps h so that, while the cluster's auth is enabled, every
// path but /metrics, /healthz and /readyz (the status page, its JSON,
// /debug/pprof) needs root: a client certificate whose CommonName is root
// (verified by the TLS handshake), or root's password in HTTP basic auth.
// Failed passwords count in paxosd_auth_failures_total and the limiter of
// the client port.
func (n *Node) RequireRoot(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := n.authState.Load(); a == nil || !a.Enabled || openPaths[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			leaf := r.TLS.PeerCertificates[0]
			if _, isNode, err := wire.CertNode(leaf); err == nil && !isNode && leaf.Subject.CommonName == statemachine.RootUser {
				h.ServeHTTP(w, r)
				return
			}
		}
		if user, password, ok := r.BasicAuth(); ok && n.checkBasicAuth(r.RemoteAddr, user, password) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="paxosd", charset="UTF-8"`)
		http.Error(w, "auth is enabled: this page needs root (curl -u root, or a client certificate whose CommonName is root)", http.StatusUnauthorized)
	})
}

// unreachable says why this node cannot take part although it knows a
// leader, or "" if nothing is wrong: it cannot dial the leader (its
// answers never arrive) or a quorum of the members. A node whose --peers
// are wrong still hears the leader's heartbeats on the leader's own
// connection, so knowing a leader alone does not make it ready.
func (n *Node) unreachable() string {
	if n.tcp == nil {
		return ""
	}
	leader := paxos.NodeID(n.leaderID.Load())
	var down []string
	reachable := 1 // itself
	for _, id := range n.book.members() {
		if id == n.cfg.ID {
			continue
		}
		st := n.tcp.Stats(id)
		if !st.Unreachable {
			reachable++
			continue
		}
		down = append(down, fmt.Sprintf("node %d at %s: %s", id, n.book.addr(id), st.DialError))
		if id == leader {
			return fmt.Sprintf("cannot reach the leader, node %d at %s: %s", id, n.book.addr(id), st.DialError)
		}
	}
	if reachable < n.book.current().QuorumSize() {
		return fmt.Sprintf("cannot reach a quorum: %s", strings.Join(down, "; "))
	}
	return ""
}

// Leader returns the leader this node knows of (0: none). Safe from any
// goroutine: paxosd serve reports it to the service manager.
func (n *Node) Leader() paxos.NodeID { return paxos.NodeID(n.leaderID.Load()) }
