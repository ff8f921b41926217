package statemachine

import (
	"bytes"
	"fmt"
	"strings"
)

// Transactions (OpTxn, from LevelTxn on): etcd's shape. A transaction
// holds compares and two lists of operations; when every compare holds
// (none: always) the Then list runs, else the Else list, as one command
// applied in one slot. All writes of the list that runs share one store
// revision, the one after the command's: a watcher sees them as events of
// that revision, delivered in one response (history.go, KVEvents), and a
// Get of any of the keys afterwards shows that ModRevision.
//
// Operations run in order and see the writes before them (a Get after a
// Put of the same key returns the new pair). What a branch may write is
// restricted so that its outcome does not depend on that order beyond
// reads: a key is written at most once, and a prefix delete's range holds
// no other write of the branch (validateTxn). The quota is checked for the
// branch as a whole before it runs: a branch that would grow the keys'
// bytes past the quota writes nothing and fails with ErrQuotaExceeded.

// CompareTarget says what a Compare reads. The numbers are shared with
// package wire and part of the log format: never reuse or renumber one.
type CompareTarget uint8

const (
	// CompareValue compares the key's value (bytes, lexicographically).
	// On a missing key it never holds, whatever the result asked (etcd).
	CompareValue CompareTarget = 1
	// CompareVersion compares the key's version: its puts since it was
	// created, 0 for a missing key.
	CompareVersion CompareTarget = 2
	// CompareCreate compares the key's create revision, 0 when missing.
	CompareCreate CompareTarget = 3
	// CompareMod compares the key's mod revision, 0 when missing.
	CompareMod CompareTarget = 4
	// CompareExists compares 1 if the key exists, 0 if not.
	CompareExists CompareTarget = 5
	// CompareToken compares the current fencing token of lock Key: the
	// token of its grant while it is held, 0 while it is free. A compare
	// token == T holds exactly when a fenced write with T would pass.
	CompareToken CompareTarget = 6
)

// CompareResult is the relation a Compare requires between what it reads
// and its operand (read <op> operand).
type CompareResult uint8

const (
	CompareEqual    CompareResult = 1
	CompareNotEqual CompareResult = 2
	CompareLess     CompareResult = 3
	CompareGreater  CompareResult = 4
)

// Compare is one condition of a transaction.
type Compare struct {
	Target CompareTarget
	Result CompareResult
	// Key is the key read, or the lock's name for CompareToken.
	Key string
	// Value is the operand of CompareValue; Number that of every other
	// target.
	Value  []byte
	Number uint64
}

// TxnOpType is the kind of a transaction operation. Shared with package
// wire; never reuse or renumber one.
type TxnOpType uint8

const (
	// TxnPut sets Key to Value.
	TxnPut TxnOpType = 1
	// TxnDelete deletes Key, or with Prefix every key starting with Key
	// (a delete-range).
	TxnDelete TxnOpType = 2
	// TxnGet reads Key, or with Prefix lists the keys starting with Key
	// (at most Limit of them, 0 = all).
	TxnGet TxnOpType = 3
)

// TxnOp is one operation of a transaction's branch.
type TxnOp struct {
	Type   TxnOpType
	Key    string
	Value  []byte
	Prefix bool
	Limit  uint32
}

// TxnOpResult is the result of one operation of the branch that ran.
type TxnOpResult struct {
	Type TxnOpType
	// Found says whether KV holds a pair: a put's previous pair, a
	// single-key delete's deleted pair, a get's pair.
	Found bool
	KV    KV
	// KVs and More: a prefix get's keys in key order, and whether its
	// Limit cut it short.
	KVs  []KV
	More bool
	// Deleted counts the keys a delete removed (0 or 1 for one key).
	Deleted uint64
}

// Limits of a transaction, part of the state machine's definition.
const (
	// TxnOpsMax bounds the compares and operations of both branches
	// together (etcd's default --max-txn-ops).
	TxnOpsMax = 128
)

// TxnBytes is what a transaction's bytes limit counts: the keys and values
// of its compares and operations.
func TxnBytes(c *Command) int {
	n := 0
	for i := range c.Compares {
		n += len(c.Compares[i].Key) + len(c.Compares[i].Value)
	}
	for _, ops := range [2][]TxnOp{c.Then, c.Else} {
		for i := range ops {
			n += len(ops[i].Key) + len(ops[i].Value)
		}
	}
	return n
}

// validateTxn checks a transaction's limits and shape (see ValidateTxn),
// and that the cluster level has transactions.
func (sm *StateMachine) validateTxn(c *Command) error {
	if sm.level < LevelTxn {
		return fmt.Errorf("%w: transactions need cluster level %d (every member at protocol %d or newer); the cluster is at level %d",
			ErrInvalid, LevelTxn, LevelTxn, sm.level)
	}
	return ValidateTxn(c, sm.opts.KeyBytesMax, sm.opts.ValueBytesMax)
}

