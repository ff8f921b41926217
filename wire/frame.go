package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
)

const (
	// ProtocolVersion is the highest protocol version this package speaks.
	// Versions 5 and 6 add nothing to the wire itself: each tells the
	// leader that the member's state machine knows the cluster level of the
	// same number (5: the internal log command 31; 6: the state hash
	// computed from the snapshot encoding; docs/PROTOCOL.md). Version 7
	// adds nothing to the wire either: it changes how a node answers a
	// client that speaks it (VersionClientAnswers). Version 8 adds
	// transactions (OpTxn: the request fields compares, then_ops,
	// else_ops and the response field txn_results) and tells the leader
	// that the member's state machine knows cluster level 8, which
	// applies them (VersionTxn). Version 9 gives OpPut's session_id a
	// meaning, ephemeral keys (VersionEphemeral). Version 10 adds users,
	// roles and auth (VersionAuth). Version 11 adds nothing to the wire: a
	// node sends a client that speaks it progress notifications on its
	// idle watches (VersionWatchProgress). Version 12 adds keep-alive
	// batches (VersionKeepAliveBatch). Version 13 adds back-pressure
	// (VersionBusy). Version 14 adds snapshot saves (VersionSnapshotSave).
	// Version 15 adds the error code SlowWatcher (VersionSlowWatcher).
	// Version 16 adds membership changes (VersionMembership). Version 17
	// adds the request field omit_prev (VersionOmitPrev). Version 18 adds
	// the message field addr (VersionOfferAddr). Version 19 adds the hello
	// field addr (VersionHelloAddr). Version 20 has a HeartbeatAck name the
	// Decide it answers (VersionAckNamesDecide).
	ProtocolVersion = 20
	// VersionAckNamesDecide is the first version whose followers name, in
	// a HeartbeatAck answering a Decide, that Decide's last slot (the
	// message field slots), from which the leader sees catch-up batches
	// lost before it. An older node refuses a HeartbeatAck with slots and
	// closes the connection: the transport leaves the field out on a
	// connection that negotiated an older version (frameMessage).
	VersionAckNamesDecide = 20
	// VersionHelloAddr is the first version whose nodes say in the hello
	// of a peer connection where they may be dialed back (Hello.Addr). An
	// older listener ignores the field (a trailing one it does not know).
	VersionHelloAddr = 19
	// VersionOfferAddr is the first version whose nodes put their address
	// in a Snapshot offer (the message field addr), from which a node
	// that knows no address for the sender learns one. An older node
	// ignores the field (a trailing one it does not know).
	VersionOfferAddr = 18
	// VersionOmitPrev is the first version whose nodes answer a Put or a
	// Delete with omit_prev set without the previous pair. Nothing enters
	// the log and no cluster level gates it: an older node ignores the
	// field (a trailing field it does not know) and answers with the
	// pair, which a client that asked for none just does not read.
	VersionOmitPrev = 17
	// VersionMembership is the first version with the member operations
	// (OpMemberList to OpMemberUpdate), their request and response fields
	// and err MemberConflict, and with configuration values in the log
	// (paxos.ValueConfig, which an older member's core rejects): a change
	// is proposed only once every member speaks it (the cluster level,
	// statemachine.LevelMembership).
	VersionMembership = 16
	// VersionSlowWatcher is the first version whose clients get err
	// SlowWatcher when a node ends a watch they read too slowly (its
	// revision says where to resume); an older client is told Unavailable,
	// which it resumes from too.
	VersionSlowWatcher = 15
	// VersionSnapshotSave is the first version that has OpSnapshotSave: a
	// client sends one only on a connection that negotiated it (an older
	// node answers an unknown op). Nothing new enters the log or the
	// state: the save's barrier is a List command every version applies,
	// so it needs no cluster level.
	VersionSnapshotSave = 14
	// VersionBusy is the first version with ErrBusy and the response field
	// retry_after_ms: an overloaded node answers a client that negotiated
	// it "busy: retry after N ms"; an older client gets what older nodes
	// said, ErrUnavailable (retry later).
	VersionBusy = 13
	// VersionKeepAliveBatch is the first version that has
	// OpSessionKeepAliveBatch (the request field session_ids, the response
	// field expired_sessions): a client sends one only on a connection
	// that negotiated it, and the cluster applies one only from cluster
	// level 12, raised once every member speaks it.
	VersionKeepAliveBatch = 12
	// VersionWatchProgress is the first version whose clients get watch
	// progress notifications: an empty response on an idle watch carrying
	// the revision the watch is up to date with (docs/PROTOCOL.md,
	// "Streams"). An older client was promised events in every response
	// after the first, and gets none.
	VersionWatchProgress = 11
	// VersionAuth is the first version with users, roles and auth: ops 33
	// to 46, the request fields role and perm, the response fields users,
	// roles, auth_enabled and user, error codes 17 to 19, and cluster
	// level 10. A client sends them only on a connection that negotiated
	// it.
	VersionAuth = 10
	// VersionEphemeral is the first version whose OpPut may carry a
	// SessionID, binding the key to the session (deleted when it ends): a
	// client sends one only on a connection that negotiated it (an older
	// server would ignore the field and make the key permanent), and the
	// cluster binds only from cluster level 9.
	VersionEphemeral = 9
	// VersionTxn is the first version that has transactions: a client
	// sends an OpTxn only on a connection that negotiated it (an older
	// server would ignore the new fields), and the cluster applies one
	// only from cluster level 8, raised once every member speaks it.
	VersionTxn = 8
	// VersionClientAnswers is the first version whose clients get the
	// answers docs/PROTOCOL.md gives since version 7: err Unavailable when
	// the node has known no quorum for a while (rather than a Timeout, or
	// no answer to a blocking call), and a Delete of a missing key answered
	// with success and found false (rather than err NotFound). An older
	// client gets the older answers.
	VersionClientAnswers = 7
	// Magic opens every hello; it tells a paxosd peer from anything else
	// that connects to the port.
	Magic = "paxosd"
	// DefaultFrameBytesMax is the default limit on a frame body's length.
	DefaultFrameBytesMax = 16 << 20
	// DefaultClusterID is the cluster id an empty ClusterID stands for.
	DefaultClusterID = "paxosd"

	// frameHeaderBytes is the size of a frame's length prefix.
	frameHeaderBytes = 4
	// helloBytesMax bounds the first frame of a connection, read before the
	// other end has identified itself.
	helloBytesMax = 4 << 10
	// frameChunkBytes is how much of a large frame is allocated ahead of
	// the bytes actually received, so a length prefix alone cannot make the
	// reader allocate the maximum frame size.
	frameChunkBytes = 64 << 10
	// frameGrowth: a large frame's buffer grows, once full, by this many
	// times the bytes received: a frame of up to 1 MiB and 64 KiB takes
	// two allocations, and a length prefix that lies costs at most this
	// many times the bytes actually sent.
	frameGrowth = 16
)

