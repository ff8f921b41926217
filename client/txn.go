package client

import (
	"context"
	"fmt"

	"github.com/paxosd/paxosd/wire"
)

// Transactions (protocol version 8, from cluster level 8), etcd's shape:
//
//	resp, err := c.Txn(ctx).
//		If(client.Compare(client.LockToken("jobs/lock"), "=", token),
//			client.Compare(client.Value("balance/a"), "=", "100")).
//		Then(client.OpPut("balance/a", []byte("90")), client.OpPut("balance/b", []byte("110"))).
//		Else(client.OpGet("balance/a")).
//		Commit()
//
// The compares are checked and one branch applied as one command: the
// writes of the branch share one store revision and reach a watcher in
// one response. A failed compare is no error: resp.Succeeded is false and
// the Else branch ran.

// CmpTarget is what a Compare reads: Value, Version, CreateRevision,
// ModRevision or Exists of a key, or LockToken of a lock.
type CmpTarget struct {
	target wire.CompareTarget
	key    string
}

// Value compares the key's value; on a missing key a value compare never
// holds.
func Value(key string) CmpTarget { return CmpTarget{wire.CompareValue, key} }

// Version compares the key's version, its puts since creation (0: missing).
func Version(key string) CmpTarget { return CmpTarget{wire.CompareVersion, key} }

// CreateRevision compares the revision that created the key (0: missing).
func CreateRevision(key string) CmpTarget { return CmpTarget{wire.CompareCreate, key} }

// ModRevision compares the revision that last changed the key (0: missing).
func ModRevision(key string) CmpTarget { return CmpTarget{wire.CompareMod, key} }

// Exists compares whether the key exists: with true or false, or 1 and 0.
func Exists(key string) CmpTarget { return CmpTarget{wire.CompareExists, key} }

// LockToken compares the fencing token of lock name while it is held (0
// while it is free): Compare(LockToken(name), "=", token) makes the
// transaction a fenced write, as Fenced does for one put.
func LockToken(name string) CmpTarget { return CmpTarget{wire.CompareToken, name} }

// Cmp is one condition of a transaction, made by Compare.
type Cmp struct {
	c   wire.Compare
	err error
}

// Compare requires target <op> v, op one of "=", "!=", "<", ">". v is a
// string or []byte for Value, a bool for Exists, an integer otherwise.
func Compare(target CmpTarget, op string, v any) Cmp {
	c := Cmp{c: wire.Compare{Target: target.target, Key: target.key}}
	switch op {
	case "=", "==":
		c.c.Result = wire.CompareEqual
	case "!=":
		c.c.Result = wire.CompareNotEqual
	case "<":
		c.c.Result = wire.CompareLess
	case ">":
		c.c.Result = wire.CompareGreater
	default:
		c.err = fmt.Errorf("%w: compare operator %q: want =, !=, < or >", ErrInvalid, op)
		return c
	}
	if target.target == wire.CompareValue {
		switch x := v.(type) {
		case string:
			c.c.Value = []byte(x)
		case []byte:
			c.c.Value = x
		default:
			c.err = fmt.Errorf("%w: a value compare of %q takes a string or []byte, not %T", ErrInvalid, target.key, v)
		}
		return c
	}
	switch x := v.(type) {
	case bool:
		if target.target != wire.CompareExists {
			c.err = fmt.Errorf("%w: only an Exists compare takes a bool", ErrInvalid)
		}
		if x {
			c.c.Number = 1
		}
	case int:
		c.c.Number, c.err = nonNegative(int64(x))
	case int64:
		c.c.Number, c.err = nonNegative(x)
	case uint64:
		c.c.Number = x
	case uint32:
		c.c.Number = uint64(x)
	case uint:
		c.c.Number = uint64(x)
	default:
		c.err = fmt.Errorf("%w: a compare of %q takes a number, not %T", ErrInvalid, target.key, v)
	}
	return c
}

func nonNegative(x int64) (uint64, error) {
	if x < 0 {
		return 0, fmt.Errorf("%w: a negative number in a compare", ErrInvalid)
	}
	return uint64(x), nil
}

