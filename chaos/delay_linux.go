//go:build linux

package chaos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Why a userspace delayer: this kernel has no netem qdisc, and the qdiscs
// it has (tbf, htb) only shape bandwidth, so their delay depends on the
// traffic rather than on the fault. A per-link TCP proxy could delay bytes,
// but would put the suite in the middle of every connection and break the
// picture of "each node its own address". The kernel does have NFQUEUE:
// an iptables rule (DelayOut) hands each packet leaving a node to a queue
// in that node's namespace, the Delayer reads the queue over netlink
// (only the packet id, not the data), and tells the kernel to let each
// packet go once its delay has passed. Packets keep their order (a later
// packet never leaves before an earlier one), as on a real slow link, so
// TCP sees latency rather than reordering.

// NFQUEUE's netlink protocol (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue     = 3
	nfqnlMsgPacket      = 0
	nfqnlMsgConfig      = 2
	nfqnlMsgVerdictBat  = 3
	nfqaPacketHdr       = 1
	nfqaVerdictHdr      = 2
	nfqaCfgCmd          = 1
	nfqaCfgParams       = 2
	nfqaCfgQueueMaxlen  = 3
	nfqaCfgMask         = 4
	nfqaCfgFlags        = 5
	nfqnlCfgCmdBind     = 1
	nfqnlCopyMeta       = 1
	nfqaCfgFFailOpen    = 1
	nfAccept            = 1
	delayerQueueMaxlen  = 1 << 15
	delayerRecvBufBytes = 8 << 20
)

// Delayer delays the packets of one namespace's NFQUEUE queue.
type Delayer struct {
	ns      string
	queue   uint16
	f       *os.File
	rc      syscall.RawConn
	seq     atomic.Uint32
	delay   atomic.Int64 // nanoseconds
	jitter  atomic.Int64 // nanoseconds, added at random to each packet's delay
	pending chan held
	done    chan struct{}
	wg      sync.WaitGroup
	closing atomic.Bool
}

type held struct {
	id  uint32
	due time.Time
}

// NewDelayer binds queue in namespace ns and starts delaying what arrives.
func NewDelayer(ns string, queue uint16) (*Delayer, error) {
	fd, err := socketIn(ns, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfqueue socket in %s: %w", ns, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue bind: %w", err)
	}
	// A large buffer, so that a burst arriving while the process is busy
	// is not lost (ENOBUFS); the queue's fail-open flag covers the rest.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, delayerRecvBufBytes)
	f := os.NewFile(uintptr(fd), "nfqueue:"+ns)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	d := &Delayer{ns: ns, queue: queue, f: f, rc: rc, pending: make(chan held, delayerQueueMaxlen), done: make(chan struct{})}
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	configs := [][]byte{
		attr(nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}),
		attr(nfqaCfgParams, append(be32(0), nfqnlCopyMeta)),
		attr(nfqaCfgQueueMaxlen, be32(delayerQueueMaxlen)),
		append(attr(nfqaCfgMask, be32(nfqaCfgFFailOpen)), attr(nfqaCfgFlags, be32(nfqaCfgFFailOpen))...),
	}
	for _, a := range configs {
		if err := d.request(nfqnlMsgConfig, a); err != nil {
			f.Close()
			return nil, fmt.Errorf("nfqueue config in %s: %w", ns, err)
		}
	}
	d.wg.Add(2)
	go d.receive()
	go d.release()
	return d, nil
}

// Set makes every packet queued from now on wait d plus a random part of
// jitter.
func (d *Delayer) Set(delay, jitter time.Duration) {
	d.delay.Store(int64(delay))
	d.jitter.Store(int64(jitter))
}

// Close stops the delayer; the kernel drops what is still queued.
func (d *Delayer) Close() {
	if d.closing.Swap(true) {
		return
	}
	close(d.done)
	d.f.Close() // wakes receive
	d.wg.Wait()
}

