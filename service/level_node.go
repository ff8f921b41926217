package service

import (
	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
)

// The leader's side of the cluster level (statemachine/level.go). Levels
// are numbered after the protocol version that brought them, so a leader
// proposes OpLevel{statemachine.LevelMax} once every member's connection
// negotiated at least that version: from then on no member would apply the
// level's behaviour differently. Until then a mixed cluster runs at the
// older level, and a member can still be rolled back.

// ownProposal is the leader's record of a leader-only command that the
// state lacks (the default quota, the cluster level): proposed at most
// once per leadership, with ProposeOwn, so it is dropped if this node is
// deposed first, and proposed again by the next leader if the state still
// lacks it.
type ownProposal struct {
	ballot   paxos.Ballot // the leadership the proposal was made under
	proposed bool
}

// proposeOnce proposes cmd under p while this node leads and has applied
// everything chosen (so needed, read from the applied state, is the
// cluster's), needed holds, every member speaks protocol, and p was not
// proposed yet under this leadership.
func (n *Node) proposeOnce(p *ownProposal, protocol uint32, needed bool, cmd *statemachine.Command) {
	st, ok := n.leaderCaughtUp()
	if !ok {
		return
	}
	if st.Ballot != p.ballot {
		*p = ownProposal{ballot: st.Ballot}
	}
	if p.proposed || !needed || !n.allMembersSpeak(protocol) {
		return
	}
	p.proposed = n.r.ProposeOwn(statemachine.EncodeCommand(cmd)) == nil
}

// proposeLevel raises the cluster level to the highest this build
// implements, once every member speaks the protocol version of that
// level; and logs the level whenever it changes (every node does, so an
// operator sees on each when an older build can no longer rejoin).
func (n *Node) proposeLevel() {
	if n.installing() {
		return // not caught up (install.go); the level is logged once the state is in place
	}
	if lvl := n.sm.Level(); lvl != n.levelLogged {
		n.levelLogged = lvl
		n.m.clusterLevel.Set(float64(lvl))
		n.log.Info().Uint64("cluster_level", lvl).
			Msgf("cluster level %d: every member must run protocol %d or newer from now on (no rollback to an older build)", lvl, lvl)
	}
	const top = statemachine.LevelMax
	n.proposeOnce(&n.level, top, n.sm.Level() < top, &statemachine.Command{Op: statemachine.OpLevel, Level: top})
}
