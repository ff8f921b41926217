package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paxosd/paxosd/wire"
)

// reachLog remembers, for one call, what each endpoint last did: so that a
// call that times out can say whether nodes were down (the cluster may have
// lost its quorum) or up and without a leader, instead of repeating the
// context's "deadline exceeded".
type reachLog struct {
	start     time.Time
	endpoints []string
	outcome   map[string]string // endpoint → what happened, last first
	reached   map[string]bool   // endpoints that accepted a connection
}

func newReachLog(endpoints []string) *reachLog {
	return &reachLog{start: time.Now(), endpoints: endpoints, outcome: map[string]string{}, reached: map[string]bool{}}
}

// dialed notes a dial's result.
func (r *reachLog) dialed(addr string, err error) {
	if err == nil {
		r.reached[addr] = true
		return
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "connect: "); i >= 0 {
		msg = msg[i+len("connect: "):] // "connection refused", not the whole dial
	}
	r.outcome[addr] = "unreachable (" + msg + ")"
}

// answered notes an attempt's result: a response asking to retry elsewhere,
// or the attempt's error.
func (r *reachLog) answered(addr string, resp *wire.Response, err error, attemptTimeout time.Duration) {
	r.reached[addr] = true
	switch {
	case err == nil && resp.ErrMsg != "":
		r.outcome[addr] = "answered: " + resp.ErrMsg
	case err == nil:
		r.outcome[addr] = "answered: " + resp.Err.String()
	case errors.Is(err, context.DeadlineExceeded):
		r.outcome[addr] = fmt.Sprintf("connected, no answer within %v", attemptTimeout)
	default:
		r.outcome[addr] = err.Error()
	}
}

// timeout is the error of a call whose context ended before any node
// answered it for good.
func (r *reachLog) timeout(ctxErr error) error {
	up := 0
	var parts []string
	for _, e := range r.endpoints {
		if r.reached[e] {
			up++
		}
		if o, ok := r.outcome[e]; ok {
			parts = append(parts, e+" "+o)
		} else if !r.reached[e] {
			parts = append(parts, e+" not tried")
		}
	}
	msg := fmt.Sprintf("timed out after %v with no answer from a leader", time.Since(r.start).Round(10*time.Millisecond))
	switch {
	case errors.Is(ctxErr, context.Canceled):
		msg = "canceled before a leader answered"
	}
	if up*2 <= len(r.endpoints) {
		msg += fmt.Sprintf("; only %d of %d endpoints reachable: the cluster may have lost its quorum", up, len(r.endpoints))
	} else {
		msg += fmt.Sprintf("; %d of %d endpoints reachable, none of them a working leader", up, len(r.endpoints))
	}
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, "; ")
	}
	return &timeoutError{msg: msg, ctxErr: ctxErr}
}

// timeoutError is ErrTimeout and its context's error, with reachLog's text.
type timeoutError struct {
	msg    string
	ctxErr error
}

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Unwrap() []error { return []error{ErrTimeout, e.ctxErr} }
