package service

import (
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Transactions (wire.OpTxn, statemachine/txn.go). A transaction is one
// command through the log like any write; the state machine refuses it
// below cluster level 8 (statemachine.LevelTxn), which a leader raises
// once every member speaks protocol 8, so a mixed cluster never applies
// one on some members only. The node checks the limits first, with its
// own value limit, so a refused transaction costs no slot.

// validateTxn checks an OpTxn's limits and shape; nil if it may go on.
func (n *Node) validateTxn(q *wire.Request) *wire.Response {
	c := statemachine.Command{Op: statemachine.OpTxn, Compares: txnCompares(q.Compares), Then: txnOps(q.ThenOps), Else: txnOps(q.ElseOps)}
	err := statemachine.ValidateTxn(&c, defaultKeyBytesMax, n.cfg.ValueBytesMax)
	if err == nil {
		return nil
	}
	resp := resultResponse(statemachine.OpTxn, statemachine.Result{Err: err})
	if statemachine.TxnBytes(&c) > n.cfg.ValueBytesMax {
		resp.ErrMsg += " (--value-bytes-max)"
	}
	return &resp
}

// txnCompares and txnOps convert a request's transaction to the
// command's; the numbers of targets, results and types are the same in
// both packages (TestTxnNumbers).
func txnCompares(cs []wire.Compare) []statemachine.Compare {
	if len(cs) == 0 {
		return nil
	}
	out := make([]statemachine.Compare, len(cs))
	for i, c := range cs {
		out[i] = statemachine.Compare{Target: statemachine.CompareTarget(c.Target), Result: statemachine.CompareResult(c.Result),
			Key: c.Key, Value: c.Value, Number: c.Number}
	}
	return out
}

func txnOps(ops []wire.TxnOp) []statemachine.TxnOp {
	if len(ops) == 0 {
		return nil
	}
	out := make([]statemachine.TxnOp, len(ops))
	for i, o := range ops {
		out[i] = statemachine.TxnOp{Type: statemachine.TxnOpType(o.Type), Key: o.Key, Value: o.Value, Prefix: o.Prefix, Limit: o.Limit}
	}
	return out
}

// wireTxnResults converts a transaction's results; none is nil.
func wireTxnResults(rs []statemachine.TxnOpResult) []wire.TxnResult {
	if len(rs) == 0 {
		return nil
	}
	out := make([]wire.TxnResult, len(rs))
	for i, r := range rs {
		out[i] = wire.TxnResult{Type: wire.TxnOpType(r.Type), Found: r.Found, KV: wireKV(r.KV), KVs: wireKVs(r.KVs), More: r.More, Deleted: r.Deleted}
	}
	return out
}
