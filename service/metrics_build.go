package service

import (
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paxosd/paxosd/wire"
)

// newBuildInfo is the constant paxosd_build_info series: 1, labelled with
// what a mixed-version cluster is diagnosed by. Go's own go_build_info
// names the module, not the release or the wire protocol, so a dashboard
// could not tell which members still run the old binary during a rolling
// upgrade.
func newBuildInfo(version string) prometheus.Collector {
	revision := "unknown"
	if rev := BuildRevision(); rev != "" {
		revision = rev
	}
	if bi, ok := debug.ReadBuildInfo(); ok && version == "" {
		version = bi.Main.Version
	}
	if version == "" {
		version = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "paxosd_build_info",
		Help: "1, labelled with the release, the commit, the Go release and the wire protocol version of the running binary.",
		ConstLabels: prometheus.Labels{
			"version": version, "revision": revision, "goversion": runtime.Version(),
			"wire_protocol": strconv.Itoa(int(wire.ProtocolVersion)),
		},
	})
	g.Set(1)
	return g
}

// BuildRevision returns the commit the binary was built from, as Go
// recorded it when building inside a git checkout, with "+dirty" when the
// tree had changes; "" when unknown (a test binary, a build outside git).
func BuildRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
