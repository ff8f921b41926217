package service

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// peerCollector exports the transport's per-peer counters at scrape time:
// what an SRE looks at when a follower lags or a link flaps.
type peerCollector struct {
	self  paxos.NodeID
	peers func() []paxos.NodeID
	stats func(paxos.NodeID) wire.PeerStats

	sent, dropped, writes, dials, connects, connected, unreachable, queued *prometheus.Desc
}

func newPeerCollector(self paxos.NodeID, peers func() []paxos.NodeID, stats func(paxos.NodeID) wire.PeerStats) *peerCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"peer"}, nil)
	}
	return &peerCollector{
		self: self, peers: peers, stats: stats,
		sent:        d("paxosd_peer_messages_sent_total", "Protocol messages written to the peer's connection."),
		dropped:     d("paxosd_peer_messages_dropped_total", "Protocol messages to the peer dropped: queue full, peer unreachable, or lost with a broken connection."),
		writes:      d("paxosd_peer_writes_total", "Write system calls to the peer's connection (sent/writes is the coalescing)."),
		dials:       d("paxosd_peer_dials_total", "Connection attempts to the peer, failed ones included."),
		connects:    d("paxosd_peer_connects_total", "Connections to the peer established (reconnects: those beyond the first)."),
		connected:   d("paxosd_peer_connected", "1 while a connection to the peer is up."),
		unreachable: d("paxosd_peer_unreachable", "1 while the last dial to the peer failed."),
		queued:      d("paxosd_peer_queue_messages", "Messages queued for the peer's writer."),
	}
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sent, c.dropped, c.writes, c.dials, c.connects, c.connected, c.unreachable, c.queued} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, id := range c.peers() {
		if id == c.self {
			continue
		}
		st, peer := c.stats(id), strconv.FormatUint(uint64(id), 10)
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(st.Sent), peer)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped), peer)
		ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Writes), peer)
		ch <- prometheus.MustNewConstMetric(c.dials, prometheus.CounterValue, float64(st.Dials), peer)
		ch <- prometheus.MustNewConstMetric(c.connects, prometheus.CounterValue, float64(st.Connects), peer)
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, b(st.Connected), peer)
		ch <- prometheus.MustNewConstMetric(c.unreachable, prometheus.GaugeValue, b(st.Unreachable), peer)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued), peer)
	}
}

// registerProcessMetrics adds what a production node exports beyond its
// own instruments: the peers' counters, the Go runtime's and the process's
// metrics, and the build (Go's go_build_info, and paxosd_build_info with
// the release). Only for a registry of the node's own: a registry passed
// in (Config.Metrics) may be shared by several nodes, which would register
// the same collectors twice.
func registerProcessMetrics(reg *prometheus.Registry, peers *peerCollector, version string) {
	reg.MustRegister(peers,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		newBuildInfo(version))
}