// Op is one operation of a transaction's branch.
type Op struct{ op wire.TxnOp }

// OpPut sets key to value.
func OpPut(key string, value []byte) Op {
	return Op{wire.TxnOp{Type: wire.TxnPut, Key: key, Value: value}}
}

// OpDelete deletes key; a missing key is no error (its result's Deleted
// is 0).
func OpDelete(key string) Op { return Op{wire.TxnOp{Type: wire.TxnDelete, Key: key}} }

// OpDeletePrefix deletes every key starting with prefix (not empty); its
// result's Deleted counts them.
func OpDeletePrefix(prefix string) Op {
	return Op{wire.TxnOp{Type: wire.TxnDelete, Key: prefix, Prefix: true}}
}

// OpGet reads key: its result's Found and KV.
func OpGet(key string) Op { return Op{wire.TxnOp{Type: wire.TxnGet, Key: key}} }

// OpList reads the keys starting with prefix, at most limit of them (0:
// all): its result's KVs, and More when the limit cut it short.
func OpList(prefix string, limit int) Op {
	return Op{wire.TxnOp{Type: wire.TxnGet, Key: prefix, Prefix: true, Limit: uint32(max(0, limit))}}
}

// TxnResult is the result of one operation (wire.TxnResult): Type; for a
// put, Found and KV the previous pair; for a delete, Deleted the keys
// removed (and for one key Found and KV the pair deleted); for a get,
// Found and KV; for a list, KVs and More.
type TxnResult = wire.TxnResult

// TxnResponse is a committed transaction's answer.
type TxnResponse struct {
	// Succeeded: every compare held and the Then branch ran; else the
	// Else branch did.
	Succeeded bool
	// Revision is the store revision after the transaction: its writes'
	// revision, if it wrote.
	Revision uint64
	// Results holds one result per operation of the branch that ran.
	Results []TxnResult
}

// Txn is a transaction being built; Commit sends it.
type Txn struct {
	c   *Client
	ctx context.Context
	q   wire.Request
	err error
}

// Txn starts a transaction.
func (c *Client) Txn(ctx context.Context) *Txn {
	return &Txn{c: c, ctx: ctx, q: wire.Request{Op: wire.OpTxn}}
}

// If adds compares: the Then branch runs only if every one holds.
func (t *Txn) If(cs ...Cmp) *Txn {
	for _, c := range cs {
		if c.err != nil && t.err == nil {
			t.err = c.err
		}
		t.q.Compares = append(t.q.Compares, c.c)
	}
	return t
}

// Then adds operations to the branch run when the compares hold.
func (t *Txn) Then(ops ...Op) *Txn {
	for _, o := range ops {
		t.q.ThenOps = append(t.q.ThenOps, o.op)
	}
	return t
}

// Else adds operations to the branch run when a compare does not hold.
func (t *Txn) Else(ops ...Op) *Txn {
	for _, o := range ops {
		t.q.ElseOps = append(t.q.ElseOps, o.op)
	}
	return t
}

// Commit sends the transaction and waits for its answer. Like every
// write it is retried with the same sequence number until answered, and
// applied once. Errors: ErrInvalid (a malformed transaction, or a cluster
// below level 8), ErrTooLarge (more than 128 compares and operations, or
// keys and values beyond the value limit), ErrQuotaExceeded (the branch
// would grow the store past the quota: nothing was written),
// ErrUnsupported (the node speaks a protocol older than 8).
func (t *Txn) Commit() (*TxnResponse, error) {
	if t.err != nil {
		return nil, t.err
	}
	q := t.q // a Txn may be committed again: as a new request
	resp, err := t.c.do(t.ctx, &q)
	if err != nil {
		return nil, err
	}
	if err := responseError(resp); err != nil {
		return nil, err
	}
	return &TxnResponse{Succeeded: resp.Succeeded, Revision: resp.Revision, Results: resp.TxnResults}, nil
}
