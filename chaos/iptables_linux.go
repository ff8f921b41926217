//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Faults on the network are iptables rules in two chains of each node's
// namespace, CHAOS-IN (jumped to from INPUT) and CHAOS-OUT (from OUTPUT).
// A fault replaces both chains of every node it touches in one
// iptables-restore call (atomic per node); healing flushes them.
//
// The kernel here has both the legacy xtables and nf_tables, but not
// nft_queue: iptables-nft would have to express NFQUEUE (the delay) through
// its xtables compatibility layer. iptables-legacy drives the xtables
// targets (DROP, statistic, NFQUEUE) natively, so it is preferred; the nft
// variant is the fallback, and whichever is chosen must first pass a probe
// with every kind of rule the suite uses.

// Rules are one node's fault rules: rule specs (what follows
// "-A CHAIN") for packets entering and leaving the node.
type Rules struct {
	In, Out []string
}

func (r Rules) empty() bool { return len(r.In) == 0 && len(r.Out) == 0 }

// DropFrom drops every packet from ip.
func DropFrom(ip string) string { return "-s " + ip + " -j DROP" }

// DropTo drops every packet to ip.
func DropTo(ip string) string { return "-d " + ip + " -j DROP" }

// DropConnsTo drops the packets of this node's own connections to ip's
// node ports (NodePort, or the next one where a replaced member listens:
// Cluster.Replace). A node sends protocol messages only on the connections it
// dials (a peer's answers come back on the peer's own connection), so this
// cuts the messages from this node to that one and leaves the other
// direction working: a one-way partition.
func DropConnsTo(ip string) string {
	return fmt.Sprintf("-d %s -p tcp --dport %d:%d -j DROP", ip, NodePort, NodePort+1)
}

// randomDrop drops a random fraction p of the packets.
func randomDrop(p float64) string {
	return fmt.Sprintf("-m statistic --mode random --probability %.3f -j DROP", p)
}

// LossOut drops a random fraction p of the packets leaving through the node's link (not lo).
func LossOut(p float64) string { return "-o eth0 " + randomDrop(p) }

// LossIn drops a random fraction p of the packets arriving on the node's link.
func LossIn(p float64) string { return "-i eth0 " + randomDrop(p) }

// delayQueue is the NFQUEUE number every node's Delayer listens on (queues
// are per namespace, so one number serves all).
const delayQueue = 7

// DelayOut hands every packet leaving through the node's link to the
// node's Delayer. --queue-bypass lets packets through should the delayer
// be gone, rather than dropping them.
func DelayOut() string {
	return fmt.Sprintf("-o eth0 -j NFQUEUE --queue-num %d --queue-bypass", delayQueue)
}

type iptables struct {
	cmd, restore string
}

// candidates, in order of preference (see the comment at the top).
var iptablesCandidates = []iptables{
	{"iptables-legacy", "iptables-legacy-restore"},
	{"iptables-nft", "iptables-nft-restore"},
	{"iptables", "iptables-restore"},
}

func findIptables() (iptables, error) {
	for _, c := range iptablesCandidates {
		if _, err := exec.LookPath(c.restore); err == nil {
			return c, nil
		}
	}
	return iptables{}, fmt.Errorf("%w: no iptables (Debian package iptables; run scripts/install-deps.sh)", ErrUnsupported)
}

// setup creates the two chains in ns. The first namespace set up also
// probes the backend with every kind of rule, moving on to the next
// candidate if one is refused.
func (t *iptables) setup(ns string) error {
	const chains = "*filter\n:CHAOS-IN - [0:0]\n:CHAOS-OUT - [0:0]\n-A INPUT -j CHAOS-IN\n-A OUTPUT -j CHAOS-OUT\nCOMMIT\n"
	probe := Rules{
		In:  []string{DropFrom("10.213.0.1"), LossIn(0.5)},
		Out: []string{DropTo("10.213.0.1"), DropConnsTo("10.213.0.1"), LossOut(0.5), DelayOut()},
	}
	var errs []string
	for _, c := range append([]iptables{*t}, iptablesCandidates...) {
		if _, err := exec.LookPath(c.restore); err != nil {
			continue
		}
		out, err := runInput(chains, "ip", "netns", "exec", ns, c.restore, "-w", "5")
		if err == nil {
			err = c.set(ns, probe)
		}
		if err == nil {
			err = c.set(ns, Rules{})
		}
		if err == nil {
			*t = c
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v %s", c.cmd, err, out))
		// Undo this backend's chains before trying the next one: rules of
		// two backends at once would both apply.
		_, _ = runInput("*filter\nCOMMIT\n", "ip", "netns", "exec", ns, c.restore, "-w", "5")
	}
	return errors.New("chaos: no iptables backend works in a namespace: " + strings.Join(errs, "; "))
}

// set replaces ns's fault rules with r.
func (t iptables) set(ns string, r Rules) error {
	var b strings.Builder
	b.WriteString("*filter\n-F CHAOS-IN\n-F CHAOS-OUT\n")
	for _, s := range r.In {
		b.WriteString("-A CHAOS-IN " + s + "\n")
	}
	for _, s := range r.Out {
		b.WriteString("-A CHAOS-OUT " + s + "\n")
	}
	b.WriteString("COMMIT\n")
	if out, err := runInput(b.String(), "ip", "netns", "exec", ns, t.restore, "-w", "5", "--noflush"); err != nil {
		return fmt.Errorf("%s in %s: %v: %s\n%s", t.restore, ns, err, out, b.String())
	}
	return nil
}

// SetRules replaces node i's (0-based) fault rules.
func (n *Network) SetRules(i int, r Rules) error { return n.ipt.set(n.Nodes[i], r) }

// SetDelay sets how long node i's Delayer holds each packet that the
// DelayOut rule hands it.
func (n *Network) SetDelay(i int, d, jitter time.Duration) { n.delayers[i].Set(d, jitter) }

// Heal removes every fault rule and delay.
func (n *Network) Heal() error {
	var errs []error
	for i := range n.Nodes {
		if err := n.SetRules(i, Rules{}); err != nil {
			errs = append(errs, err)
		}
	}
	// The delayers keep their setting: packets already queued still leave
	// after it, and no new ones arrive without a rule.
	return errors.Join(errs...)
}
