package paxos

import "errors"

var (
	// ErrNoLeader: the node knows no leader to take a proposal; retry later
	// or elsewhere.
	ErrNoLeader = errors.New("paxos: no known leader")
	// ErrBusy: the leader's queue of pending commands is full.
	ErrBusy = errors.New("paxos: too many pending proposals")
)
