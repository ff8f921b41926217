package main

import (
	"crypto/tls"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

// requireClientCert refuses a request without a client certificate
// (--client-cert-auth), except for /healthz and /readyz: health probes
// (a load balancer's, systemd's, kubelet's) seldom carry one, and the two
// say only whether the node serves. The handshake has already checked any
// certificate presented (wire.NodeTLS.HTTPServerConfig).
func requireClientCert(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
			http.Error(w, "a client certificate is required (--client-cert-auth): e.g. curl --cacert CA --cert CERT --key KEY", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// debugWriter turns the HTTP server's own log lines into debug lines.
type debugWriter struct{ log zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// listenHTTP binds --http-listen. serve binds it before the node starts, so
// that a busy port is a startup error, not the end of a node already
// taking part in the cluster.
func listenHTTP(addr string) (net.Listener, error) {
	ln, err := wire.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("--http-listen %s: %w", addr, err)
	}
	return ln, nil
}

// httpOptions are what serve and dev choose about the HTTP port.
type httpOptions struct {
	// pprof serves /debug/pprof/ (--enable-pprof): profiles show the
	// program's internals and cost CPU, so they are off unless asked for.
	pprof bool
	// tls, if set, serves HTTPS with the node's certificate; with
	// --client-cert-auth a client certificate is required here too, but
	// for /healthz and /readyz (requireClientCert).
	tls *wire.NodeTLS
}

// serveHTTP serves the node's status page (/), /metrics, /healthz and
// /readyz, and /debug/pprof if asked for, on ln until the node stops.
func serveHTTP(ln net.Listener, n *service.Node, log zerolog.Logger, o httpOptions) {
	h := n.HTTPHandler()
	if o.pprof {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		h = n.RequireRoot(mux) // with auth enabled, profiles are root's too
	}
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls.HTTPServerConfig())
		if o.tls.ClientCertAuth() {
			h = requireClientCert(h)
		}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		// A refused TLS handshake is the client's problem, told to it in
		// an alert: a debug line here, not a warning per scrape.
		ErrorLog: stdlog.New(debugWriter{log}, "", 0)}
	go func() {
		<-n.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Warn().Err(err).Msg("http server stopped")
		}
	}()
}
