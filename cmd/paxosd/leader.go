package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
)

// cmdLeader: paxosd leader transfer [ID].
func cmdLeader(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "transfer" {
		return fmt.Errorf("%w: leader needs a subcommand: transfer (see 'paxosd --help')", cli.ErrUsage)
	}
	fs := cli.NewFlags("leader transfer", "paxosd leader transfer [ID] [-w json]\n\n"+
		"Asks the leader to hand its leadership to member ID (default: the most\n"+
		"caught-up member it can reach). The leader steps down at once, giving up its\n"+
		"lease, and the member campaigns without waiting for an election timeout:\n"+
		"writes pause for one election round. Waits until the member leads.")
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args[1:], &o); err != nil {
		return err
	}
	var to paxos.NodeID
	switch fs.NArg() {
	case 0:
	case 1:
		id, err := strconv.ParseUint(fs.Arg(0), 10, 32)
		if err != nil || id == 0 {
			return fmt.Errorf("%w: leader transfer: %q is not a node id (a positive number)", cli.ErrUsage, fs.Arg(0))
		}
		to = paxos.NodeID(id)
	default:
		return fmt.Errorf("%w: leader transfer takes at most one node id", cli.ErrUsage)
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	start := time.Now()
	target, err := cl.TransferLeadership(ctx, to)
	if err != nil {
		return err
	}
	asked := time.Now()
	for {
		other := false
		for _, ms := range cl.Members(ctx) {
			if ms.Err == nil && ms.Status.ID == target && ms.Status.Role == "leader" {
				if o.json() {
					return o.print(transferJSON{Leader: target, HandoverMs: time.Since(start).Milliseconds()})
				}
				fmt.Fprintf(stdout, "node %d leads (handed over in %s)\n", target, time.Since(start).Round(time.Millisecond))
				return nil
			}
			other = other || ms.Err == nil && ms.Status.Role == "leader"
		}
		if other && time.Since(asked) > transferRetryAfter {
			// Another member won the election the handover started (one
			// whose own timeout fired at the same moment): ask the new
			// leader to hand over in turn.
			_, _ = cl.TransferLeadership(ctx, target)
			asked = time.Now()
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("node %d was asked to take over but does not lead yet: %w (the cluster elects a leader as after a crash)", target, context.Cause(ctx))
		}
	}
}

// transferRetryAfter is how long leader transfer lets another member lead
// before it asks that one to hand over to the target.
const transferRetryAfter = time.Second
