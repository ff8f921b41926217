package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

// serveHTTP serves the node's /metrics, /healthz, /readyz and
// /debug/pprof on addr until the node stops.
func serveHTTP(addr string, n *service.Node, log zerolog.Logger) error {
	ln, err := wire.Listen(addr)
	if err != nil {
		return fmt.Errorf("--http-listen %s: %w", addr, err)
	}
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
	return nil
}
