package bench

// machine.go measures the two floors every commit stands on:
//
//   - 'paxosd bench fsync': a leader's commit needs its own durable write and
//     a follower's (in parallel), so one write+fdatasync is the least a put
//     can take; the "wal" row is the same through paxosd's store (one Pebble
//     batch committed with Sync, 256-byte entry), what the node loop pays.
//   - 'paxosd bench rtt': an Accept goes to a follower and its Accepted comes
//     back, and a client's request and answer cross the loopback too.
//
// A put from a client connected to the leader costs at least
// rtt (client) + wal (leader, in parallel with) rtt + wal (follower).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wal"
)

// benchFloor is one machine measurement.
type benchFloor struct {
	Workload string       `json:"workload"`
	What     string       `json:"what"`
	Ops      uint64       `json:"ops"`
	OpsPerS  float64      `json:"ops_per_sec"`
	MeanMs   float64      `json:"mean_ms"`
	Latency  benchLatency `json:"latency_ms"`
	Dir      string       `json:"dir,omitempty"`
	FS       string       `json:"filesystem,omitempty"`
}

func floorOf(workload, what string, h *benchHist, elapsed time.Duration) *benchFloor {
	return &benchFloor{
		Workload: workload, What: what, Ops: h.Count(),
		OpsPerS: float64(h.Count()) / elapsed.Seconds(), MeanMs: ms(h.Mean()), Latency: latencyOf(h),
	}
}

func writeFloors(w io.Writer, asJSON bool, floors []*benchFloor) error {
	if asJSON {
		for _, f := range floors {
			if err := writeBenchJSON(w, f); err != nil {
				return err
			}
		}
		return nil
	}
	width := len("MEASURE")
	for _, f := range floors {
		width = max(width, len(f.What))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tOPS\tOPS/S\tMEAN ms\tP50 ms\tP90 ms\tP99 ms\tP99.9 ms\tMAX ms\t\n", width, "MEASURE")
	for _, f := range floors {
		l := f.Latency
		fmt.Fprintf(tw, "%-*s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n",
			width, f.What, f.Ops, f.OpsPerS, f.MeanMs, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	return tw.Flush()
}

func cmdBenchFsync(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("bench fsync", "paxosd bench fsync [--dir DIR] [--count N] [--size BYTES]\n\n"+
		"Measures write+fdatasync on DIR's disk (put --dir on the disk of the nodes'\n"+
		"--data-dir), and the same through paxosd's WAL (Pebble, one synced batch).")
	dir := fs.String("dir", os.TempDir(), "directory on the disk to measure (a temporary file and store are made in it, then removed)")
	count := fs.Int("count", 1000, "synced writes per measurement")
	size := fs.Int("size", 4096, "bytes per raw write")
	asJSON := fs.Bool("json", false, "print one JSON object per measurement")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: bench fsync takes no arguments, got %q", cli.ErrUsage, fs.Args())
	case *count < 1:
		return fmt.Errorf("%w: bench fsync: --count must be at least 1, got %d", cli.ErrUsage, *count)
	case *size < 1 || *size > 64<<20:
		return fmt.Errorf("%w: bench fsync: --size must be between 1 and %d bytes, got %d", cli.ErrUsage, 64<<20, *size)
	}
	tmp, err := os.MkdirTemp(*dir, "paxosd-fsync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raw, err := benchRawSync(tmp, *count, *size)
	if err != nil {
		return err
	}
	walRes, err := benchWALSync(tmp, *count)
	if err != nil {
		return err
	}
	fsName := filesystemOf(tmp)
	for _, f := range []*benchFloor{raw, walRes} {
		f.Dir, f.FS = *dir, fsName
	}
	if fsName == "tmpfs" || fsName == "ramfs" {
		fmt.Fprintf(os.Stderr, "paxosd bench fsync: warning: %s is on %s: syncs cost nothing there; use --dir on a real disk\n", *dir, fsName)
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "disk of %s (%s)\n", *dir, fsName)
	}
	return writeFloors(stdout, *asJSON, []*benchFloor{raw, walRes})
}

// benchRawSync overwrites a preallocated file size bytes at a time, each
// write followed by fdatasync (as a recycled log segment is written).
func benchRawSync(dir string, count, size int) (*benchFloor, error) {
	f, err := os.OpenFile(filepath.Join(dir, "raw"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, size)
	for i := 0; i < count; i++ { // preallocate, so no write changes the file size
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	h := &benchHist{}
	began := time.Now()
	for i := 0; i < count; i++ {
		buf[0] = byte(i)
		t := time.Now()
		if _, err := f.WriteAt(buf, int64(i)*int64(size)); err != nil {
			return nil, err
		}
		if err := fdatasync(f); err != nil {
			return nil, err
		}
		h.Record(time.Since(t))
	}
	return floorOf("fsync", fmt.Sprintf("write %dB + fdatasync", size), h, time.Since(began)), nil
}

// benchWALSync saves one 256-byte entry per synced batch through wal.Store,
// as a node does when one Accept arrives alone.
func benchWALSync(dir string, count int) (*benchFloor, error) {
	st, err := wal.Open(filepath.Join(dir, "wal"), wal.Identity{ClusterID: "bench", NodeID: 1}, wal.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	val := paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{make([]byte, 256)}}
	h := &benchHist{}
	began := time.Now()
	for i := 1; i <= count; i++ {
		p := paxos.Persist{Entries: []paxos.Entry{{Slot: paxos.Slot(i), Ballot: paxos.Ballot{Round: 1, Node: 1}, Value: val}}}
		t := time.Now()
		if err := st.Save(p); err != nil {
			return nil, err
		}
		h.Record(time.Since(t))
	}
	return floorOf("fsync", "wal save (Pebble, sync)", h, time.Since(began)), nil
}

func cmdBenchRTT(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("bench rtt", "paxosd bench rtt [--count N] [--size BYTES]\n\n"+
		"Measures the loopback TCP round trip: a message to an echo server on\n"+
		"127.0.0.1 and back, one at a time.")
	count := fs.Int("count", 20000, "round trips")
	size := fs.Int("size", 64, "bytes per message")
	asJSON := fs.Bool("json", false, "print a JSON object")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: bench rtt takes no arguments, got %q", cli.ErrUsage, fs.Args())
	case *count < 1:
		return fmt.Errorf("%w: bench rtt: --count must be at least 1, got %d", cli.ErrUsage, *count)
	case *size < 1 || *size > 1<<20:
		return fmt.Errorf("%w: bench rtt: --size must be between 1 and %d bytes, got %d", cli.ErrUsage, 1<<20, *size)
	}
	res, err := benchLoopbackRTT(*count, *size)
	if err != nil {
		return err
	}
	return writeFloors(stdout, *asJSON, []*benchFloor{res})
}

func benchLoopbackRTT(count, size int) (*benchFloor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	msg := make([]byte, size)
	back := make([]byte, size)
	h := &benchHist{}
	began := time.Now()
	for i := 0; i < count; i++ {
		t := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(r, back); err != nil {
			return nil, err
		}
		h.Record(time.Since(t))
	}
	return floorOf("rtt", fmt.Sprintf("loopback TCP round trip, %dB", size), h, time.Since(began)), nil
}
