package service

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Transfers between accounts, the transactions of the simulation: a lock
// client (one that speaks protocol 8), while it holds a lock, moves money
// from one account to another with two transactions — one reading both
// balances, one writing both only if the lock's fencing token still holds
// and neither account changed since the read (mod revision compares). The
// checker requires after every slot, on every replica (their states are
// equal by hash), that the accounts add up to the same total: a transfer
// applied in part, twice, or by a stale holder breaks it. The accounts
// live under "k", so the watch of "k" sees their changes and checks that
// each transaction's revision arrives whole in one response.
//
// The porcupine model of the KV history (internal/linearize) knows single
// keys only, so transactions are not in it: atomicity is checked through
// this invariant instead, and the KV ops on k0..k3 it checks never touch
// an account.

const (
	simAccounts     = 4
	simAccountStart = 100
)

func simAccount(i int) string { return fmt.Sprintf("kacct/%d", i) }

// balance reads an account from a get's result: a missing account holds
// simAccountStart (none is created before its first transfer).
func balance(r wire.TxnResult) (int, uint64, bool) {
	if !r.Found {
		return simAccountStart, 0, true
	}
	n, err := strconv.Atoi(string(r.KV.Value))
	return n, r.KV.ModRevision, err == nil
}

// levelRefusal reports an answer that refuses a transaction because the
// cluster is not at level 8 yet (the simulation starts at level 0).
func levelRefusal(r *wire.Response) bool {
	return r.Err == wire.ErrInvalid && strings.Contains(r.ErrMsg, "transactions need cluster level")
}

// transfer moves a random amount between two random accounts under lock
// name's token.
func (c *simClient) transfer(name string, token uint64) {
	s := c.s
	from := s.rng.Intn(simAccounts)
	to := (from + 1 + s.rng.Intn(simAccounts-1)) % simAccounts
	a, b := simAccount(from), simAccount(to)
	amount := 1 + s.rng.Intn(40)
	read := &wire.Request{Op: wire.OpTxn, ThenOps: []wire.TxnOp{{Type: wire.TxnGet, Key: a}, {Type: wire.TxnGet, Key: b}}}
	c.main.do(read, opGiveUp, func(r *wire.Response) {
		switch {
		case r == nil || levelRefusal(r):
			return
		case r.Err != wire.ErrNone || !r.Succeeded || len(r.TxnResults) != 2:
			s.failf("transfer: reading %s and %s: %s %s, %d results", a, b, r.Err, r.ErrMsg, len(r.TxnResults))
			return
		}
		va, ma, okA := balance(r.TxnResults[0])
		vb, mb, okB := balance(r.TxnResults[1])
		if !okA || !okB {
			s.failf("transfer: %s or %s holds a value that is not a balance: %+v", a, b, r.TxnResults)
			return
		}
		if va < amount {
			return
		}
		w := &wire.Request{Op: wire.OpTxn,
			Compares: []wire.Compare{
				{Target: wire.CompareToken, Result: wire.CompareEqual, Key: name, Number: token},
				{Target: wire.CompareMod, Result: wire.CompareEqual, Key: a, Number: ma},
				{Target: wire.CompareMod, Result: wire.CompareEqual, Key: b, Number: mb},
			},
			ThenOps: []wire.TxnOp{
				{Type: wire.TxnPut, Key: a, Value: []byte(strconv.Itoa(va - amount))},
				{Type: wire.TxnPut, Key: b, Value: []byte(strconv.Itoa(vb + amount))},
			},
			ElseOps: []wire.TxnOp{{Type: wire.TxnGet, Key: a}},
		}
		c.main.do(w, opGiveUp, func(r *wire.Response) {
			switch {
			case r == nil || levelRefusal(r):
			case r.Err != wire.ErrNone:
				s.failf("transfer %s -> %s: %s %s", a, b, r.Err, r.ErrMsg)
			case r.Succeeded && (len(r.TxnResults) != 2 || r.TxnResults[0].KV.ModRevision != ma || r.TxnResults[1].KV.ModRevision != mb):
				s.failf("transfer %s -> %s applied, but replaced %+v, not the pairs at %d and %d", a, b, r.TxnResults, ma, mb)
			case r.Succeeded:
				s.stats.txnTransfers++
			}
		})
	})
}

// checkAccounts checks the transfers' invariant on the state after slot:
// the accounts add up to what they started with.
func (c *simChecker) checkAccounts(slot paxos.Slot, sm *statemachine.StateMachine) {
	total := 0
	for i := 0; i < simAccounts; i++ {
		kv, ok := sm.Get(simAccount(i))
		if !ok {
			total += simAccountStart
			continue
		}
		n, err := strconv.Atoi(string(kv.Value))
		if err != nil || n < 0 {
			c.s.failf("slot %d: account %s holds %q", slot, kv.Key, kv.Value)
			return
		}
		total += n
	}
	if total != simAccounts*simAccountStart {
		c.s.failf("slot %d: the accounts add up to %d, not %d: a transfer applied in part or twice", slot, total, simAccounts*simAccountStart)
	}
}
