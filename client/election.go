package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// Leader is an election's leader at one point of its history: Election;
// Session, the leading session (0 when the change is "no leader"); Value,
// what it proclaimed; Term, the leadership's fencing token (it grows with
// every new leader, a proclaim keeps it); Seq, numbering the election's
// changes 1, 2, 3, ... with no gaps; Revision, the store revision at the
// change.
//
// It is the wire protocol's type (an alias, not a copy), handed to the
// caller as it was decoded.
type Leader = wire.LeaderInfo

// Campaign makes the session a candidate in election and blocks until it
// leads, ctx ends, or the session is lost; candidates are served first
// come, first served. It returns the leadership, whose Term is a fencing
// token. An abandoned campaign withdraws its candidacy.
func (s *Session) Campaign(ctx context.Context, election string, value []byte) (Leader, error) {
	resp, err := s.call(ctx, &wire.Request{Op: wire.OpCampaign, Name: election, Value: value})
	if err != nil {
		s.leaveQueue(wire.OpResign, election)
		return Leader{}, electionError(err, election)
	}
	return resp.Leader, nil
}

// Proclaim changes the value the session publishes as leader.
func (s *Session) Proclaim(ctx context.Context, election string, value []byte) error {
	_, err := s.call(ctx, &wire.Request{Op: wire.OpProclaim, Name: election, Value: value})
	return electionError(err, election)
}

// Resign gives up leadership (the next candidate leads) or candidacy.
func (s *Session) Resign(ctx context.Context, election string) error {
	_, err := s.call(ctx, &wire.Request{Op: wire.OpResign, Name: election})
	return electionError(err, election)
}

// Leader returns the election's current leader (linearizable), or
// ErrNotFound when there is none.
func (c *Client) Leader(ctx context.Context, election string) (Leader, error) {
	resp, err := c.do(ctx, &wire.Request{Op: wire.OpLeader, Name: election})
	if err != nil {
		return Leader{}, err
	}
	if resp.Err == wire.ErrNotFound {
		return Leader{}, fmt.Errorf("%w: election %s has no leader", ErrNotFound, election)
	}
	if err := responseError(resp); err != nil {
		return Leader{}, err
	}
	return resp.Leader, nil
}

func electionError(err error, election string) error {
	var e *Error
	if errors.As(err, &e) && e.Code == wire.ErrNotElectionLeader {
		return fmt.Errorf("%w: %s", ErrNotElectionLeader, election)
	}
	return lockError(err, election)
}

// Observe streams every leadership change of election, in order and with
// no gaps, starting after change number afterSeq (0: start with the
// current state). It reconnects by itself, resuming after the last change
// it delivered. The channel closes when ctx ends or on an error it cannot
// recover from (such as ErrCompacted, when the changes it must resume from
// are no longer kept); err then says why.
func (c *Client) Observe(ctx context.Context, election string, afterSeq uint64) (<-chan Leader, func() error) {
	out := make(chan Leader, 16)
	var final error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		final = c.stream(ctx, func() *wire.Request {
			return &wire.Request{Op: wire.OpObserve, Name: election, AfterSeq: afterSeq}
		}, func(resp *wire.Response) bool {
			l := resp.Leader
			afterSeq = l.Seq
			select {
			case out <- l:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return out, func() error { <-done; return final }
}

// stream runs a streaming request, reconnecting (with the request rebuilt
// by mk, which resumes where the last delivered response left off) until
// ctx ends, deliver returns false, or the server ends the stream with an
// error.
func (c *Client) stream(ctx context.Context, mk func() *wire.Request, deliver func(*wire.Response) bool) error {
	backoff := 10 * time.Millisecond
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cn, err := c.connectStreams(ctx)
		if errors.Is(err, ErrClosed) {
			return err
		}
		if err == nil {
			var st *wire.Stream
			st, err = cn.mux.Stream(ctx, mk())
			for err == nil {
				var resp *wire.Response
				resp, err = st.Recv()
				if err != nil {
					break
				}
				if resp.Err != wire.ErrNone {
					st.Close()
					switch resp.Err {
					case wire.ErrUnavailable, wire.ErrNotLeader, wire.ErrTimeout, wire.ErrSlowWatcher:
						// The node is going away, or found this stream
						// too slow: resume elsewhere.
						err = responseError(resp)
					default:
						return responseError(resp)
					}
					break
				}
				if !deliver(resp) {
					st.Close()
					return ctx.Err()
				}
				backoff = 10 * time.Millisecond
			}
			// Only a clean end of the stream is io.EOF itself; a dead
			// connection's error wraps io.EOF too, and must resume.
			if err == io.EOF {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.abandon(cn, "")
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, time.Second)
	}
}
