package wire

import (
	"fmt"
	"math"

	"github.com/paxosd/paxosd/paxos"
)

// Layout of a peer message frame body (see doc.go and docs/PROTOCOL.md):
//
//	[1, type, from, to, ballot_round, ballot_node, slot, commit, reject,
//	 entries, slots, cmds, more, transfer_round, transfer_node, addr]
//
// The two transfer elements (version 3) are written only when set or
// when addr (version 18) is, which is written only when set.
//	entry = [slot, ballot_round, ballot_node, value_kind, cmds]
//	cmds  = [bin, ...]
//
// The codec is hand-written (no reflection): it is the replication hot path.

const (
	messageElems = 13 // elements of a message body, frame type included
	entryElems   = 5
)

// EncodeMessage appends the body of a message frame carrying m to dst.
// It does not validate m: a message from the protocol core is well formed.
func EncodeMessage(dst []byte, m paxos.Message) []byte {
	elems := messageElems
	switch {
	case m.Addr != "":
		elems += 3
	case !m.Transfer.IsZero():
		elems += 2
	}
	dst = appendArrayLen(dst, elems)
	dst = appendUint(dst, uint64(FrameMessage))
	dst = appendUint(dst, uint64(m.Type))
	dst = appendUint(dst, uint64(m.From))
	dst = appendUint(dst, uint64(m.To))
	dst = appendUint(dst, m.Ballot.Round)
	dst = appendUint(dst, uint64(m.Ballot.Node))
	dst = appendUint(dst, uint64(m.Slot))
	dst = appendUint(dst, uint64(m.Commit))
	dst = appendBool(dst, m.Reject)
	dst = appendArrayLen(dst, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		dst = appendArrayLen(dst, entryElems)
		dst = appendUint(dst, uint64(e.Slot))
		dst = appendUint(dst, e.Ballot.Round)
		dst = appendUint(dst, uint64(e.Ballot.Node))
		dst = appendUint(dst, uint64(e.Value.Kind))
		dst = appendCmds(dst, e.Value.Cmds)
	}
	dst = appendArrayLen(dst, len(m.Slots))
	for _, s := range m.Slots {
		dst = appendUint(dst, uint64(s))
	}
	dst = appendCmds(dst, m.Cmds)
	dst = appendBool(dst, m.More)
	if elems > messageElems {
		dst = appendUint(dst, m.Transfer.Round)
		dst = appendUint(dst, uint64(m.Transfer.Node))
	}
	if m.Addr != "" {
		dst = appendStr(dst, m.Addr)
	}
	return dst
}

func appendCmds(dst []byte, cmds [][]byte) []byte {
	dst = appendArrayLen(dst, len(cmds))
	for _, c := range cmds {
		dst = appendBin(dst, c)
	}
	return dst
}

// DecodeMessage decodes a message frame body. The byte slices in the result
// (commands) alias body, which the caller must therefore not modify
// afterwards. It fails with ErrMalformed on anything but a well-formed body
// of a known message type; it never panics, and it allocates in proportion
// to len(body), whatever lengths the body declares.
func DecodeMessage(body []byte) (paxos.Message, error) {
	var m paxos.Message
	r := reader{b: body}
	n, err := r.arrayLen()
	if err != nil {
		return m, err
	}
	if n < 2 {
		return m, r.errorf("message body has %d elements, want at least 2", n)
	}
	if err := expectFrameType(&r, FrameMessage); err != nil {
		return m, err
	}
	t, err := r.uint(math.MaxUint8)
	if err != nil {
		return m, err
	}
	m.Type = paxos.MsgType(t)
	if !m.Type.Valid() {
		return m, fmt.Errorf("%w: unknown message type %d", ErrMalformed, t)
	}
	for i := 2; i < n && err == nil; i++ {
		var v uint64
		switch i {
		case 2:
			v, err = r.uint(math.MaxUint32)
			m.From = paxos.NodeID(v)
		case 3:
			v, err = r.uint(math.MaxUint32)
			m.To = paxos.NodeID(v)
		case 4:
			m.Ballot.Round, err = r.uint(math.MaxUint64)
		case 5:
			v, err = r.uint(math.MaxUint32)
			m.Ballot.Node = paxos.NodeID(v)
		case 6:
			v, err = r.uint(math.MaxUint64)
			m.Slot = paxos.Slot(v)
		case 7:
			v, err = r.uint(math.MaxUint64)
			m.Commit = paxos.Slot(v)
		case 8:
			m.Reject, err = r.bool()
		case 9:
			m.Entries, err = decodeEntries(&r)
		case 10:
			m.Slots, err = decodeSlots(&r)
		case 11:
			m.Cmds, err = decodeCmds(&r)
		case 12:
			m.More, err = r.bool()
		case 13:
			m.Transfer.Round, err = r.uint(math.MaxUint64)
		case 14:
			v, err = r.uint(math.MaxUint32)
			m.Transfer.Node = paxos.NodeID(v)
		case 15:
			m.Addr, err = r.str()
		default:
			err = r.skip()
		}
	}
	if err != nil {
		return m, err
	}
	return m, r.end()
}

