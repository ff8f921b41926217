package service

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/wire"
)

// The node's edges. The node loop touches the world only through these, so
// production (Pebble, TCP, the system clock) and the seeded simulation (the
// same wal.Store on a crash-testing in-memory filesystem behind a journal
// that completes writes when the seed says, a simulated network, clocks
// that drift, clients that are not sockets) drive the very same loop: the
// loop's handlers (step, handleCall, release, tick, afterInputs) are called
// by Node.run in production and by the simulation directly.

// journal makes the node's writes durable, in order, off the loop: the
// contract of a disk with group commit. submit hands over a write whose seq
// the node assigned (one more than the previous one); the node learns
// later, through Node.release(seq), that every write up to seq is durable,
// or through Node.fail that none after the last released one will be. A
// crash loses every write not yet released. A journal may merge the writes
// it holds into one sync.
type journal interface {
	submit(j walJob) error
	close()
}

// Transport carries protocol messages to the other members (wire.Transport
// in production). Send never blocks: a message may be lost, delayed,
// duplicated or reordered, which Paxos tolerates.
type Transport interface {
	Send(m paxos.Message)
}

// Clock tells the node the time. Only the loop reads it, and only through
// here: the simulation runs each node on a clock of its own, at its own
// rate, frozen while the node is paused.
type Clock interface {
	Now() time.Time
}

// clientConn is what the loop needs of a client connection
// (wire.ClientConn in production): answers corked during a loop iteration
// and written once at its end, answers sent at once, and closing; and the
// protocol version its hello negotiated, which decides some answers
// (wire.VersionClientAnswers).
type clientConn interface {
	Cork(resp *wire.Response) (first bool, err error)
	// CorkShared corks sh's response with the id id.
	CorkShared(id uint64, sh *wire.SharedResponse) (first bool, err error)
	Uncork() error
	TrySend(resp *wire.Response) error
	Close() error
	RemoteAddr() net.Addr
	Version() uint32
	// Backlog is the bytes of answers corked or sent and not yet read by
	// the client, as far as the node can tell (wire.ClientConn.Backlog);
	// Queued the answers waiting to be written.
	Backlog() int64
	Queued() int
}

// peerDialer opens a client connection to another member, for the requests
// a node makes outside the protocol stream: the snapshot fetch and the
// rejoin probe.
type peerDialer interface {
	dial(ctx context.Context, id paxos.NodeID) (peerConn, error)
}

// peerConn is one such connection (wire.Mux in production).
type peerConn interface {
	Call(ctx context.Context, q *wire.Request) (*wire.Response, error)
	Close() error
}

// background runs work off the loop, after a delay, and brings its result
// back: work may block on the network and the disk but must not touch the
// loop's state; the func it returns runs on the loop. ctx ends when the
// node stops. In production work runs on a goroutine of its own; in the
// simulation at a time the seed chooses.
type background interface {
	run(after time.Duration, work func(ctx context.Context) func())
	// runYielding is run, at once, for work that should give way to the
	// node's own when the CPU is short: fetching, checking and decoding
	// another member's snapshot, which on a busy machine would otherwise
	// take the CPU the cluster's writes need (Config.InstallNice).
	runYielding(work func(ctx context.Context) func())
	// pause waits d within background work, or until ctx ends (its
	// error then). The simulation's returns at once: it runs background
	// work as one event (a paced fetch's arithmetic runs, its waits not).
	pause(ctx context.Context, d time.Duration) error
}

// systemClock is the production Clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// tcpDialer dials members at their --peers address.
type tcpDialer struct {
	// addr returns a member's address ("" if none): the node's member
	// book, which changes with the membership.
	addr          func(paxos.NodeID) string
	clusterID     string
	frameBytesMax int
	// tls, if set, dials with the node's certificate and accepts only the
	// member's.
	tls *wire.NodeTLS
}

func (d tcpDialer) dial(ctx context.Context, id paxos.NodeID) (peerConn, error) {
	addr := d.addr(id)
	if addr == "" {
		return nil, fmt.Errorf("node %d is not a member", id)
	}
	dc := wire.DialConfig{ClusterID: d.clusterID, FrameBytesMax: d.frameBytesMax}
	if d.tls != nil {
		dc.TLS = d.tls.PeerDialConfig(id)
	}
	sc, err := wire.DialClientConfig(ctx, addr, dc)
	if err != nil {
		return nil, err
	}
	return wire.NewMux(sc), nil
}

// goroutines is the production background: a goroutine per job, whose
// continuation reaches the loop through deferred. Both give up when the
// node stops. A yielding job's goroutine runs on a thread of its own whose
// nice value is higher by nice (none if 0), ended with the job.
type goroutines struct {
	deferred chan func()
	stop     <-chan struct{}
	nice     int
	log      *zerolog.Logger
}

func (g goroutines) run(after time.Duration, work func(ctx context.Context) func()) {
	g.start(after, 0, work)
}

func (g goroutines) runYielding(work func(ctx context.Context) func()) {
	g.start(0, g.nice, work)
}

func (goroutines) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g goroutines) start(after time.Duration, nice int, work func(ctx context.Context) func()) {
	go func() {
		if nice > 0 {
			// The goroutine never unlocks its thread: the thread ends
			// with it (lowerThreadPriority).
			if err := lowerThreadPriority(nice); err != nil && g.log != nil {
				g.log.Debug().Err(err).Msg("could not lower a background thread's priority")
			}
		}
		if after > 0 {
			t := time.NewTimer(after)
			defer t.Stop()
			select {
			case <-t.C:
			case <-g.stop:
				return
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-g.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		then := work(ctx)
		select {
		case g.deferred <- then:
		case <-g.stop:
		}
	}()
}
