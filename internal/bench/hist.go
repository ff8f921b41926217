package bench

import "github.com/paxosd/paxosd/internal/latency"

// benchHist is the latency histogram of a run (package latency).
type benchHist = latency.Hist