// ValidateTxn checks a transaction against the limits: at most TxnOpsMax
// compares and operations, keys of at most keyMax bytes, at most valueMax
// bytes of keys and values in all; well-formed compares and operations;
// and in each branch no key written twice and no prefix delete whose range
// holds another write of the branch. The node runs it on a request, with
// its own value limit, before proposing it.
func ValidateTxn(c *Command, keyMax, valueMax int) error {
	if n := len(c.Compares) + len(c.Then) + len(c.Else); n > TxnOpsMax {
		return fmt.Errorf("%w: %w: transaction of %d compares and operations, limit %d", ErrInvalid, ErrTooLarge, n, TxnOpsMax)
	}
	if n := TxnBytes(c); n > valueMax {
		return fmt.Errorf("%w: %w: transaction keys and values total %d bytes, limit %d", ErrInvalid, ErrTooLarge, n, valueMax)
	}
	for i := range c.Compares {
		if err := validateCompare(&c.Compares[i], keyMax); err != nil {
			return fmt.Errorf("compare %d: %w", i+1, err)
		}
	}
	for _, b := range [...]struct {
		name string
		ops  []TxnOp
	}{{"then", c.Then}, {"else", c.Else}} {
		for i := range b.ops {
			if err := validateTxnOp(&b.ops[i], keyMax); err != nil {
				return fmt.Errorf("%s op %d: %w", b.name, i+1, err)
			}
		}
		if err := txnWritesOverlap(b.ops); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, b.name, err)
		}
	}
	return nil
}

