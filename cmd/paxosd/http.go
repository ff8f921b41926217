package main

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

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

// serveHTTP serves the node's status page (/), /metrics, /healthz,
// /readyz and /debug/pprof on ln until the node stops.
func serveHTTP(ln net.Listener, n *service.Node, log zerolog.Logger) {
	srv := &http.Server{Handler: n.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
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
