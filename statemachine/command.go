package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Command is one client operation as it travels through the log: the service
// encodes it with EncodeCommand into one entry of a paxos.Value's Cmds, and
// every replica decodes and applies it in slot order.
type Command struct {
	// ClientID and Seq identify the request for duplicate detection. A
	// retry carries the same pair. ClientID 0 disables duplicate detection.
	ClientID uint64
	Seq      uint64
	// AckedBelow promises that the client has received the answers of all
	// its requests with Seq below it: the state machine may forget them.
	// Invariant (checked): AckedBelow <= Seq when ClientID != 0.
	AckedBelow uint64

	Op    Op
	Key   string // put, get, delete, cas
	Value []byte // put, cas: the new value
	// PrevValue, when HasPrevValue, makes a cas require the key to exist
	// with exactly this value.
	PrevValue    []byte
	HasPrevValue bool
	// PrevRevision, when HasPrevRevision, makes a cas require the key's
	// ModRevision to equal it; 0 means "the key must not exist" (create).
	PrevRevision    uint64
	HasPrevRevision bool
	Prefix          string // list
	Limit           uint32 // list: at most this many keys; 0 = all

	// SessionID names the session of a keep-alive, close, lock or election
	// command.
	SessionID uint64
	// TTLMs is the time to live of a session being opened, in cluster
	// milliseconds: SessionTTLMinMs..SessionTTLMaxMs.
	TTLMs uint64
	// Name is the lock or election a command is about.
	Name string
	// Token is the fencing token a lock check asks about.
	Token uint64
	// Wait makes a lock acquire wait for the lock (answered later, see
	// StateMachine.TakeAnswers) instead of failing with ErrLockHeld.
	Wait bool
	// LockDelayMs (lock acquire, at most LockDelayMaxMs) keeps the lock
	// free for this long after the holder's session expires: the old holder
	// may still be running. A release or a session close frees the lock at
	// once.
	LockDelayMs uint64
	// Now is the cluster time in milliseconds that an OpClock proposes.
	Now uint64
	// FenceName and FenceToken, on a put, delete or cas, make the write
	// succeed only while lock FenceName is held with exactly FenceToken;
	// otherwise it fails with ErrFenced and changes nothing.
	FenceName  string
	FenceToken uint64
	// HashSlot, StateHash, Reporter and Source: an OpStateHash's report;
	// Source is the member whose snapshot the reporter's state came from
	// since its last confirmed report (0: from its own log).
	HashSlot  uint64
	StateHash uint64
	Reporter  uint64
	Source    uint64
	// Quota is the space quota in bytes an OpQuotaSet or OpQuotaDefault
	// sets.
	Quota uint64
	// Level is the cluster level an OpLevel raises the state's to
	// (level.go). A field of its own rather than a reused one: appending
	// costs nothing to the commands that leave it at zero.
	Level uint64
	// Compares, Then and Else are an OpTxn's (txn.go): Then runs when
	// every compare holds, else Else.
	Compares []Compare
	Then     []TxnOp
	Else     []TxnOp
	// User is, on a session open, the authenticated user of the client
	// that opens it (the session's owner, from LevelAuth on): set by the
	// node, never taken from the client. Role and Perm are the user and
	// role commands' (auth.go).
	User string
	Role string
	Perm Perm
	// SessionIDs are the sessions an OpSessionKeepAliveBatch renews
	// (keepalive_batch.go).
	SessionIDs []uint64
}