func validateCompare(cmp *Compare, keyMax int) error {
	if cmp.Target < CompareValue || cmp.Target > CompareToken {
		return fmt.Errorf("%w: unknown compare target %d", ErrInvalid, cmp.Target)
	}
	if cmp.Result < CompareEqual || cmp.Result > CompareGreater {
		return fmt.Errorf("%w: unknown compare result %d", ErrInvalid, cmp.Result)
	}
	if cmp.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(cmp.Key) > keyMax {
		return fmt.Errorf("%w: %w: key is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(cmp.Key), keyMax)
	}
	if cmp.Target == CompareValue && cmp.Number != 0 || cmp.Target != CompareValue && len(cmp.Value) != 0 {
		return fmt.Errorf("%w: a value compare takes a value, the others a number", ErrInvalid)
	}
	return nil
}

func validateTxnOp(op *TxnOp, keyMax int) error {
	switch op.Type {
	case TxnPut, TxnDelete, TxnGet:
	default:
		return fmt.Errorf("%w: unknown operation type %d", ErrInvalid, op.Type)
	}
	switch {
	case op.Key == "" && !(op.Type == TxnGet && op.Prefix):
		if op.Type == TxnDelete && op.Prefix {
			return fmt.Errorf("%w: a prefix delete of every key: give a non-empty prefix", ErrInvalid)
		}
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(op.Key) > keyMax:
		return fmt.Errorf("%w: %w: key is %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(op.Key), keyMax)
	case op.Type != TxnPut && len(op.Value) != 0:
		return fmt.Errorf("%w: only a put takes a value", ErrInvalid)
	case op.Type == TxnPut && op.Prefix:
		return fmt.Errorf("%w: a put takes one key, not a prefix", ErrInvalid)
	case op.Limit != 0 && !(op.Type == TxnGet && op.Prefix):
		return fmt.Errorf("%w: only a prefix get takes a limit", ErrInvalid)
	}
	return nil
}

// txnWritesOverlap reports two writes of one branch that touch the same
// key: a key put or deleted twice, or a prefix delete whose range holds
// another write's key or range.
func txnWritesOverlap(ops []TxnOp) error {
	for i := range ops {
		a := &ops[i]
		if a.Type == TxnGet {
			continue
		}
		for j := i + 1; j < len(ops); j++ {
			b := &ops[j]
			if b.Type == TxnGet {
				continue
			}
			switch {
			case !a.Prefix && !b.Prefix:
				if a.Key == b.Key {
					return fmt.Errorf("key %q written twice in one transaction (ops %d and %d)", a.Key, i+1, j+1)
				}
			case a.Prefix && b.Prefix:
				if strings.HasPrefix(a.Key, b.Key) || strings.HasPrefix(b.Key, a.Key) {
					return fmt.Errorf("prefix deletes %q and %q overlap (ops %d and %d)", a.Key, b.Key, i+1, j+1)
				}
			default:
				p, k := a, b
				if b.Prefix {
					p, k = b, a
				}
				if strings.HasPrefix(k.Key, p.Key) {
					return fmt.Errorf("%s of %q overlaps the prefix delete of %q (ops %d and %d)", k.Type, k.Key, p.Key, i+1, j+1)
				}
			}
		}
	}
	return nil
}

func (t TxnOpType) String() string {
	switch t {
	case TxnPut:
		return "put"
	case TxnDelete:
		return "delete"
	case TxnGet:
		return "get"
	}
	return fmt.Sprintf("txn-op(%d)", uint8(t))
}

// execTxn runs a valid transaction.
func (sm *StateMachine) execTxn(c *Command) Result {
	s := &sm.kv
	ok := true
	for i := range c.Compares {
		if !sm.compareHolds(&c.Compares[i]) {
			ok = false
			break
		}
	}
	ops := c.Then
	if !ok {
		ops = c.Else
	}
	if err := sm.txnQuotaCheck(ops); err != nil {
		return Result{Err: err, Revision: s.rev}
	}
	rev := s.rev + 1 // every write of the branch gets this revision
	wrote := false
	sm.kvHist.beginRevision()
	defer sm.kvHist.endRevision()
	var res []TxnOpResult // none for an empty branch, as a restored result has
	if len(ops) > 0 {
		res = make([]TxnOpResult, len(ops))
	}
	for i := range ops {
		op := &ops[i]
		r := &res[i]
		r.Type = op.Type
		switch {
		case op.Type == TxnPut:
			kv, prev, found := s.putAt(op.Key, op.Value, rev)
			sm.quotaPut(op.Key, op.Value, prev, found)
			sm.bound.unbind(op.Key) // a transaction's put carries no session (ephemeral.go)
			sm.kvHist.add(KVEvent{Revision: rev, Type: EventPut, KV: kv, PrevKV: prev})
			r.Found, r.KV = found, prev
			wrote = true
		case op.Type == TxnDelete && !op.Prefix:
			if prev, found := s.delAt(op.Key); found {
				sm.txnDeleted(prev, rev)
				r.Found, r.KV, r.Deleted = true, prev, 1
				wrote = true
			}
		case op.Type == TxnDelete:
			var keys []string
			s.ascendFrom(op.Key, func(kv KV) bool {
				if !strings.HasPrefix(kv.Key, op.Key) {
					return false
				}
				keys = append(keys, kv.Key)
				return true
			})
			for _, k := range keys {
				prev, _ := s.delAt(k)
				sm.txnDeleted(prev, rev)
			}
			r.Deleted = uint64(len(keys))
			wrote = wrote || len(keys) > 0
		case !op.Prefix:
			r.KV, r.Found = s.get(op.Key)
		default:
			r.KVs, r.More = s.list(op.Key, int(op.Limit))
		}
	}
	if wrote {
		s.rev = rev
	}
	return Result{Revision: s.rev, Succeeded: ok, Txn: res}
}

// txnDeleted accounts for a key a transaction deleted at rev.
func (sm *StateMachine) txnDeleted(prev KV, rev uint64) {
	sm.quotaDel(prev)
	sm.bound.unbind(prev.Key)
	sm.kvHist.add(KVEvent{Revision: rev, Type: EventDelete, KV: KV{Key: prev.Key, ModRevision: rev}, PrevKV: prev})
}

// compareHolds evaluates one compare on the current state.
func (sm *StateMachine) compareHolds(cmp *Compare) bool {
	var have uint64
	if cmp.Target == CompareToken {
		if l := sm.locks.m[cmp.Key]; l != nil && l.holder != 0 {
			have = l.token
		}
		return compareResult(cmpUint(have, cmp.Number), cmp.Result)
	}
	kv, found := sm.kv.get(cmp.Key)
	switch cmp.Target {
	case CompareValue:
		if !found {
			return false
		}
		return compareResult(bytes.Compare(kv.Value, cmp.Value), cmp.Result)
	case CompareVersion:
		have = kv.Version
	case CompareCreate:
		have = kv.CreateRevision
	case CompareMod:
		have = kv.ModRevision
	case CompareExists:
		if found {
			have = 1
		}
	}
	return compareResult(cmpUint(have, cmp.Number), cmp.Result)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareResult(c int, r CompareResult) bool {
	switch r {
	case CompareEqual:
		return c == 0
	case CompareNotEqual:
		return c != 0
	case CompareLess:
		return c < 0
	case CompareGreater:
		return c > 0
	}
	return false
}

// txnQuotaCheck refuses a branch whose writes together would grow the
// keys' bytes past a set quota, with quotaCheck's rule and line. The
// writes of a branch touch distinct keys (txnWritesOverlap), so their
// effects add up whatever their order.
func (sm *StateMachine) txnQuotaCheck(ops []TxnOp) error {
	q := &sm.quota
	if !q.set {
		return nil
	}
	var grow, shrink uint64
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Type == TxnPut:
			grow += kvBytes(op.Key, op.Value)
			if cur, found := sm.kv.get(op.Key); found {
				shrink += kvBytes(cur.Key, cur.Value)
			}
		case op.Type == TxnDelete && !op.Prefix:
			if cur, found := sm.kv.get(op.Key); found {
				shrink += kvBytes(cur.Key, cur.Value)
			}
		case op.Type == TxnDelete:
			sm.kv.ascendFrom(op.Key, func(kv KV) bool {
				if !strings.HasPrefix(kv.Key, op.Key) {
					return false
				}
				shrink += kvBytes(kv.Key, kv.Value)
				return true
			})
		}
	}
	after := q.used + grow - shrink // shrink counts live keys: <= used
	if after <= q.used || after <= q.limit {
		return nil
	}
	return fmt.Errorf("%w: %s of %s used; delete keys or raise it with paxosd quota set",
		ErrQuotaExceeded, FormatBytes(q.used), FormatBytes(q.limit))
}
