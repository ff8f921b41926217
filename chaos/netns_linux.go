//go:build linux

package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// nsPrefix starts the name of every namespace the suite makes, followed by
// the pid of the test process that made it: a later run removes the
// namespaces of runs whose process is gone (a test killed before its
// cleanup ran) and leaves those of a run still going alone.
const nsPrefix = "pxchaos-"

// NodePort is the port every node listens on, in its own namespace.
const NodePort = 7401

// ErrUnsupported says the machine cannot run the suite (not root, no
// network namespaces, no ip or iptables); the test skips on it.
var ErrUnsupported = errors.New("chaos: unsupported here")

// Network is the suite's private network:
//
//	test process (host namespace) 10.213.X.254 ──veth──┐
//	                                                   bridge (hub namespace)
//	node 1 (its namespace) 10.213.X.1 ──veth───────────┤
//	node 2 (its namespace) 10.213.X.2 ──veth───────────┤
//	node 3 (its namespace) 10.213.X.3 ──veth───────────┘
//
// Clients in the test process reach every node; faults are iptables rules
// inside the node namespaces (see iptables.go), so that each node's view of
// each link can be cut, thinned or slowed on its own. The bridge sits in a
// namespace of its own rather than in the host's so that the host's
// firewall (br_netfilter passes bridged packets through the FORWARD chain
// of the bridge's namespace) never sees the suite's traffic.
type Network struct {
	Hub    string   // namespace with the bridge
	Nodes  []string // namespace of node i+1
	IPs    []string // address of node i+1
	HostIP string   // the test process's address on the bridge

	hostIf   string
	ipt      iptables
	delayers []*Delayer
}

// Addr is node i's (0-based) host:port.
func (n *Network) Addr(i int) string { return fmt.Sprintf("%s:%d", n.IPs[i], NodePort) }

// Backend names the iptables command in use.
func (n *Network) Backend() string { return n.ipt.cmd }

// Supported reports why the suite cannot run here, or nil.
func Supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: network namespaces and iptables need root (running as uid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no `ip` command (Debian package iproute2; scripts/install-deps.sh installs it)", ErrUnsupported)
	}
	if _, err := findIptables(); err != nil {
		return err
	}
	probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if out, err := run("ip", "netns", "add", probe); err != nil {
		return fmt.Errorf("%w: cannot create a network namespace: %v: %s", ErrUnsupported, err, out)
	}
	_, _ = run("ip", "netns", "del", probe)
	return nil
}

// NewNetwork builds the namespaces, the bridge and the veths for n nodes,
// first removing what dead earlier runs left behind. logf receives one
// line per notable step.
func NewNetwork(n int, logf func(string, ...any)) (_ *Network, err error) {
	unlock, err := lockFile("/tmp/pxchaos.lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	RemoveStale(logf)

	ipt, err := findIptables()
	if err != nil {
		return nil, err
	}
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	net := &Network{
		Hub:    fmt.Sprintf("%s%d-hub", nsPrefix, pid),
		HostIP: subnet + ".254",
		hostIf: fmt.Sprintf("pxc%d", pid),
		ipt:    ipt,
	}
	defer func() {
		if err != nil {
			net.Close()
		}
	}()
	steps := [][]string{
		{"netns", "add", net.Hub},
		{"-n", net.Hub, "link", "set", "lo", "up"},
		{"-n", net.Hub, "link", "add", "br0", "type", "bridge"},
		{"-n", net.Hub, "link", "set", "br0", "up"},
		{"link", "add", net.hostIf, "type", "veth", "peer", "name", "host", "netns", net.Hub},
		{"-n", net.Hub, "link", "set", "host", "master", "br0", "up"},
		{"addr", "add", net.HostIP + "/24", "dev", net.hostIf},
		{"link", "set", net.hostIf, "up"},
	}
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%s%d-n%d", nsPrefix, pid, i)
		ip := fmt.Sprintf("%s.%d", subnet, i)
		net.Nodes = append(net.Nodes, ns)
		net.IPs = append(net.IPs, ip)
		port := fmt.Sprintf("n%d", i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", net.Hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", net.Hub, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if out, err := run("ip", s...); err != nil {
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	for i, ns := range net.Nodes {
		if err := net.ipt.setup(ns); err != nil {
			return nil, err
		}
		d, err := NewDelayer(ns, delayQueue)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		net.delayers = append(net.delayers, d)
	}
	logf("network: namespaces %s, %s..%s on %s.0/24 (host %s), iptables backend %s",
		net.Hub, net.Nodes[0], net.Nodes[len(net.Nodes)-1], subnet, net.HostIP, net.ipt.cmd)
	return net, nil
}

// Close removes everything NewNetwork made. Processes still inside the
// node namespaces are killed first: a namespace outlives its name while a
// process holds it.
func (n *Network) Close() {
	for _, d := range n.delayers {
		d.Close()
	}
	n.delayers = nil
	for _, ns := range append(append([]string{}, n.Nodes...), n.Hub) {
		removeNamespace(ns)
	}
	if n.hostIf != "" {
		_, _ = run("ip", "link", "del", n.hostIf) // usually gone with the hub
	}
}

// RemoveStale removes the namespaces (and the processes in them) and host
// interfaces of earlier runs whose test process no longer exists.
func RemoveStale(logf func(string, ...any)) {
	out, _ := run("ip", "netns", "list")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(nsPrefix) + `(\d+)-\S+`)
	for _, line := range strings.Split(out, "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid != os.Getpid() && processAlive(pid) {
			continue
		}
		logf("network: removing stale namespace %s", m[0])
		removeNamespace(m[0])
	}
	out, _ = run("ip", "-o", "link", "show")
	reLink := regexp.MustCompile(`^\d+: (pxc(\d+))[@:]`)
	for _, line := range strings.Split(out, "\n") {
		m := reLink.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[2]); pid != os.Getpid() && processAlive(pid) {
			continue
		}
		logf("network: removing stale interface %s", m[1])
		_, _ = run("ip", "link", "del", m[1])
	}
}

func removeNamespace(ns string) {
	if out, err := run("ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(out) {
			// This process is listed too when the thread that entered the
			// namespace (socketIn) was its main thread: Go parks that
			// thread for good rather than ending it, and /proc/PID/ns/net
			// is the main thread's.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, _ = run("ip", "netns", "del", ns)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freeSubnet picks a 10.213.X prefix that no interface of this namespace
// uses, so that two runs at once (or a run and the host's own networks)
// never route into each other.
func freeSubnet() (string, error) {
	out, err := run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		return "", fmt.Errorf("ip addr show: %v: %s", err, out)
	}
	start := os.Getpid() % 250
	for k := 0; k < 250; k++ {
		s := fmt.Sprintf("10.213.%d", 1+(start+k)%250)
		if !strings.Contains(out, " "+s+".") {
			return s, nil
		}
	}
	return "", errors.New("chaos: no free 10.213.X.0/24 subnet")
}

// lockFile serializes network setup between concurrent runs (the subnet
// choice and the stale clean-up must not race).
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// runInput runs a command with stdin and returns its combined output.
func runInput(stdin string, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
