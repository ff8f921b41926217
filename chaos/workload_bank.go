package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/paxosd/paxosd/client"
)

// BankWorker moves money between accounts in transactions while it holds
// a lock: it reads two accounts, then writes both only if the lock's
// fencing token still holds and neither account changed since the read
// (mod revision compares), in one transaction. Whatever the faults — a
// transfer retried across a failover, a session lost mid-transfer, a
// deposed leader — the accounts must always add up to what they started
// with: a transfer applied in part, twice, or by a stale holder breaks
// CheckBank.
type BankWorker struct {
	ID       int
	C        *client.Client
	Lock     string
	Accounts int
	TTL      time.Duration
	Rand     *rand.Rand
	Stats    *Stats

	s *client.Session
}

// bankStart is every account's balance before its first transfer (a
// missing account holds it).
const bankStart = 1000

func bankAccount(i int) string { return fmt.Sprintf("bank/%d", i) }

// Run works until ctx ends, then closes its session.
func (w *BankWorker) Run(ctx context.Context) {
	defer func() {
		if w.s != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = w.s.Close(cctx)
			cancel()
		}
	}()
	for ctx.Err() == nil {
		if w.s == nil || closed(w.s.Done()) {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := w.C.NewSession(sctx, w.TTL)
			cancel()
			if err != nil {
				sleepCtx(ctx, 200*time.Millisecond)
				continue
			}
			w.s = s
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := w.s.Lock(actx, w.Lock)
		cancel()
		if err != nil {
			w.Stats.Op("bank-lock", "fail")
			continue
		}
		for n := 1 + w.Rand.IntN(5); n > 0 && ctx.Err() == nil && !closed(w.s.Done()); n-- {
			w.transfer(ctx, l.Token)
		}
		uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = w.s.Unlock(uctx, w.Lock)
		cancel()
	}
}

func (w *BankWorker) transfer(ctx context.Context, token uint64) {
	from := w.Rand.IntN(w.Accounts)
	to := (from + 1 + w.Rand.IntN(w.Accounts-1)) % w.Accounts
	a, b := bankAccount(from), bankAccount(to)
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	read, err := w.C.Txn(tctx).Then(client.OpGet(a), client.OpGet(b)).Commit()
	if err != nil {
		w.Stats.Op("bank-transfer", "unknown")
		return
	}
	va, ma := bankBalance(read.Results[0])
	vb, mb := bankBalance(read.Results[1])
	amount := 1 + w.Rand.IntN(100)
	if va < amount {
		return
	}
	resp, err := w.C.Txn(tctx).
		If(client.Compare(client.LockToken(w.Lock), "=", token),
			client.Compare(client.ModRevision(a), "=", ma),
			client.Compare(client.ModRevision(b), "=", mb)).
		Then(client.OpPut(a, []byte(strconv.Itoa(va-amount))), client.OpPut(b, []byte(strconv.Itoa(vb+amount)))).
		Commit()
	switch {
	case err != nil:
		w.Stats.Op("bank-transfer", "unknown")
	case resp.Succeeded:
		w.Stats.Op("bank-transfer", "ok")
	default:
		w.Stats.Op("bank-transfer", "refused")
	}
}

func bankBalance(r client.TxnResult) (int, uint64) {
	if !r.Found {
		return bankStart, 0
	}
	n, err := strconv.Atoi(string(r.KV.Value))
	if err != nil {
		return -1 << 40, r.KV.ModRevision // CheckBank reports it
	}
	return n, r.KV.ModRevision
}

// CheckBank reads every account in one transaction (one revision) through
// c and reports a total other than accounts × bankStart.
func CheckBank(ctx context.Context, c *client.Client, accounts int) ([]string, error) {
	ops := make([]client.Op, accounts)
	for i := range ops {
		ops[i] = client.OpGet(bankAccount(i))
	}
	resp, err := c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	total := 0
	for i, r := range resp.Results {
		v, _ := bankBalance(r)
		if v < 0 {
			return []string{fmt.Sprintf("account %s holds %q", bankAccount(i), r.KV.Value)}, nil
		}
		total += v
	}
	if total != accounts*bankStart {
		return []string{fmt.Sprintf("the bank accounts add up to %d at revision %d, not %d: a transfer applied in part or twice", total, resp.Revision, accounts*bankStart)}, nil
	}
	return nil, nil
}
