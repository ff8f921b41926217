//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/paxos"
)

// replaceLimit bounds a whole replace-member step (its four commands and
// the new member's catching up); past it the step is an anomaly.
const replaceLimit = 60 * time.Second

// replaceMember runs a Replace fault as an operator would
// (docs/MEMBERSHIP.md, "Replacing a dead machine"), while the workers go
// on: the member in a slot (the leader, or the one the seed picked;
// killed first if f.Dead) is removed with member remove, stopped, and its
// data deleted; a new id is added at the slot's address (or another port:
// f.NewAddr) with member add --learner, started with --join on an empty
// data directory, and promoted once caught up (member promote --wait:
// the promotion is retried while the leader says the learner lags). The
// commands go through a client of their own, root's on a TLS schedule.
// It returns what it did. A command that does not succeed within
// replaceLimit is an anomaly; the slot is then left running whichever
// node it holds, so that the schedule goes on with three members.
func (s *schedule) replaceMember(f Fault, inj *Injector) (string, error) {
	slot := f.Node
	if f.Target == TheLeader {
		slot = inj.leaderOr(f.Node)
	}
	oldID := s.c.ID(slot)
	newID := s.c.NextID()
	if s.c.TLS != nil && newID > MaxNodeID {
		// No certificate for another id: this schedule has replaced
		// members enough.
		return fmt.Sprintf("nothing: no certificate for a node %d (MaxNodeID %d)", newID, MaxNodeID), nil
	}
	what := fmt.Sprintf("member remove %d", oldID)
	if f.Dead {
		s.c.Kill(slot)
		what = fmt.Sprintf("kill -9 node %d, member remove %d", oldID, oldID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), replaceLimit)
	defer cancel()
	admin, err := s.adminClient(ctx)
	if err != nil {
		s.st.Anomaly("schedule %d seed %d: replacing node %d: no client: %v", s.idx, s.seed, oldID, err)
		return what, s.restartSlot(slot)
	}
	defer admin.Close()
	if err := memberStep(ctx, func(ctx context.Context) error {
		_, err := admin.MemberRemove(ctx, paxos.NodeID(oldID))
		return err
	}, "is not a member"); err != nil {
		s.st.Anomaly("schedule %d seed %d: member remove %d: %v (logs in %s)", s.idx, s.seed, oldID, err, s.dir)
		return what, s.restartSlot(slot)
	}
	s.c.Kill(slot)
	port := s.c.Port(slot)
	if f.NewAddr {
		port = NodePort + (port-NodePort+1)%2
	}
	addr, err := s.c.Replace(slot, newID, port)
	if err != nil {
		return what, err
	}
	what += fmt.Sprintf(", data deleted; member add %d=%s --learner, serve --join, member promote %d --wait", newID, addr, newID)
	if err := memberStep(ctx, func(ctx context.Context) error {
		_, err := admin.MemberAdd(ctx, paxos.NodeID(newID), addr, true)
		return err
	}, "is already a member"); err != nil {
		s.st.Anomaly("schedule %d seed %d: member add %d=%s: %v (logs in %s)", s.idx, s.seed, newID, addr, err, s.dir)
		return what, nil // the schedule goes on with two members
	}
	if err := s.c.Start(slot); err != nil {
		return what, err
	}
	if err := memberStep(ctx, func(ctx context.Context) error {
		_, err := admin.MemberPromote(ctx, paxos.NodeID(newID))
		return err
	}, "is already a voter"); err != nil {
		s.st.Anomaly("schedule %d seed %d: member promote %d --wait: %v (logs in %s)", s.idx, s.seed, newID, err, s.dir)
		return what, nil
	}
	if got := s.membersAfterReplace(ctx, admin, oldID, newID); got != "" {
		s.st.Anomaly("schedule %d seed %d: after replacing node %d by node %d the membership is %s (logs in %s)", s.idx, s.seed, oldID, newID, got, s.dir)
	}
	return what, nil
}

// membersAfterReplace reads the membership (from the node the admin
// client is on, which may lag a moment: read until it holds or ctx
// ends) and returns "" once newID is a voter and oldID gone, or what it
// holds instead.
func (s *schedule) membersAfterReplace(ctx context.Context, admin *client.Client, oldID, newID int) string {
	var got string
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := admin.MemberList(cctx)
		cancel()
		if err != nil {
			got = err.Error()
		} else {
			ok, found := len(m.Members) == len(s.cfg.Net.Nodes), false
			var parts []string
			for _, x := range m.Members {
				found = found || int(x.ID) == newID
				if int(x.ID) == oldID || (int(x.ID) == newID && x.Learner) || x.Next || x.Leaving {
					ok = false
				}
				parts = append(parts, fmt.Sprintf("%d learner=%v joining=%v leaving=%v", x.ID, x.Learner, x.Next, x.Leaving))
			}
			if ok && found {
				return ""
			}
			got = fmt.Sprintf("version %d: %s", m.Version, strings.Join(parts, ", "))
		}
		select {
		case <-ctx.Done():
			return got
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restartSlot starts the node of slot i again if it is not running.
func (s *schedule) restartSlot(i int) error {
	if s.c.Running(i) {
		return nil
	}
	return s.c.Start(i)
}

// adminClient connects a client for the member commands to the slots'
// current addresses: root's certificate on a TLS schedule (auth is on).
func (s *schedule) adminClient(ctx context.Context) (*client.Client, error) {
	cfg := s.c.ClientConfig(s.c.Endpoints())
	if s.c.TLS != nil {
		cfg.TLS = s.c.TLS.Root
	}
	cfg.AttemptTimeout = time.Second
	for {
		c, err := client.NewWithConfig(ctx, cfg)
		if err == nil || ctx.Err() != nil {
			return c, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memberStep runs a member command until it succeeds, or fails saying
// done (a retry of a change that went through although its answer was
// lost), or ctx ends. Every other failure is retried: a change in
// progress, a learner that lags (what member promote --wait waits out),
// an election, a node that just stopped.
func memberStep(ctx context.Context, do func(context.Context) error, done string) error {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := do(cctx)
		cancel()
		if err == nil || strings.Contains(err.Error(), done) {
			return nil
		}
		if errors.Is(err, client.ErrInvalid) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
