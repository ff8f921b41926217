package service

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/paxosd/paxosd/paxos"
)

var (
	// ErrNotFound: get or delete of a key that does not exist (Found is
	// false). List never returns it; an empty list is not an error.
	ErrNotFound = errors.New("service: key not found")
	// ErrInvalid: the command is malformed or breaks a limit; it changed
	// nothing. The wrapped message says what is wrong.
	ErrInvalid = errors.New("service: invalid argument")
	// ErrTooLarge: a key or value exceeds its limit. It is always returned
	// together with ErrInvalid (errors.Is matches both).
	ErrTooLarge = errors.New("service: too large")
	// ErrStaleRequest: the command's Seq is below its client's floor, so its
	// answer (if it was ever applied) has been forgotten. The command was
	// not applied now; whether an earlier copy of it was is unknown.
	ErrStaleRequest = errors.New("service: stale request: its answer was already forgotten")
)

// Result is the answer to one command.
//
// A failed compare-and-set is not an error: it is Err == nil with
// Succeeded == false (as in etcd), and KV holds the key's current state so
// the caller can see why.
type Result struct {
	Err      error  // nil, or wraps ErrNotFound, ErrInvalid or ErrStaleRequest
	Revision uint64 // the store revision after the command
	// Found says whether KV holds a key: for get the key read, for put and
	// delete the previous KV, for cas the KV before the command.
	Found     bool
	KV        KV
	KVs       []KV // list: the matching keys, sorted by key
	More      bool // list: more keys matched than Limit allowed
	Succeeded bool // cas: the condition held and the value was written
}

// SMOptions configures a StateMachine. The zero value is valid: each zero
// field takes the default its comment states. Every replica must use the
// same options, since they decide which commands are rejected.
type SMOptions struct {
	// KeyBytesMax bounds key and prefix length. Default 4096.
	KeyBytesMax int
	// ValueBytesMax bounds value length. Default 1 MiB.
	ValueBytesMax int
	// ClientsMax bounds the clients in the duplicate-detection table.
	// Default 100000.
	ClientsMax int
	// ResultsPerClientMax bounds the results kept for one client that does
	// not acknowledge them (AckedBelow). Default 1024.
	ResultsPerClientMax int
}

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *SMOptions) EnsureDefaults() {
	if o.KeyBytesMax == 0 {
		o.KeyBytesMax = 4096
	}
	if o.ValueBytesMax == 0 {
		o.ValueBytesMax = 1 << 20
	}
	if o.ClientsMax == 0 {
		o.ClientsMax = 100000
	}
	if o.ResultsPerClientMax == 0 {
		o.ResultsPerClientMax = 1024
	}
}

// Validate reports options that EnsureDefaults cannot fix.
func (o *SMOptions) Validate() error {
	if o.KeyBytesMax < 0 || o.ValueBytesMax < 0 || o.ClientsMax < 0 || o.ResultsPerClientMax < 0 {
		return fmt.Errorf("%w: negative state machine limit in %+v", ErrInvalid, *o)
	}
	return nil
}

// StateMachine is the replicated key-value state: the store and the
// duplicate-detection table. It is deterministic (see the package comment)
// and not safe for concurrent use; the node loop owns it.
//
// Invariant: every command applied so far came with a slot <= applied.
type StateMachine struct {
	opts    SMOptions
	applied paxos.Slot
	kv      kvStore
	dedup   dedupTable
}

// NewStateMachine returns an empty state machine. It panics if opts fail
// Validate, a programming error.
func NewStateMachine(opts SMOptions) *StateMachine {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	return &StateMachine{
		opts:  opts,
		kv:    newKVStore(),
		dedup: newDedupTable(opts.ClientsMax, opts.ResultsPerClientMax),
	}
}

// Applied returns the slot of the last command or value applied.
func (sm *StateMachine) Applied() paxos.Slot { return sm.applied }

// Revision returns the store revision: the number of changes made so far.
func (sm *StateMachine) Revision() uint64 { return sm.kv.rev }

// Get reads key locally (a serializable read). The returned Value is shared
// with the state machine and must not be modified.
func (sm *StateMachine) Get(key string) (KV, bool) { return sm.kv.get(key) }