func (c *Command) String() string {
	s := fmt.Sprintf("%d/%d %s", c.ClientID, c.Seq, c.Op)
	switch c.Op {
	case OpList:
		s += fmt.Sprintf(" prefix=%q limit=%d", c.Prefix, c.Limit)
	case OpSessionOpen:
		s += fmt.Sprintf(" ttl=%dms", c.TTLMs)
	case OpSessionKeepAlive, OpSessionClose:
		s += fmt.Sprintf(" session=%d", c.SessionID)
	case OpLockAcquire:
		s += fmt.Sprintf(" name=%q session=%d wait=%v delay=%dms", c.Name, c.SessionID, c.Wait, c.LockDelayMs)
	case OpLockCheck:
		s += fmt.Sprintf(" name=%q token=%d", c.Name, c.Token)
	case OpLockRelease, OpResign:
		s += fmt.Sprintf(" name=%q session=%d", c.Name, c.SessionID)
	case OpCampaign, OpProclaim:
		s += fmt.Sprintf(" name=%q session=%d value=%dB", c.Name, c.SessionID, len(c.Value))
	case OpLeader:
		s += fmt.Sprintf(" name=%q", c.Name)
	case OpClock:
		s += fmt.Sprintf(" now=%d", c.Now)
	case OpStateHash:
		s += fmt.Sprintf(" node %d: slot %d hash %016x (state from node %d)", c.Reporter, c.HashSlot, c.StateHash, c.Source)
	case OpClusterID:
		s += fmt.Sprintf(" id=%x", c.Value)
	case OpVoter:
		s += fmt.Sprintf(" node %d", c.Reporter)
	case OpQuotaSet, OpQuotaDefault:
		s += fmt.Sprintf(" quota=%dB", c.Quota)
	case OpLevel:
		s += fmt.Sprintf(" level=%d", c.Level)
	case OpTxn:
		s += fmt.Sprintf(" compares=%d then=%d else=%d", len(c.Compares), len(c.Then), len(c.Else))
	case OpSessionKeepAliveBatch:
		s += fmt.Sprintf(" sessions=%d", len(c.SessionIDs))
	case OpUserAdd, OpUserDelete, OpRoleAdd, OpRoleDelete:
		s += fmt.Sprintf(" name=%q", c.Name) // never the hash
	case OpUserGrantRole, OpUserRevokeRole:
		s += fmt.Sprintf(" user=%q role=%q", c.Name, c.Role)
	case OpRoleGrant, OpRoleRevoke:
		s += fmt.Sprintf(" role=%q prefix=%q perm=%s", c.Name, c.Prefix, c.Perm)
	case OpAuthEnable, OpAuthDisable:
	default:
		s += fmt.Sprintf(" key=%q", c.Key)
	}
	if c.FenceName != "" || c.FenceToken != 0 {
		s += fmt.Sprintf(" fence=%q@%d", c.FenceName, c.FenceToken)
	}
	if c.Op == OpPut || c.Op == OpCAS {
		s += fmt.Sprintf(" value=%dB", len(c.Value))
	}
	if c.HasPrevValue {
		s += fmt.Sprintf(" prev-value=%dB", len(c.PrevValue))
	}
	if c.HasPrevRevision {
		s += fmt.Sprintf(" prev-rev=%d", c.PrevRevision)
	}
	return s
}

// Field positions in the encoded array (see the package comment). New
// fields are only ever appended.
const (
	fieldClientID = iota
	fieldSeq
	fieldAckedBelow
	fieldOp
	fieldKey
	fieldValue
	fieldPrevValue
	fieldPrevRevision
	fieldPrefix
	fieldLimit
	fieldSessionID
	fieldTTLMs
	fieldName
	fieldToken
	fieldWait
	fieldLockDelayMs
	fieldNow
	fieldFenceName
	fieldFenceToken
	fieldHashSlot
	fieldStateHash
	fieldReporter
	fieldSource
	fieldQuota
	fieldLevel
	fieldCompares
	fieldThen
	fieldElse
	fieldUser
	fieldRole
	fieldPerm
	fieldSessionIDs // keep-alive batches
	fieldCount
)