// socketIn opens a socket in network namespace ns. A socket belongs to the
// namespace of the thread that created it, for good: so one thread enters
// ns, creates it, and is then thrown away (a goroutine that ends while
// locked to its thread takes the thread with it), rather than going back
// to run other goroutines in the wrong namespace.
//
// Call it only before the nodes start: the thread thrown away may be one
// that earlier started a child, and a node started with a parent-death
// signal (Cluster.Start) gets it when that thread ends.
func socketIn(ns string, domain, typ, proto int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		nsf, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- result{-1, err}
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{-1, fmt.Errorf("setns: %w", err)}
			return
		}
		fd, err := unix.Socket(domain, typ, proto)
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, val []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(4+len(val)))
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// message encodes a netfilter netlink message of the queue subsystem.
func (d *Delayer) message(typ uint8, flags uint16, attrs []byte) ([]byte, uint32) {
	seq := d.seq.Add(1)
	b := make([]byte, 16, 16+4+len(attrs))
	binary.LittleEndian.PutUint32(b[0:], uint32(16+4+len(attrs)))
	binary.LittleEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|uint16(typ))
	binary.LittleEndian.PutUint16(b[6:], flags)
	binary.LittleEndian.PutUint32(b[8:], seq)
	// nfgenmsg: family, version, resource id (the queue, big-endian).
	b = append(b, unix.AF_UNSPEC, 0)
	b = binary.BigEndian.AppendUint16(b, d.queue)
	return append(b, attrs...), seq
}

func (d *Delayer) send(msg []byte) error {
	var serr error
	err := d.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

func (d *Delayer) recv(buf []byte) (int, error) {
	var n int
	var rerr error
	err := d.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// request sends a configuration message and waits for the kernel's
// acknowledgement (before the receive loop runs).
func (d *Delayer) request(typ uint8, attrs []byte) error {
	msg, seq := d.message(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK, attrs)
	if err := d.send(msg); err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := d.recv(buf)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_ERROR && m.Header.Seq == seq && len(m.Data) >= 4 {
				if code := int32(binary.LittleEndian.Uint32(m.Data)); code != 0 {
					return syscall.Errno(-code)
				}
				return nil
			}
		}
	}
	return errors.New("no acknowledgement")
}

// receive reads queued packets' ids and hands them to release with the
// time each may leave.
func (d *Delayer) receive() {
	defer d.wg.Done()
	buf := make([]byte, 1<<16)
	var last time.Time
	for {
		n, err := d.recv(buf)
		if err != nil {
			if d.closing.Load() {
				return
			}
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EINTR) {
				continue // lost notifications: fail-open let those packets through
			}
			fmt.Fprintf(os.Stderr, "chaos: delayer %s: %v\n", d.ns, err)
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != nfnlSubsysQueue<<8|nfqnlMsgPacket || len(m.Data) < 4 {
				continue
			}
			id, ok := packetID(m.Data[4:])
			if !ok {
				continue
			}
			due := time.Now().Add(time.Duration(d.delay.Load()))
			if j := d.jitter.Load(); j > 0 {
				due = due.Add(time.Duration(rand.Int64N(j)))
			}
			if due.Before(last) {
				due = last // keep the order (see the top of the file)
			}
			last = due
			select {
			case d.pending <- held{id, due}:
			case <-d.done:
				return
			}
		}
	}
}

// packetID finds NFQA_PACKET_HDR among a packet message's attributes.
func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= 4 {
		l := int(binary.LittleEndian.Uint16(attrs))
		typ := binary.LittleEndian.Uint16(attrs[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(attrs) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(attrs[4:]), true
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return 0, false
}

// release lets packets go when they are due. Ids grow in queue order and
// packets leave in that order, so one batch verdict ("accept every packet
// up to this id") releases all that are due at once.
func (d *Delayer) release() {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var next *held
	for {
		if next == nil {
			select {
			case h := <-d.pending:
				next = &h
			case <-d.done:
				return
			}
		}
		if wait := time.Until(next.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-d.done:
				return
			}
		}
		upTo := next.id
		next = nil
	drain:
		for {
			select {
			case h := <-d.pending:
				if time.Until(h.due) > 0 {
					next = &h
					break drain
				}
				upTo = h.id
			default:
				break drain
			}
		}
		verdict := binary.BigEndian.AppendUint32(nil, nfAccept)
		verdict = binary.BigEndian.AppendUint32(verdict, upTo)
		msg, _ := d.message(nfqnlMsgVerdictBat, unix.NLM_F_REQUEST, attr(nfqaVerdictHdr, verdict))
		if err := d.send(msg); err != nil && !d.closing.Load() {
			fmt.Fprintf(os.Stderr, "chaos: delayer %s: verdict: %v\n", d.ns, err)
		}
	}
}