// List reads locally the keys that start with prefix, sorted, at most limit
// of them (limit <= 0: all). The Values are shared and must not be modified.
func (sm *StateMachine) List(prefix string, limit int) []KV {
	kvs, _ := sm.kv.list(prefix, limit)
	return kvs
}

// ApplyValue applies the chosen value of slot: each command of a batch in
// order, or nothing for any other kind such as a no-op (which still
// advances Applied). It returns one Result per command.
func (sm *StateMachine) ApplyValue(slot paxos.Slot, v paxos.Value) []Result {
	sm.advance(slot)
	if v.Kind != paxos.ValueBatch {
		return nil
	}
	res := make([]Result, len(v.Cmds))
	for i, cmd := range v.Cmds {
		res[i] = sm.Apply(slot, cmd)
	}
	return res
}

// Apply decodes and applies one command chosen in slot. Slots must not
// decrease (the commands of one slot share it); a smaller slot panics, since
// it means the caller broke slot order. Apply never panics on a command's
// contents: a malformed command yields ErrInvalid and changes nothing but
// Applied.
//
// The Result's KV and KVs share Values with the state machine; the caller
// must not modify them.
func (sm *StateMachine) Apply(slot paxos.Slot, cmd []byte) Result {
	sm.advance(slot)
	c, err := DecodeCommand(cmd)
	if err != nil {
		return Result{Err: err, Revision: sm.kv.rev}
	}
	return sm.apply(slot, &c)
}

// ApplyCommand applies an already decoded command chosen in slot; it is
// Apply for a caller that decoded the command itself (the node does, to
// find the client waiting for it).
func (sm *StateMachine) ApplyCommand(slot paxos.Slot, c *Command) Result {
	sm.advance(slot)
	return sm.apply(slot, c)
}

func (sm *StateMachine) advance(slot paxos.Slot) {
	if slot < sm.applied {
		panic(fmt.Sprintf("service: apply of slot %d after slot %d", slot, sm.applied))
	}
	sm.applied = slot
}

// apply runs a decoded command through validation, duplicate detection and
// the store.
func (sm *StateMachine) apply(slot paxos.Slot, c *Command) Result {
	if err := sm.validate(c); err != nil {
		return Result{Err: err, Revision: sm.kv.rev}
	}
	if c.ClientID == 0 {
		return sm.exec(c)
	}
	if !c.Op.mutating() {
		// Reads are never stored nor refused: running one again is
		// harmless. They still count as activity and carry AckedBelow.
		if e := sm.dedup.touch(c.ClientID, slot, false); e != nil {
			e.raiseFloor(c.AckedBelow)
		}
		return sm.exec(c)
	}
	e := sm.dedup.touch(c.ClientID, slot, true)
	e.raiseFloor(c.AckedBelow) // AckedBelow <= Seq: c's own result survives
	if c.Seq < e.floor {
		return Result{Err: ErrStaleRequest, Revision: sm.kv.rev}
	}
	if r, ok := e.result(c.Seq); ok {
		return r
	}
	r := sm.exec(c)
	e.store(c.Seq, r, sm.opts.ResultsPerClientMax)
	return r
}

