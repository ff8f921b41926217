package wire

import (
	"fmt"

	"github.com/paxosd/paxosd/paxos"
)

// Op is the operation a client Request asks for.
//
// To add an operation: add a constant at the end (never renumber), add its
// fields at the end of requestFields/responseFields (and the structs), and
// document both in docs/PROTOCOL.md.
type Op uint8

const (
	// OpPut sets Key to Value. Response: Revision; Found and KV hold the
	// previous key-value pair if there was one.
	OpPut Op = iota + 1
	// OpGet reads Key. Response: Found, KV.
	OpGet
	// OpDelete removes Key. Response: Revision; Found and KV hold the
	// deleted pair if there was one.
	OpDelete
	// OpCAS sets Key to Value if the comparison holds: the current value
	// equals PrevValue (when HasPrevValue) and the current mod revision
	// equals PrevRevision (when HasPrevRevision; 0 = the key must not
	// exist). Response: Succeeded and Revision; when the comparison fails,
	// Err is ErrCASFailed and Found/KV hold the current pair.
	OpCAS
	// OpList lists keys starting with Prefix, in key order, at most Limit
	// of them (0 = no limit). Response: KVs, Revision.
	OpList
	// OpStatus reports the cluster as this node sees it. Response: Status.
	OpStatus
)

var opNames = [...]string{
	OpPut:    "Put",
	OpGet:    "Get",
	OpDelete: "Delete",
	OpCAS:    "CAS",
	OpList:   "List",
	OpStatus: "Status",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Valid reports whether o is an operation this version knows. The decoder
// accepts unknown operations so that the server can answer ErrInvalid with
// the request's id instead of closing the connection.
func (o Op) Valid() bool { return o >= OpPut && o <= OpStatus }

// ErrCode says why a request failed. Codes are never renumbered; a client
// treats an unknown code like ErrInternal.
type ErrCode uint8

const (
	// ErrNone: the request succeeded.
	ErrNone ErrCode = iota
	// ErrNotLeader: this node cannot serve the request; retry at
	// LeaderHint/LeaderAddr when set, else at another node.
	ErrNotLeader
	// ErrNotFound: the key (or other named object) does not exist.
	ErrNotFound
	// ErrCASFailed: a compare-and-set's comparison did not hold; nothing
	// was written (Succeeded is false, Found/KV hold the current pair).
	ErrCASFailed
	// ErrInvalid: the request is malformed (unknown op, empty key...).
	ErrInvalid
	// ErrTooLarge: a key, value or answer exceeds a size limit.
	ErrTooLarge
	// ErrTimeout: the request did not complete in time; it may or may not
	// have been applied (retry with the same ClientID and Seq to find out).
	ErrTimeout
	// ErrUnavailable: no quorum or the node is shutting down; retry later.
	ErrUnavailable
	// ErrInternal: a bug or an unexpected failure on the server.
	ErrInternal
	// ErrSessionExpired: the session named by the request has ended.
	ErrSessionExpired
	// ErrLockHeld: a try-lock found the lock held by someone else.
	ErrLockHeld
)

var errCodeNames = [...]string{
	ErrNone:           "None",
	ErrNotLeader:      "NotLeader",
	ErrNotFound:       "NotFound",
	ErrCASFailed:      "CASFailed",
	ErrInvalid:        "Invalid",
	ErrTooLarge:       "TooLarge",
	ErrTimeout:        "Timeout",
	ErrUnavailable:    "Unavailable",
	ErrInternal:       "Internal",
	ErrSessionExpired: "SessionExpired",
	ErrLockHeld:       "LockHeld",
}

func (c ErrCode) String() string {
	if int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return fmt.Sprintf("ErrCode(%d)", uint8(c))
}

// Request is a client's request. Byte slices decoded from a frame alias the
// frame body.
type Request struct {
	// ID identifies the request on its connection; the response echoes
	// it. Many requests may be in flight; responses come in any order.
	ID uint64
	Op Op
	// ClientID and Seq identify the operation across connections and
	// retries: the state machine applies a (ClientID, Seq) once and
	// answers a retry with the remembered answer. ClientID 0 opts out.
	ClientID uint64
	Seq      uint64
	// AckedBelow promises that the client has received the answer to
	// every Seq below it, so the server may forget those answers.
	AckedBelow uint64
	Key        string
	Value      []byte
	// Prefix selects the keys of an OpList.
	Prefix string
	// PrevValue is the value an OpCAS compares with, when HasPrevValue.
	PrevValue    []byte
	HasPrevValue bool
	// PrevRevision is the mod revision an OpCAS compares with, when
	// HasPrevRevision; 0 means the key must not exist.
	PrevRevision    uint64
	HasPrevRevision bool
	// Serializable lets OpGet/OpList answer from this node's applied
	// state, which may be stale, instead of a linearizable read.
	Serializable bool
	// Limit bounds the keys of an OpList; 0 means no limit.
	Limit uint32
	// TimeoutMs is the client's deadline hint in milliseconds (0 = none).
	TimeoutMs uint32
}

// KV is a key-value pair with its revisions.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the store revision that created the key;
	// ModRevision the one that last changed it (CreateRevision <=
	// ModRevision); Version counts changes since creation (1 = created).
	CreateRevision uint64
	ModRevision    uint64
	Version        uint64
}

// NodeStatus is one member as seen by the node answering an OpStatus.
type NodeStatus struct {
	ID   paxos.NodeID
	Addr string
	// Role is "leader", "follower" or "candidate".
	Role string
	// Ballot is the highest ballot the node knows of.
	Ballot paxos.Ballot
	// Leader is the leader the node knows of (0 = none).
	Leader paxos.NodeID
	// Commit is the node's chosen watermark; Applied <= Commit.
	Commit  paxos.Slot
	Applied paxos.Slot
	// Connected reports whether the answering node has a live connection
	// to this one (true for itself).
	Connected bool
}

