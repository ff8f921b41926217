package service

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics returns the registry holding the node's instruments.
func (n *Node) Metrics() *prometheus.Registry { return n.reg }

// HTTPHandler serves the node's observability endpoints:
//
//	/metrics       Prometheus metrics
//	/healthz       200 while the node's loop runs
//	/readyz        200 while the node knows a leader (it can serve requests)
//	/debug/pprof/  Go profiles
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
		if n.leading.Load() {
			w.Write([]byte("ok: leader\n"))
			return
		}
		w.Write([]byte("ok: follower\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