// fieldsUsed returns the length of c's encoded array: trailing fields that
// hold their zero value are left out.
func (c *Command) fieldsUsed() int {
	switch {
	case len(c.SessionIDs) != 0:
		return fieldSessionIDs + 1
	case c.Perm != 0:
		return fieldPerm + 1
	case c.Role != "":
		return fieldRole + 1
	case c.User != "":
		return fieldUser + 1
	case len(c.Else) != 0:
		return fieldElse + 1
	case len(c.Then) != 0:
		return fieldThen + 1
	case len(c.Compares) != 0:
		return fieldCompares + 1
	case c.Level != 0:
		return fieldLevel + 1
	case c.Quota != 0:
		return fieldQuota + 1
	case c.Source != 0:
		return fieldSource + 1
	case c.Reporter != 0:
		return fieldReporter + 1
	case c.StateHash != 0:
		return fieldStateHash + 1
	case c.HashSlot != 0:
		return fieldHashSlot + 1
	case c.FenceToken != 0:
		return fieldFenceToken + 1
	case c.FenceName != "":
		return fieldFenceName + 1
	case c.Now != 0:
		return fieldNow + 1
	case c.LockDelayMs != 0:
		return fieldLockDelayMs + 1
	case c.Wait:
		return fieldWait + 1
	case c.Token != 0:
		return fieldToken + 1
	case c.Name != "":
		return fieldName + 1
	case c.TTLMs != 0:
		return fieldTTLMs + 1
	case c.SessionID != 0:
		return fieldSessionID + 1
	case c.Limit != 0:
		return fieldLimit + 1
	case c.Prefix != "":
		return fieldPrefix + 1
	case c.HasPrevRevision:
		return fieldPrevRevision + 1
	case c.HasPrevValue:
		return fieldPrevValue + 1
	case len(c.Value) != 0:
		return fieldValue + 1
	case c.Key != "":
		return fieldKey + 1
	case c.Op != 0:
		return fieldOp + 1
	case c.AckedBelow != 0:
		return fieldAckedBelow + 1
	case c.Seq != 0:
		return fieldSeq + 1
	case c.ClientID != 0:
		return fieldClientID + 1
	}
	return 0
}