// Response answers the Request with the same ID.
type Response struct {
	ID  uint64
	Err ErrCode
	// ErrMsg explains Err for humans; empty on success.
	ErrMsg string
	// LeaderHint and LeaderAddr name the leader, if known, with
	// ErrNotLeader.
	LeaderHint paxos.NodeID
	LeaderAddr string
	// Revision is the store revision after the operation (writes) or at
	// which it was served (reads).
	Revision uint64
	// Found reports whether KV holds a pair (see each Op).
	Found bool
	KV    KV
	// KVs are the pairs of an OpList, in key order.
	KVs []KV
	// Status lists the members, for OpStatus.
	Status []NodeStatus
	// Succeeded reports whether an OpCAS wrote (then Err is ErrNone).
	Succeeded bool
}

var requestFields = []field[Request]{
	uintField("id", func(q *Request) *uint64 { return &q.ID }),
	uintField("op", func(q *Request) *Op { return &q.Op }),
	uintField("client_id", func(q *Request) *uint64 { return &q.ClientID }),
	uintField("seq", func(q *Request) *uint64 { return &q.Seq }),
	uintField("acked_below", func(q *Request) *uint64 { return &q.AckedBelow }),
	strField("key", func(q *Request) *string { return &q.Key }),
	binField("value", func(q *Request) *[]byte { return &q.Value }),
	strField("prefix", func(q *Request) *string { return &q.Prefix }),
	binField("prev_value", func(q *Request) *[]byte { return &q.PrevValue }),
	boolField("has_prev_value", func(q *Request) *bool { return &q.HasPrevValue }),
	uintField("prev_revision", func(q *Request) *uint64 { return &q.PrevRevision }),
	boolField("has_prev_revision", func(q *Request) *bool { return &q.HasPrevRevision }),
	boolField("serializable", func(q *Request) *bool { return &q.Serializable }),
	uintField("limit", func(q *Request) *uint32 { return &q.Limit }),
	uintField("timeout_ms", func(q *Request) *uint32 { return &q.TimeoutMs }),
}

var kvFields = []field[KV]{
	strField("key", func(kv *KV) *string { return &kv.Key }),
	binField("value", func(kv *KV) *[]byte { return &kv.Value }),
	uintField("create_revision", func(kv *KV) *uint64 { return &kv.CreateRevision }),
	uintField("mod_revision", func(kv *KV) *uint64 { return &kv.ModRevision }),
	uintField("version", func(kv *KV) *uint64 { return &kv.Version }),
}

var nodeStatusFields = []field[NodeStatus]{
	uintField("id", func(s *NodeStatus) *paxos.NodeID { return &s.ID }),
	strField("addr", func(s *NodeStatus) *string { return &s.Addr }),
	strField("role", func(s *NodeStatus) *string { return &s.Role }),
	uintField("ballot_round", func(s *NodeStatus) *uint64 { return &s.Ballot.Round }),
	uintField("ballot_node", func(s *NodeStatus) *paxos.NodeID { return &s.Ballot.Node }),
	uintField("leader", func(s *NodeStatus) *paxos.NodeID { return &s.Leader }),
	uintField("commit", func(s *NodeStatus) *paxos.Slot { return &s.Commit }),
	uintField("applied", func(s *NodeStatus) *paxos.Slot { return &s.Applied }),
	boolField("connected", func(s *NodeStatus) *bool { return &s.Connected }),
}

var responseFields = []field[Response]{
	uintField("id", func(s *Response) *uint64 { return &s.ID }),
	uintField("err", func(s *Response) *ErrCode { return &s.Err }),
	strField("err_msg", func(s *Response) *string { return &s.ErrMsg }),
	uintField("leader_hint", func(s *Response) *paxos.NodeID { return &s.LeaderHint }),
	strField("leader_addr", func(s *Response) *string { return &s.LeaderAddr }),
	uintField("revision", func(s *Response) *uint64 { return &s.Revision }),
	boolField("found", func(s *Response) *bool { return &s.Found }),
	structField("kv", func(s *Response) *KV { return &s.KV }, kvFields),
	listField("kvs", func(s *Response) *[]KV { return &s.KVs }, kvFields),
	listField("status", func(s *Response) *[]NodeStatus { return &s.Status }, nodeStatusFields),
	boolField("succeeded", func(s *Response) *bool { return &s.Succeeded }),
}

// EncodeRequest appends the body of a request frame carrying q to dst.
func EncodeRequest(dst []byte, q *Request) []byte {
	return appendFrameBody(dst, FrameRequest, q, requestFields)
}

// DecodeRequest decodes a request frame body. Byte slices in the result
// alias body. Unknown operations decode (see Op.Valid).
func DecodeRequest(body []byte) (*Request, error) {
	q := new(Request)
	if err := decodeFrameBody(body, FrameRequest, q, requestFields); err != nil {
		return nil, err
	}
	return q, nil
}

// EncodeResponse appends the body of a response frame carrying s to dst.
func EncodeResponse(dst []byte, s *Response) []byte {
	return appendFrameBody(dst, FrameResponse, s, responseFields)
}

// DecodeResponse decodes a response frame body. Byte slices in the result
// alias body.
func DecodeResponse(body []byte) (*Response, error) {
	s := new(Response)
	if err := decodeFrameBody(body, FrameResponse, s, responseFields); err != nil {
		return nil, err
	}
	return s, nil
}