func expectFrameType(r *reader, want FrameType) error {
	t, err := r.uint(math.MaxUint8)
	if err != nil {
		return err
	}
	if FrameType(t) != want {
		return fmt.Errorf("%w: frame type %s, want %s", ErrMalformed, FrameType(t), want)
	}
	return nil
}

func decodeEntries(r *reader) ([]paxos.Entry, error) {
	n, err := r.arrayLen()
	if err != nil || n == 0 {
		return nil, err
	}
	es := make([]paxos.Entry, n)
	var slab [][]byte // backs the entries' command lists: few allocations
	for i := range es {
		if err := decodeEntry(r, &es[i], &slab); err != nil {
			return nil, err
		}
	}
	return es, nil
}

func decodeEntry(r *reader, e *paxos.Entry, slab *[][]byte) error {
	n, err := r.arrayLen()
	if err != nil {
		return err
	}
	for i := 0; i < n && err == nil; i++ {
		var v uint64
		switch i {
		case 0:
			v, err = r.uint(math.MaxUint64)
			e.Slot = paxos.Slot(v)
		case 1:
			e.Ballot.Round, err = r.uint(math.MaxUint64)
		case 2:
			v, err = r.uint(math.MaxUint32)
			e.Ballot.Node = paxos.NodeID(v)
		case 3:
			v, err = r.uint(math.MaxUint8)
			e.Value.Kind = paxos.ValueKind(v)
		case 4:
			e.Value.Cmds, err = decodeCmdsSlab(r, slab)
		default:
			err = r.skip()
		}
	}
	return err
}

// decodeCmdsSlab is decodeCmds taking the list from *slab, which it
// refills (doubling, but never beyond what the bytes left could hold) when
// it runs short. The list returned has no spare capacity, so appending to
// it cannot overwrite a neighbour.
func decodeCmdsSlab(r *reader, slab *[][]byte) ([][]byte, error) {
	n, err := r.arrayLen()
	if err != nil || n == 0 {
		return nil, err
	}
	if cap(*slab)-len(*slab) < n {
		*slab = make([][]byte, 0, max(n, min(2*cap(*slab)+8, r.remaining())))
	}
	s := *slab
	cs := s[len(s) : len(s)+n : len(s)+n]
	*slab = s[:len(s)+n]
	for i := range cs {
		if cs[i], err = r.raw(); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

func decodeSlots(r *reader) ([]paxos.Slot, error) {
	n, err := r.arrayLen()
	if err != nil || n == 0 {
		return nil, err
	}
	ss := make([]paxos.Slot, n)
	for i := range ss {
		v, err := r.uint(math.MaxUint64)
		if err != nil {
			return nil, err
		}
		ss[i] = paxos.Slot(v)
	}
	return ss, nil
}

func decodeCmds(r *reader) ([][]byte, error) {
	n, err := r.arrayLen()
	if err != nil || n == 0 {
		return nil, err
	}
	cs := make([][]byte, n)
	for i := range cs {
		if cs[i], err = r.raw(); err != nil {
			return nil, err
		}
	}
	return cs, nil
}