func (sm *StateMachine) validate(c *Command) error {
	if !c.Op.valid() {
		return fmt.Errorf("%w: unknown op %d", ErrInvalid, uint8(c.Op))
	}
	if c.ClientID != 0 && c.AckedBelow > c.Seq {
		return fmt.Errorf("%w: acked-below %d above seq %d", ErrInvalid, c.AckedBelow, c.Seq)
	}
	if c.Op == OpList {
		if len(c.Prefix) > sm.opts.KeyBytesMax {
			return fmt.Errorf("%w: %w: prefix is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Prefix), sm.opts.KeyBytesMax)
		}
		return nil
	}
	if c.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(c.Key) > sm.opts.KeyBytesMax {
		return fmt.Errorf("%w: %w: key is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Key), sm.opts.KeyBytesMax)
	}
	if c.Op != OpPut && c.Op != OpCAS {
		return nil
	}
	if len(c.Value) > sm.opts.ValueBytesMax {
		return fmt.Errorf("%w: %w: value is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.Value), sm.opts.ValueBytesMax)
	}
	if c.Op == OpCAS {
		if !c.HasPrevValue && !c.HasPrevRevision {
			return fmt.Errorf("%w: cas without a condition (prev value or prev revision)", ErrInvalid)
		}
		if len(c.PrevValue) > sm.opts.ValueBytesMax {
			return fmt.Errorf("%w: %w: prev value is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(c.PrevValue), sm.opts.ValueBytesMax)
		}
	}
	return nil
}

// exec runs a valid command against the store.
func (sm *StateMachine) exec(c *Command) Result {
	s := &sm.kv
	switch c.Op {
	case OpPut:
		prev, found := s.put(c.Key, c.Value)
		return Result{Revision: s.rev, Found: found, KV: prev}
	case OpGet:
		kv, found := s.get(c.Key)
		if !found {
			return Result{Err: ErrNotFound, Revision: s.rev}
		}
		return Result{Revision: s.rev, Found: true, KV: kv}
	case OpDelete:
		prev, found := s.del(c.Key)
		if !found {
			return Result{Err: ErrNotFound, Revision: s.rev}
		}
		return Result{Revision: s.rev, Found: true, KV: prev}
	case OpCAS:
		cur, found, ok := s.casHolds(c)
		if ok {
			s.put(c.Key, c.Value)
		}
		return Result{Revision: s.rev, Found: found, KV: cur, Succeeded: ok}
	case OpList:
		kvs, more := s.list(c.Prefix, int(c.Limit))
		return Result{Revision: s.rev, KVs: kvs, More: more}
	}
	panic(fmt.Sprintf("service: exec of unvalidated op %d", c.Op))
}

// Hash returns a digest of the whole replicated state: applied slot, store
// revision, every key with its value and revisions, and the
// duplicate-detection table with its stored results. Replicas that applied
// the same commands have the same Hash. It walks everything: for tests and
// checks, not for hot paths.
func (sm *StateMachine) Hash() uint64 {
	h := hasher{h: fnv.New64a()}
	h.u64(uint64(sm.applied))
	h.u64(sm.kv.rev)
	h.u64(uint64(sm.kv.index.n))
	sm.kv.index.ascend("", func(key string) bool {
		h.kv(sm.kv.m[key])
		return true
	})
	ids := sm.dedup.sortedIDs()
	h.u64(uint64(len(ids)))
	for _, id := range ids {
		e := sm.dedup.clients[id]
		h.u64(e.id)
		h.u64(e.floor)
		h.u64(uint64(e.lastSlot))
		h.u64(uint64(len(e.results)))
		for _, sr := range e.results {
			h.u64(sr.seq)
			h.result(&sr.res)
		}
	}
	return h.h.Sum64()
}

// hasher feeds length-prefixed fields to a hash, so that different states
// cannot produce the same byte stream.
type hasher struct {
	h   hash.Hash64
	buf [8]byte
}

func (h *hasher) u64(v uint64) {
	binary.BigEndian.PutUint64(h.buf[:], v)
	h.h.Write(h.buf[:])
}

func (h *hasher) bytes(b []byte) {
	h.u64(uint64(len(b)))
	h.h.Write(b)
}

func (h *hasher) str(s string) {
	h.u64(uint64(len(s)))
	h.h.Write([]byte(s))
}

func (h *hasher) bool(b bool) {
	if b {
		h.u64(1)
	} else {
		h.u64(0)
	}
}

func (h *hasher) kv(kv KV) {
	h.str(kv.Key)
	h.bytes(kv.Value)
	h.u64(kv.CreateRevision)
	h.u64(kv.ModRevision)
	h.u64(kv.Version)
}

func (h *hasher) result(r *Result) {
	if r.Err == nil {
		h.str("")
	} else {
		h.str(r.Err.Error())
	}
	h.u64(r.Revision)
	h.bool(r.Found)
	h.kv(r.KV)
	h.u64(uint64(len(r.KVs)))
	for _, kv := range r.KVs {
		h.kv(kv)
	}
	h.bool(r.More)
	h.bool(r.Succeeded)
}
