package statemachine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestEphemeralRandom (review of branch eph): random puts with and without
// sessions (open, ended, never opened, huge ids), deletes, cas, txns with
// prefix deletes, keep-alives, closes, clock steps expiring sessions, a
// quota, and the level rising from 0 through 8 to 9 midway; a second
// replica restored from a snapshot of the first at random slots applies
// the same commands. After every command: the same hash, the bindings'
// invariant (both maps agree, every bound key exists, every bound session
// is open), the quota's usage equal to the keys' bytes, and a model of the
// bindings (etcd's lease rules) agreeing with KeySession.
func TestEphemeralRandom(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		reviewEphRun(t, seed)
	}
}

func reviewEphRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	a := newSMHarness(t, SMOptions{KVHistoryMax: 64})
	b := newSMHarness(t, SMOptions{KVHistoryMax: 64})
	model := map[string]uint64{}
	keys := []string{"s/a", "s/b", "s/c", "s/d", "t/a", "t/b"}
	clock := uint64(1000)
	seq := uint64(0)
	bound, ended := 0, 0
	errs := map[string]int{}
	defer func() { t.Logf("seed %d: %d puts bound, %d session ends deleted keys; %v", seed, bound, ended, errs) }()
	recent := func() uint64 { return uint64(max(1, int(a.sm.sessions.last)-rng.IntN(5))) }
	for step := 0; step < 600; step++ {
		var c Command
		switch step {
		case 150:
			c = levelCmd(LevelTxn)
		case 300:
			c = levelCmd(LevelEphemeral)
		default:
			switch x := rng.IntN(100); {
			case x < 8:
				c = openCmd(uint64(1000 + rng.IntN(3000)))
			case x < 14:
				c = keepCmd(recent())
			case x < 18:
				c = closeCmd(recent())
			case x < 30:
				clock += uint64(rng.IntN(800))
				c = clockCmd(clock)
			case x < 60:
				sid := uint64(0)
				switch y := rng.IntN(10); {
				case y < 6:
					sid = recent()
				case y == 6:
					sid = 1 << 63
				}
				c = Command{Op: OpPut, Key: keys[rng.IntN(len(keys))], Value: []byte(fmt.Sprint(step)), SessionID: sid}
			case x < 68:
				c = delCmd(keys[rng.IntN(len(keys))])
			case x < 74:
				c = Command{Op: OpCAS, Key: keys[rng.IntN(len(keys))], Value: []byte("cas"), HasPrevRevision: true, PrevRevision: 0}
			case x < 76:
				c = Command{Op: OpQuotaSet, Quota: uint64(150 + rng.IntN(400))}
			default:
				k := keys[rng.IntN(len(keys))]
				op := TxnOp{Type: TxnPut, Key: k, Value: []byte("txn")}
				if rng.IntN(2) == 0 {
					op = TxnOp{Type: TxnDelete, Key: k[:2], Prefix: true}
				}
				c = Command{Op: OpTxn, Then: []TxnOp{op}}
			}
		}
		if c.Op != OpClock && c.Op != OpLevel {
			seq++
			c = cs(9, seq, c)
		}
		before := a.sm.Revision()
		ra := a.do(c)
		rb := b.do(c)
		if !resultEqual(ra, rb) {
			t.Fatalf("seed %d step %d %s: results differ: %s vs %s", seed, step, c.String(), describeResult(ra), describeResult(rb))
		}
		if ha, hb := a.sm.Hash(), b.sm.Hash(); ha != hb {
			t.Fatalf("seed %d step %d %s: hashes differ", seed, step, c.String())
		}
		if c.Op == OpPut && c.SessionID != 0 && a.sm.Level() >= LevelEphemeral {
			errs[fmt.Sprint(errClass(ra.Err))]++
		}
		if c.Op == OpPut && c.SessionID != 0 && ra.Err == nil && a.sm.Level() >= LevelEphemeral {
			bound++
		}
		if ra.Err == nil && (c.Op == OpClock || c.Op == OpSessionClose) && a.sm.Revision() > before {
			ended++
		}
		from := max(a.sm.OldestRevision(), b.sm.OldestRevision())
		ea, errA := a.sm.KVEvents(from, "", true, 0)
		eb, errB := b.sm.KVEvents(from, "", true, 0)
		if (errA == nil) != (errB == nil) || len(ea) != len(eb) {
			t.Fatalf("seed %d step %d: histories from %d differ: %d events (%v) vs %d (%v)", seed, step, from, len(ea), errA, len(eb), errB)
		}
		for i := range ea {
			if ea[i].Revision != eb[i].Revision || ea[i].Type != eb[i].Type || ea[i].KV.Key != eb[i].KV.Key || (i > 0 && ea[i].Revision < ea[i-1].Revision) {
				t.Fatalf("seed %d step %d: history event %d differs: %+v vs %+v", seed, step, i, ea[i], eb[i])
			}
		}
		reviewEphModel(a.sm, model, &c, ra, before)
		reviewEphCheck(t, seed, step, &c, a.sm, model)
		if rng.IntN(25) == 0 {
			r := mustRestore(t, SMOptions{KVHistoryMax: 64}, mustSnapshot(t, a.sm))
			b = &smHarness{t: t, sm: r, slot: a.slot}
		}
	}
}