// EncodeCommand returns the log encoding of c: a msgpack array of its fields
// in a fixed order, trailing zero fields omitted. The encoding is a pure
// function of c (no maps, no reflection), so every proposer produces the
// same bytes for the same command. An empty Value is encoded like a nil one.
func EncodeCommand(c *Command) []byte {
	var buf bytes.Buffer
	buf.Grow(16 + len(c.Key) + len(c.Value) + len(c.PrevValue) + len(c.Prefix) + len(c.Name) + len(c.FenceName) +
		TxnBytes(c) + 8*(len(c.Compares)+len(c.Then)+len(c.Else)+len(c.SessionIDs)))
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	// Writes to a bytes.Buffer cannot fail; the errors are checked anyway so
	// that a broken encoder panics instead of producing a short command.
	must := func(err error) {
		if err != nil {
			panic(fmt.Sprintf("service: encoding command: %v", err))
		}
	}
	n := c.fieldsUsed()
	must(enc.EncodeArrayLen(n))
	for f := 0; f < n; f++ {
		switch f {
		case fieldClientID:
			must(enc.EncodeUint(c.ClientID))
		case fieldSeq:
			must(enc.EncodeUint(c.Seq))
		case fieldAckedBelow:
			must(enc.EncodeUint(c.AckedBelow))
		case fieldOp:
			must(enc.EncodeUint(uint64(c.Op)))
		case fieldKey:
			must(enc.EncodeString(c.Key))
		case fieldValue:
			if len(c.Value) == 0 {
				must(enc.EncodeNil())
			} else {
				must(enc.EncodeBytes(c.Value))
			}
		case fieldPrevValue:
			if c.HasPrevValue {
				must(enc.EncodeBytes(nonNil(c.PrevValue)))
			} else {
				must(enc.EncodeNil())
			}
		case fieldPrevRevision:
			if c.HasPrevRevision {
				must(enc.EncodeUint(c.PrevRevision))
			} else {
				must(enc.EncodeNil())
			}
		case fieldPrefix:
			must(enc.EncodeString(c.Prefix))
		case fieldLimit:
			must(enc.EncodeUint(uint64(c.Limit)))
		case fieldSessionID:
			must(enc.EncodeUint(c.SessionID))
		case fieldTTLMs:
			must(enc.EncodeUint(c.TTLMs))
		case fieldName:
			must(enc.EncodeString(c.Name))
		case fieldToken:
			must(enc.EncodeUint(c.Token))
		case fieldWait:
			must(enc.EncodeBool(c.Wait))
		case fieldLockDelayMs:
			must(enc.EncodeUint(c.LockDelayMs))
		case fieldNow:
			must(enc.EncodeUint(c.Now))
		case fieldFenceName:
			must(enc.EncodeString(c.FenceName))
		case fieldFenceToken:
			must(enc.EncodeUint(c.FenceToken))
		case fieldHashSlot:
			must(enc.EncodeUint(c.HashSlot))
		case fieldStateHash:
			must(enc.EncodeUint(c.StateHash))
		case fieldReporter:
			must(enc.EncodeUint(c.Reporter))
		case fieldSource:
			must(enc.EncodeUint(c.Source))
		case fieldQuota:
			must(enc.EncodeUint(c.Quota))
		case fieldLevel:
			must(enc.EncodeUint(c.Level))
		case fieldCompares:
			must(encodeCompares(enc, c.Compares))
		case fieldThen:
			must(encodeTxnOps(enc, c.Then))
		case fieldElse:
			must(encodeTxnOps(enc, c.Else))
		case fieldUser:
			must(enc.EncodeString(c.User))
		case fieldRole:
			must(enc.EncodeString(c.Role))
		case fieldPerm:
			must(enc.EncodeUint(uint64(c.Perm)))
		case fieldSessionIDs:
			must(encodeIDList(enc, c.SessionIDs))
		}
	}
	return buf.Bytes()
}

// encodeCompares writes a transaction's compares: an array of
// [Target uint, Result uint, Key str, Value bin|nil, Number uint].
func encodeCompares(enc *msgpack.Encoder, cs []Compare) error {
	if err := enc.EncodeArrayLen(len(cs)); err != nil {
		return err
	}
	for i := range cs {
		c := &cs[i]
		if err := encodeArrayOf(enc, 5, uint64(c.Target), uint64(c.Result)); err != nil {
			return err
		}
		if err := enc.EncodeString(c.Key); err != nil {
			return err
		}
		if err := encodeOptBytes(enc, c.Value); err != nil {
			return err
		}
		if err := enc.EncodeUint(c.Number); err != nil {
			return err
		}
	}
	return nil
}

// encodeTxnOps writes a transaction's branch: an array of
// [Type uint, Key str, Value bin|nil, Prefix bool, Limit uint].
func encodeTxnOps(enc *msgpack.Encoder, ops []TxnOp) error {
	if err := enc.EncodeArrayLen(len(ops)); err != nil {
		return err
	}
	for i := range ops {
		op := &ops[i]
		if err := encodeArrayOf(enc, 5, uint64(op.Type)); err != nil {
			return err
		}
		if err := enc.EncodeString(op.Key); err != nil {
			return err
		}
		if err := encodeOptBytes(enc, op.Value); err != nil {
			return err
		}
		if err := enc.EncodeBool(op.Prefix); err != nil {
			return err
		}
		if err := enc.EncodeUint(uint64(op.Limit)); err != nil {
			return err
		}
	}
	return nil
}

// encodeOptBytes writes b, an empty one as nil (as the Value field).
func encodeOptBytes(enc *msgpack.Encoder, b []byte) error {
	if len(b) == 0 {
		return enc.EncodeNil()
	}
	return enc.EncodeBytes(b)
}

