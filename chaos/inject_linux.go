//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"time"
)

// Injector applies faults to a cluster and its network.
type Injector struct {
	C *Cluster
}

// Applied is a fault in effect: what it hit, and how to heal it.
type Applied struct {
	What string
	Heal func() error
}

// leaderOr returns the node that leads, or fallback when none says so
// (an election is under way): the fault then hits fallback.
func (in *Injector) leaderOr(fallback int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if l := in.C.Leader(); l >= 0 {
			return l
		}
		if time.Now().After(deadline) {
			return fallback
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Apply starts fault f. The caller waits f.Hold, then calls Heal. CrashAll
// is not applied here: it needs the workers stopped meanwhile (see
// schedule.crashAll).
func (in *Injector) Apply(f Fault) (Applied, error) {
	if f.Kind == Mixed {
		return in.applyMixed(f)
	}
	net, n := in.C.Net, len(in.C.Net.Nodes)
	target := f.Node
	if f.Target == TheLeader || f.Target == FromLeader || f.Target == ToLeader {
		target = in.leaderOr(f.Node)
	}
	heal := func() error { return net.Heal() }
	switch f.Kind {
	case Kill:
		in.C.Kill(target)
		return Applied{fmt.Sprintf("kill -9 node %d", in.C.ID(target)), func() error { return in.C.Start(target) }}, nil

	case LoseDisk:
		in.C.Kill(target)
		if err := in.C.Wipe(target); err != nil {
			return Applied{}, err
		}
		return Applied{fmt.Sprintf("kill -9 node %d and delete its data directory", in.C.ID(target)), func() error { return in.C.Start(target) }}, nil

	case Pause:
		if err := in.C.Pause(target); err != nil {
			return Applied{}, err
		}
		return Applied{fmt.Sprintf("SIGSTOP node %d", in.C.ID(target)), func() error { return in.C.Resume(target) }}, nil

	case IsolateLeader, IsolateNode:
		var errs []error
		for o := 0; o < n; o++ {
			if o == target {
				continue
			}
			errs = append(errs, net.SetRules(o, Rules{In: []string{DropFrom(net.IPs[target])}, Out: []string{DropTo(net.IPs[target])}}))
		}
		var cut Rules
		for o := 0; o < n; o++ {
			if o != target {
				cut.In, cut.Out = append(cut.In, DropFrom(net.IPs[o])), append(cut.Out, DropTo(net.IPs[o]))
			}
		}
		errs = append(errs, net.SetRules(target, cut))
		return Applied{fmt.Sprintf("node %d cut off from the other nodes", in.C.ID(target)), heal}, errors.Join(errs...)

	case Bridge:
		// target is the bridge: every other pair is cut.
		var errs []error
		for a := 0; a < n; a++ {
			if a == target {
				continue
			}
			var r Rules
			for b := 0; b < n; b++ {
				if b != a && b != target {
					r.In, r.Out = append(r.In, DropFrom(net.IPs[b])), append(r.Out, DropTo(net.IPs[b]))
				}
			}
			errs = append(errs, net.SetRules(a, r))
		}
		return Applied{fmt.Sprintf("bridge through node %d, the others cut from each other", in.C.ID(target)), heal}, errors.Join(errs...)

	case OneWay:
		from, to := f.Node, f.Other
		switch f.Target {
		case FromLeader:
			from, to = target, f.Node
		case ToLeader:
			from, to = f.Node, target
		}
		if from == to { // the leader was the node picked: use the other one
			if f.Target == FromLeader {
				to = f.Other
			} else {
				from = f.Other
			}
		}
		err := net.SetRules(from, Rules{Out: []string{DropConnsTo(net.IPs[to])}})
		return Applied{fmt.Sprintf("messages node %d -> node %d lost (the other way works)", in.C.ID(from), in.C.ID(to)), heal}, err

	case Loss, Delay:
		nodes := []int{target}
		if f.Target == AllNodes {
			nodes = nodes[:0]
			for i := 0; i < n; i++ {
				nodes = append(nodes, i)
			}
		}
		var errs []error
		for _, i := range nodes {
			if f.Kind == Loss {
				errs = append(errs, net.SetRules(i, Rules{In: []string{LossIn(f.Loss)}, Out: []string{LossOut(f.Loss)}}))
			} else {
				net.SetDelay(i, f.Delay, f.Jitter)
				errs = append(errs, net.SetRules(i, Rules{Out: []string{DelayOut()}}))
			}
		}
		what := fmt.Sprintf("%.0f%% of packets lost each way", f.Loss*100)
		if f.Kind == Delay {
			what = fmt.Sprintf("outgoing packets delayed %s (+ up to %s)", f.Delay, f.Jitter)
		}
		if len(nodes) == 1 {
			what += fmt.Sprintf(" at node %d", in.C.ID(nodes[0]))
		} else {
			what += " at every node"
		}
		return Applied{what, heal}, errors.Join(errs...)
	}
	return Applied{}, fmt.Errorf("chaos: Apply cannot do %s", f.Kind)
}

// applyMixed applies a Mixed fault's network part, then its kill or pause;
// healing undoes them in the other order.
func (in *Injector) applyMixed(f Fault) (Applied, error) {
	nf := f
	nf.Kind, nf.Also = f.Net, nil
	net, err := in.Apply(nf)
	if err != nil {
		return Applied{}, err
	}
	proc, err := in.Apply(*f.Also)
	if err != nil {
		return Applied{}, errors.Join(err, net.Heal())
	}
	return Applied{
		What: net.What + ", and " + proc.What,
		Heal: func() error { return errors.Join(proc.Heal(), net.Heal()) },
	}, nil
}