// FrameType is the first element of every frame body.
type FrameType uint8

const (
	// FrameHello opens a connection, in both directions.
	FrameHello FrameType = 0
	// FrameMessage carries one paxos.Message between nodes.
	FrameMessage FrameType = 1
	// FrameRequest carries a client Request.
	FrameRequest FrameType = 2
	// FrameResponse carries the server's Response to a Request.
	FrameResponse FrameType = 3
)

func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "Hello"
	case FrameMessage:
		return "Message"
	case FrameRequest:
		return "Request"
	case FrameResponse:
		return "Response"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// normalizeClusterID maps the empty cluster id to DefaultClusterID.
func normalizeClusterID(id string) string {
	if id == "" {
		return DefaultClusterID
	}
	return id
}

// AppendFrame appends to dst the frame carrying body: its length as a 4-byte
// big-endian integer, then body.
func AppendFrame(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// appendFramed appends a frame whose body encode appends, without copying
// the body: it reserves the length prefix and fills it in afterwards.
func appendFramed(dst []byte, encode func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = encode(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-frameHeaderBytes))
	return dst
}

// FrameReader reads frames from a stream, buffering reads so that many
// small frames cost one read system call.
type FrameReader struct {
	r   *bufio.Reader
	max int
	hdr [frameHeaderBytes]byte
}

// NewFrameReader returns a FrameReader on r that rejects frame bodies longer
// than frameBytesMax bytes (DefaultFrameBytesMax when zero or negative).
func NewFrameReader(r io.Reader, frameBytesMax int) *FrameReader {
	if frameBytesMax <= 0 {
		frameBytesMax = DefaultFrameBytesMax
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), max: frameBytesMax}
}

// ReadFrame reads the next frame and returns its body, which the caller
// owns: every call returns a new slice. It returns io.EOF at a clean end of
// the stream, io.ErrUnexpectedEOF inside a frame, and ErrFrameTooLarge for a
// length prefix above the limit (the stream is then out of sync; close it).
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	return fr.readFrame(fr.max)
}

func (fr *FrameReader) readFrame(max int) ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return nil, err
	}
	n64 := uint64(binary.BigEndian.Uint32(fr.hdr[:]))
	if n64 > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n64, max)
	}
	n := int(n64)
	// Allocate as the bytes arrive, not as the prefix claims: at most
	// frameGrowth times what has arrived ahead of it. (Doubling, a 1 MiB
	// frame cost 2.9 MB of allocations: garbage that, on a node holding a
	// large state near its memory limit, makes the collector mark the
	// whole state again every few frames. BenchmarkReadFrameChunk.)
	body := make([]byte, 0, min(n, frameChunkBytes))
	for len(body) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(n-len(body), frameGrowth*len(body)))
		}
		m, err := io.ReadFull(fr.r, body[len(body):min(n, cap(body))])
		body = body[:len(body)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}

// frameBufs recycles the buffers frames are encoded into on the send paths
// of client connections (a node's answers): a frame the socket takes whole
// leaves its buffer free at once, and a node answering ten thousand puts a
// second otherwise allocates and grows a buffer for every batch of
// answers, a tenth of what it allocates at a million keys.
var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

// frameBufPooledMax is the largest buffer kept for reuse: a rare large
// answer (a listing page) should not stay pinned in the pool.
const frameBufPooledMax = 256 << 10

// getFrameBuf returns an empty buffer for a frame, from the pool.
func getFrameBuf() []byte {
	return (*frameBufs.Get().(*[]byte))[:0]
}

// putFrameBuf returns f's buffer to the pool; nothing may use f after.
func putFrameBuf(f []byte) {
	if cap(f) == 0 || cap(f) > frameBufPooledMax {
		return
	}
	f = f[:0]
	frameBufs.Put(&f)
}
