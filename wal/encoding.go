package wal

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/paxosd/paxosd/paxos"
)

// formatVersion leads every stored value. A future layout bumps it and keeps
// a decoder for the old one; an unknown version is reported as corruption
// rather than guessed at.
const formatVersion byte = 1

// clusterIDBytesMax bounds Identity.ClusterID. The id is printed in errors
// and status output, so it should be a short name, not a blob.
const clusterIDBytesMax = 256

// Keys. See doc.go for the drawing. Pebble orders keys bytewise, so the
// big-endian slot makes iteration order equal slot order.
var (
	keyIdentity = []byte("m/identity")
	keyPromised = []byte("a/promised")
	keyCommit   = []byte("a/commit")
	// entryPrefix is followed by the 8-byte big-endian slot.
	entryPrefix = []byte("e/")
	// entryEnd sorts after every entry key ('0' is the byte after '/').
	entryEnd = []byte("e0")
)

const entryKeyLen = 2 + 8

func entryKey(s paxos.Slot) []byte {
	k := make([]byte, entryKeyLen)
	copy(k, entryPrefix)
	binary.BigEndian.PutUint64(k[2:], uint64(s))
	return k
}

// entryUpper returns the exclusive iterator bound for entries at or below to.
func entryUpper(to paxos.Slot) []byte {
	if to == math.MaxUint64 {
		return entryEnd
	}
	return entryKey(to + 1)
}

// decodeEntryKey returns the slot of an entry key.
func decodeEntryKey(k []byte) (paxos.Slot, error) {
	if len(k) != entryKeyLen || k[0] != entryPrefix[0] || k[1] != entryPrefix[1] {
		return 0, corruptf("entry key", "malformed key %q", k)
	}
	s := paxos.Slot(binary.BigEndian.Uint64(k[2:]))
	if s == 0 {
		return 0, corruptf("entry key", "slot 0 is never written")
	}
	return s, nil
}

// appendEntryValue appends the encoding of e's ballot and value to dst:
//
//	version | round uvarint | node uvarint | kind byte | n uvarint | n × (len uvarint | bytes)
func appendEntryValue(dst []byte, e paxos.Entry) []byte {
	dst = append(dst, formatVersion)
	dst = appendBallot(dst, e.Ballot)
	dst = append(dst, byte(e.Value.Kind))
	dst = binary.AppendUvarint(dst, uint64(len(e.Value.Cmds)))
	for _, c := range e.Value.Cmds {
		dst = binary.AppendUvarint(dst, uint64(len(c)))
		dst = append(dst, c...)
	}
	return dst
}

// decodeEntryValue decodes what appendEntryValue wrote for slot (which only
// names the record in errors). The commands are copied (b may be an
// iterator's buffer) into one allocation, and each is capped so a caller
// appending to one cannot overwrite the next.
func decodeEntryValue(slot paxos.Slot, b []byte) (paxos.Ballot, paxos.Value, error) {
	d := decoder{what: "entry", slot: slot, b: b}
	d.version()
	ballot := d.ballot()
	v := paxos.Value{Kind: paxos.ValueKind(d.byte())}
	n := d.uvarint()
	// Every command takes at least one byte (its length), so a count above
	// the remaining bytes is corrupt; checking it first bounds the
	// allocation below by the input size.
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("command count %d exceeds the %d bytes left", n, len(d.b))
	}
	if d.err == nil && n > 0 {
		buf := make([]byte, 0, len(d.b))
		v.Cmds = make([][]byte, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			c := d.bytes(d.uvarint())
			start := len(buf)
			buf = append(buf, c...)
			v.Cmds = append(v.Cmds, buf[start:len(buf):len(buf)])
		}
	}
	if err := d.finish(); err != nil {
		return paxos.Ballot{}, paxos.Value{}, err
	}
	return ballot, v, nil
}

// appendBallotValue encodes a stored ballot (the promise): version | ballot.
func appendBallotValue(dst []byte, b paxos.Ballot) []byte {
	return appendBallot(append(dst, formatVersion), b)
}

func decodeBallotValue(what string, b []byte) (paxos.Ballot, error) {
	d := decoder{what: what, b: b}
	d.version()
	ballot := d.ballot()
	return ballot, d.finish()
}

// appendSlotValue encodes a stored slot (the commit): version | slot uvarint.
func appendSlotValue(dst []byte, s paxos.Slot) []byte {
	return binary.AppendUvarint(append(dst, formatVersion), uint64(s))
}

func decodeSlotValue(what string, b []byte) (paxos.Slot, error) {
	d := decoder{what: what, b: b}
	d.version()
	s := paxos.Slot(d.uvarint())
	return s, d.finish()
}

// appendIdentityValue encodes an Identity:
//
//	version | node uvarint | len uvarint | cluster id bytes
func appendIdentityValue(dst []byte, id Identity) []byte {
	dst = append(dst, formatVersion)
	dst = binary.AppendUvarint(dst, uint64(id.NodeID))
	dst = binary.AppendUvarint(dst, uint64(len(id.ClusterID)))
	return append(dst, id.ClusterID...)
}

func decodeIdentityValue(b []byte) (Identity, error) {
	d := decoder{what: "identity record", b: b}
	d.version()
	node := d.nodeID()
	n := d.uvarint()
	if d.err == nil && n > clusterIDBytesMax {
		d.fail("cluster id of %d bytes exceeds %d", n, clusterIDBytesMax)
	}
	cluster := string(d.bytes(n))
	if err := d.finish(); err != nil {
		return Identity{}, err
	}
	id := Identity{ClusterID: cluster, NodeID: node}
	if err := id.validate(); err != nil {
		return Identity{}, corruptf(d.what, "%v", err)
	}
	return id, nil
}

func appendBallot(dst []byte, b paxos.Ballot) []byte {
	dst = binary.AppendUvarint(dst, b.Round)
	return binary.AppendUvarint(dst, uint64(b.Node))
}

// decoder reads a value front to back. The first problem sticks in err and
// turns every later read into a no-op returning zero, so decoding code reads
// straight through and checks once at the end; no input can make it panic.
type decoder struct {
	what string     // names the record in errors
	slot paxos.Slot // if not 0, the record's slot, also for errors
	b    []byte     // the bytes not yet read
	err  error
}

// fail records the first problem. The record's name is formatted only here,
// so decoding a good record costs no formatting.
func (d *decoder) fail(format string, args ...any) {
	if d.err != nil {
		return
	}
	what := d.what
	if d.slot != 0 {
		what = fmt.Sprintf("%s at slot %d", d.what, d.slot)
	}
	d.err = corruptf(what, format, args...)
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) version() {
	if v := d.byte(); d.err == nil && v != formatVersion {
		d.fail("unknown format version %d (want %d)", v, formatVersion)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) nodeID() paxos.NodeID {
	x := d.uvarint()
	if x > math.MaxUint32 {
		d.fail("node id %d overflows 32 bits", x)
		return 0
	}
	return paxos.NodeID(x)
}

func (d *decoder) ballot() paxos.Ballot {
	round := d.uvarint()
	return paxos.Ballot{Round: round, Node: d.nodeID()}
}

// bytes returns the next n bytes, aliasing the input.
func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b))
		return nil
	}
	c := d.b[:n:n]
	d.b = d.b[n:]
	return c
}

// finish reports the first error, or trailing bytes: a record is exactly
// what its encoder wrote, so extra bytes mean damage, not a newer format.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
