package main

import (
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

// statusEvery is how often the STATUS line shown by 'systemctl status' is
// brought up to date with the leader this node knows.
const statusEvery = time.Second

// notifyReady tells the service manager (a systemd unit of Type=notify)
// that the node serves, and keeps the unit's STATUS line current. It
// returns a func that stops the updates. Without $NOTIFY_SOCKET it does
// nothing.
//
// Ready means Start has returned: the node has loaded its state, listens
// for peers and clients, and runs its loop. It does not wait for a leader.
// A member cannot know a leader before a quorum is up, so waiting for one
// would leave the first member of a cold-started cluster "activating"
// until another member starts: 'systemctl start' would hang on it, and
// TimeoutStartSec would kill it and start it again, while a tool starting
// the machines one after another would never get to the second. A started
// member does its part from this moment (it votes, and forwards clients to
// the leader once there is one); whether the cluster serves is what
// 'paxosd status' and /readyz tell.
func notifyReady(n *service.Node, cfg service.Config, log zerolog.Logger) (stop func()) {
	if os.Getenv(wire.NotifySocketEnv) == "" {
		return func() {}
	}
	status := func(leader paxos.NodeID) string {
		s := fmt.Sprintf("STATUS=node %d serving on %s", cfg.ID, n.Addr())
		if leader == 0 {
			return s + "; no leader known"
		}
		return s + fmt.Sprintf("; leader: node %d", leader)
	}
	leader := n.Leader()
	if !notify(log, "READY=1\n"+status(leader)) {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if l := n.Leader(); l != leader {
				leader = l
				notify(log, status(leader))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// notify sends state to the service manager, logging a failure: the node
// serves all the same, and a manager that never hears READY=1 says so
// itself when its start timeout passes.
func notify(log zerolog.Logger, state string) bool {
	sent, err := wire.Notify(state)
	if err != nil {
		log.Error().Err(err).Msg("cannot notify the service manager")
	}
	return sent
}