// reviewEphModel updates the model of the bindings after c.
func reviewEphModel(sm *StateMachine, model map[string]uint64, c *Command, r Result, before uint64) {
	// Drop bindings of sessions that are gone and of keys that are gone.
	defer func() {
		for k, s := range model {
			if _, ok := sm.liveSessionInfo(s); !ok {
				delete(model, k)
			} else if _, ok := sm.Get(k); !ok {
				delete(model, k)
			}
		}
	}()
	if r.Err != nil {
		return
	}
	switch c.Op {
	case OpPut:
		if c.SessionID != 0 && sm.Level() >= LevelEphemeral {
			model[c.Key] = c.SessionID
		} else {
			delete(model, c.Key)
		}
	case OpCAS:
		if r.Succeeded {
			delete(model, c.Key)
		}
	case OpTxn:
		for _, op := range c.Then {
			if op.Type == TxnPut {
				delete(model, op.Key)
			}
		}
	}
}

func (sm *StateMachine) liveSessionInfo(id uint64) (SessionInfo, bool) { return sm.Session(id) }

func reviewEphCheck(t *testing.T, seed uint64, step int, c *Command, sm *StateMachine, model map[string]uint64) {
	b := &sm.bound
	n := 0
	for id, ks := range b.bySession {
		if len(ks) == 0 {
			t.Fatalf("seed %d step %d: empty key set for session %d", seed, step, id)
		}
		for k := range ks {
			n++
			if b.byKey[k] != id {
				t.Fatalf("seed %d step %d: bySession %d has %q, byKey says %d", seed, step, id, k, b.byKey[k])
			}
		}
	}
	if n != len(b.byKey) {
		t.Fatalf("seed %d step %d: %d in bySession, %d in byKey", seed, step, n, len(b.byKey))
	}
	for k, id := range b.byKey {
		if _, ok := sm.Get(k); !ok {
			t.Fatalf("seed %d step %d (%s): %q bound to %d does not exist", seed, step, c.String(), k, id)
		}
		if sm.sessions.m[id] == nil {
			t.Fatalf("seed %d step %d (%s): %q bound to closed session %d", seed, step, c.String(), k, id)
		}
	}
	for _, k := range []string{"s/a", "s/b", "s/c", "s/d", "t/a", "t/b"} {
		if got, want := sm.KeySession(k), model[k]; got != want {
			t.Fatalf("seed %d step %d (%s): %q bound to %d, model says %d", seed, step, c.String(), k, got, want)
		}
	}
	var used uint64
	sm.kv.ascendFrom("", func(kv KV) bool { used += kvBytes(kv.Key, kv.Value); return true })
	if sm.quota.used != used {
		t.Fatalf("seed %d step %d: quota used %d, keys hold %d", seed, step, sm.quota.used, used)
	}
	if sm.level < LevelEphemeral && len(b.byKey) > 0 {
		t.Fatalf("seed %d step %d: bindings below level 9", seed, step)
	}
}