// decodeListLen reads the header of an array of elements of at least
// minBytes each, and checks that r holds that many bytes: a forged length
// cannot make the decoder allocate beyond the input's size.
func decodeListLen(d *msgpack.Decoder, r *bytes.Reader, minBytes int) (int, error) {
	code, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedArray(code) && code != msgpcode.Array16 && code != msgpcode.Array32 {
		return 0, fmt.Errorf("want array, got code %#x", code)
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return 0, err
	}
	if n < 0 || n > r.Len()/minBytes {
		return 0, io.ErrUnexpectedEOF
	}
	return n, nil
}

// decodeTuple reads the header of an array of exactly n elements.
func decodeTuple(d *msgpack.Decoder, r *bytes.Reader, n int) error {
	m, err := decodeListLen(d, r, 1)
	if err != nil {
		return err
	}
	if m != n {
		return fmt.Errorf("array of %d elements, want %d", m, n)
	}
	return nil
}

func decodeCompares(d *msgpack.Decoder, r *bytes.Reader) ([]Compare, error) {
	n, err := decodeListLen(d, r, 6)
	if err != nil || n == 0 {
		return nil, err
	}
	cs := make([]Compare, n)
	for i := range cs {
		c := &cs[i]
		if err := decodeTuple(d, r, 5); err != nil {
			return nil, err
		}
		t, err := decodeUint(d, math.MaxUint8)
		if err != nil {
			return nil, err
		}
		res, err := decodeUint(d, math.MaxUint8)
		if err != nil {
			return nil, err
		}
		c.Target, c.Result = CompareTarget(t), CompareResult(res)
		if c.Key, err = decodeString(d, r); err != nil {
			return nil, err
		}
		if c.Value, _, err = decodeBytes(d, r); err != nil {
			return nil, err
		}
		if c.Number, err = decodeUint(d, math.MaxUint64); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

func decodeTxnOps(d *msgpack.Decoder, r *bytes.Reader) ([]TxnOp, error) {
	n, err := decodeListLen(d, r, 6)
	if err != nil || n == 0 {
		return nil, err
	}
	ops := make([]TxnOp, n)
	for i := range ops {
		op := &ops[i]
		if err := decodeTuple(d, r, 5); err != nil {
			return nil, err
		}
		t, err := decodeUint(d, math.MaxUint8)
		if err != nil {
			return nil, err
		}
		op.Type = TxnOpType(t)
		if op.Key, err = decodeString(d, r); err != nil {
			return nil, err
		}
		if op.Value, _, err = decodeBytes(d, r); err != nil {
			return nil, err
		}
		if op.Prefix, err = decodeBool(d); err != nil {
			return nil, err
		}
		l, err := decodeUint(d, math.MaxUint32)
		if err != nil {
			return nil, err
		}
		op.Limit = uint32(l)
	}
	return ops, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// errTrailing reports bytes left over after the command's array.
var errTrailing = errors.New("trailing bytes after command")

// DecodeCommand parses a command produced by EncodeCommand. Any malformed
// input (wrong types, truncation, trailing bytes, unknown extra fields,
// out-of-range numbers) yields an error wrapping ErrInvalid; it never
// panics, and it never allocates more than len(b) bytes for strings and
// byte slices whatever lengths the input claims. Empty byte slices decode as
// nil (PrevValue keeps HasPrevValue to tell "no condition" from "empty").
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	r := bytes.NewReader(b)
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	// bytes.Reader is an io.ByteScanner, so the decoder reads r directly
	// without buffering and the helpers below may read from r themselves.
	d.Reset(r)
	if err := decodeFields(d, r, b, &c); err != nil {
		return Command{}, fmt.Errorf("%w: bad command encoding: %v", ErrInvalid, err)
	}
	if r.Len() != 0 {
		return Command{}, fmt.Errorf("%w: bad command encoding: %v", ErrInvalid, errTrailing)
	}
	return c, nil
}

// decodeFields decodes the fields of a command from r, which reads in.
func decodeFields(d *msgpack.Decoder, r *bytes.Reader, in []byte, c *Command) error {
	code, err := d.PeekCode()
	if err != nil {
		return err
	}
	if !msgpcode.IsFixedArray(code) && code != msgpcode.Array16 && code != msgpcode.Array32 {
		return fmt.Errorf("command is not an array (code %#x)", code)
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n > fieldCount {
		return fmt.Errorf("command has %d fields, at most %d known", n, fieldCount)
	}
	// The key and the value are read as slices of in and copied into
	// one allocation at the end (joinKeyValue).
	var key, value []byte
	for f := 0; f < n; f++ {
		var err error
		switch f {
		case fieldClientID:
			c.ClientID, err = decodeUint(d, math.MaxUint64)
		case fieldSeq:
			c.Seq, err = decodeUint(d, math.MaxUint64)
		case fieldAckedBelow:
			c.AckedBelow, err = decodeUint(d, math.MaxUint64)
		case fieldOp:
			var op uint64
			op, err = decodeUint(d, math.MaxUint8)
			c.Op = Op(op)
		case fieldKey:
			key, err = aliasString(d, r, in)
		case fieldValue:
			value, err = aliasBytes(d, r, in)
		case fieldPrevValue:
			c.PrevValue, c.HasPrevValue, err = decodeBytes(d, r)
		case fieldPrevRevision:
			c.PrevRevision, c.HasPrevRevision, err = decodeOptUint(d)
		case fieldPrefix:
			c.Prefix, err = decodeString(d, r)
		case fieldLimit:
			var l uint64
			l, err = decodeUint(d, math.MaxUint32)
			c.Limit = uint32(l)
		case fieldSessionID:
			c.SessionID, err = decodeUint(d, math.MaxUint64)
		case fieldTTLMs:
			c.TTLMs, err = decodeUint(d, math.MaxUint64)
		case fieldName:
			c.Name, err = decodeString(d, r)
		case fieldToken:
			c.Token, err = decodeUint(d, math.MaxUint64)
		case fieldWait:
			c.Wait, err = decodeBool(d)
		case fieldLockDelayMs:
			c.LockDelayMs, err = decodeUint(d, math.MaxUint64)
		case fieldNow:
			c.Now, err = decodeUint(d, math.MaxUint64)
		case fieldFenceName:
			c.FenceName, err = decodeString(d, r)
		case fieldFenceToken:
			c.FenceToken, err = decodeUint(d, math.MaxUint64)
		case fieldHashSlot:
			c.HashSlot, err = decodeUint(d, math.MaxUint64)
		case fieldStateHash:
			c.StateHash, err = decodeUint(d, math.MaxUint64)
		case fieldReporter:
			c.Reporter, err = decodeUint(d, math.MaxUint32)
		case fieldSource:
			c.Source, err = decodeUint(d, math.MaxUint32)
		case fieldQuota:
			c.Quota, err = decodeUint(d, math.MaxUint64)
		case fieldLevel:
			c.Level, err = decodeUint(d, math.MaxUint64)
		case fieldCompares:
			c.Compares, err = decodeCompares(d, r)
		case fieldThen:
			c.Then, err = decodeTxnOps(d, r)
		case fieldElse:
			c.Else, err = decodeTxnOps(d, r)
		case fieldUser:
			c.User, err = decodeString(d, r)
		case fieldRole:
			c.Role, err = decodeString(d, r)
		case fieldPerm:
			var p uint64
			p, err = decodeUint(d, math.MaxUint8)
			c.Perm = Perm(p)
		case fieldSessionIDs:
			c.SessionIDs, err = decodeIDList(d, r)
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", f, err)
		}
	}
	c.Key, c.Value = joinKeyValue(key, value)
	return nil
}

// decodeUint accepts only unsigned msgpack integers (a negative number is
// an error rather than a huge uint64) not above max.
func decodeUint(d *msgpack.Decoder, max uint64) (uint64, error) {
	code, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	if code > msgpcode.PosFixedNumHigh && (code < msgpcode.Uint8 || code > msgpcode.Uint64) {
		return 0, fmt.Errorf("want unsigned integer, got code %#x", code)
	}
	v, err := d.DecodeUint64()
	if err != nil {
		return 0, err
	}
	if v > max {
		return 0, fmt.Errorf("%d out of range (max %d)", v, max)
	}
	return v, nil
}

// decodeBool accepts only msgpack true and false.
func decodeBool(d *msgpack.Decoder) (bool, error) {
	code, err := d.PeekCode()
	if err != nil {
		return false, err
	}
	if code != msgpcode.True && code != msgpcode.False {
		return false, fmt.Errorf("want bool, got code %#x", code)
	}
	return d.DecodeBool()
}

// decodeOptUint decodes nil (absent) or an unsigned integer.
func decodeOptUint(d *msgpack.Decoder) (uint64, bool, error) {
	code, err := d.PeekCode()
	if err != nil {
		return 0, false, err
	}
	if code == msgpcode.Nil {
		return 0, false, d.DecodeNil()
	}
	v, err := decodeUint(d, math.MaxUint64)
	return v, err == nil, err
}

func decodeString(d *msgpack.Decoder, r *bytes.Reader) (string, error) {
	code, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(code) {
		return "", fmt.Errorf("want string, got code %#x", code)
	}
	b, err := readRaw(d, r)
	if len(b) == 0 {
		return "", err
	}
	// b is a copy of the input that nothing else holds: the string takes
	// it over rather than copying it once more.
	return unsafe.String(&b[0], len(b)), err
}

// aliasString is decodeString without the copy: the string's bytes as a
// slice of in, which r reads.
func aliasString(d *msgpack.Decoder, r *bytes.Reader, in []byte) ([]byte, error) {
	code, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsString(code) {
		return nil, fmt.Errorf("want string, got code %#x", code)
	}
	return aliasRaw(d, r, in)
}

// aliasBytes is decodeBytes without the copy, for a field that tells
// absent from empty by nothing: nil (or an empty bin) as nil, a bin's
// contents as a slice of in, which r reads.
func aliasBytes(d *msgpack.Decoder, r *bytes.Reader, in []byte) ([]byte, error) {
	code, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if code == msgpcode.Nil {
		return nil, d.DecodeNil()
	}
	if !msgpcode.IsBin(code) {
		return nil, fmt.Errorf("want bytes, got code %#x", code)
	}
	return aliasRaw(d, r, in)
}

// decodeBytes decodes nil (absent: nil, false) or a bin (present: its
// contents, nil when empty, and true).
func decodeBytes(d *msgpack.Decoder, r *bytes.Reader) ([]byte, bool, error) {
	code, err := d.PeekCode()
	if err != nil {
		return nil, false, err
	}
	if code == msgpcode.Nil {
		return nil, false, d.DecodeNil()
	}
	if !msgpcode.IsBin(code) {
		return nil, false, fmt.Errorf("want bytes, got code %#x", code)
	}
	b, err := readRaw(d, r)
	return b, err == nil, err
}

// aliasRaw is readRaw without the copy: the payload as a slice of in, the
// bytes r reads, which must outlive the slice's use.
func aliasRaw(d *msgpack.Decoder, r *bytes.Reader, in []byte) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > r.Len() {
		return nil, io.ErrUnexpectedEOF
	}
	off := len(in) - r.Len()
	if _, err := r.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return in[off : off+n : off+n], nil
}

// readRaw reads a str or bin header through d and then its payload straight
// from r, after checking that r holds that many bytes: a forged length
// cannot make us allocate more than the input's size.
func readRaw(d *msgpack.Decoder, r *bytes.Reader) ([]byte, error) {
	n, err := d.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > r.Len() {
		return nil, io.ErrUnexpectedEOF
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}
