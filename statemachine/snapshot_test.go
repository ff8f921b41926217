package statemachine

import (
	"github.com/vmihailenco/msgpack/v5"

	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// snapGen mixes the KV stream of cmdGen (puts, gets, deletes, cas, lists,
// stale retries, acks and invalid commands, from clients 101..105) with the
// coordination stream of coordGen (sessions, keep-alives, clock steps that
// expire them, locks with waiters and lock-delays, campaigns, proclaims,
// resigns, fenced writes, retries and garbage, from clients 1..4),
// transactions (randomTxn, from clients 201 and 202; refused below
// LevelTxn), plus the odd undecodable command.
type snapGen struct {
	rng    *rand.Rand
	kv     *cmdGen
	coord  *coordGen
	txnSeq uint64
}

// randomTxn returns a transaction over genKeys: compares of every kind
// (some built from the keys' current state, so that both branches run),
// and branches of puts, deletes, prefix deletes, gets and lists — some
// refused (a key written twice, overlapping ranges).
func randomTxn(r *rand.Rand, cur func(string) (KV, bool)) Command {
	c := Command{Op: OpTxn}
	key := func() string { return genKeys[r.IntN(len(genKeys))] }
	for n := r.IntN(3); n > 0; n-- {
		k := key()
		kv, _ := cur(k)
		cmp := Compare{Target: CompareTarget(1 + r.IntN(6)), Result: CompareResult(1 + r.IntN(4)), Key: k}
		switch cmp.Target {
		case CompareValue:
			cmp.Value = kv.Value
		case CompareVersion:
			cmp.Number = kv.Version
		case CompareCreate:
			cmp.Number = kv.CreateRevision
		case CompareMod:
			cmp.Number = kv.ModRevision + uint64(r.IntN(2))
		case CompareExists:
			cmp.Number = uint64(r.IntN(2))
		case CompareToken:
			cmp.Key, cmp.Number = "l"+k, uint64(r.IntN(3))
		}
		c.Compares = append(c.Compares, cmp)
	}
	branch := func() []TxnOp {
		var ops []TxnOp
		for n := r.IntN(4); n > 0; n-- {
			op := TxnOp{Type: TxnOpType(1 + r.IntN(3)), Key: key()}
			switch {
			case op.Type == TxnPut:
				op.Value = []byte{byte('0' + r.IntN(3))}
			case r.IntN(3) == 0:
				op.Prefix, op.Key = true, op.Key[:1]
				if op.Type == TxnGet {
					op.Limit = uint32(r.IntN(3))
				}
			}
			ops = append(ops, op)
		}
		return ops
	}
	c.Then, c.Else = branch(), branch()
	return c
}

func newSnapGen(seed uint64) *snapGen {
	return &snapGen{
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
		kv:    newCmdGen(seed, 5),
		coord: newCoordGen(seed, 4),
	}
}

// next returns the next command's bytes and, when it is one, the decoded
// command (for learn, and the op in failure messages).
func (g *snapGen) next(sm *StateMachine) ([]byte, Command) {
	switch x := g.rng.IntN(100); {
	case x == 0:
		b := make([]byte, g.rng.IntN(8))
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		return b, Command{}
	case x < 8:
		c := randomTxn(g.rng, sm.Get)
		g.txnSeq++
		c.ClientID, c.Seq = 201+uint64(g.rng.IntN(2)), g.txnSeq
		if g.rng.IntN(8) == 0 && g.txnSeq > 1 {
			c.Seq = g.txnSeq - 1 // a retry (of the other client's, sometimes: a new command)
		}
		return EncodeCommand(&c), c
	case x < 40:
		c := g.kv.next(sm.Get)
		if c.ClientID != 0 {
			c.ClientID += 100
		}
		if ss := sm.Sessions(); c.Op == OpPut && len(ss) > 0 && g.rng.IntN(2) == 0 {
			// An ephemeral key (at LevelEphemeral), bound to an open
			// session or, now and then, to one that has ended.
			c.SessionID = ss[g.rng.IntN(len(ss))].ID + uint64(g.rng.IntN(2))
		}
		return EncodeCommand(&c), c
	default:
		c := g.coord.next()
		return EncodeCommand(&c), c
	}
}

// TestSnapshotRoundTrip runs rich random histories; at many points it
// snapshots and restores, and checks that the restored state machine is the
// original (Hash, every local read, every stored result, the snapshot
// bytes), then feeds the original and the restored one the same further
// commands and checks that they give the same results, the same late
// answers and the same Hash after each. Every round goes on from a restore
// of the previous restored state, so restores chain.
func TestSnapshotRoundTrip(t *testing.T) {
	var cov snapCoverage
	snapshots := 0
	for seed := uint64(1); seed <= 4; seed++ {
		// Small bounds, so that clients are evicted, results forgotten and
		// histories trimmed; and once the defaults (fewer steps: Hash
		// walks every stored result, and they pile up).
		opts := SMOptions{ClientsMax: 6, ResultsPerClientMax: 5, KVHistoryMax: 40, KVHistoryBytesMax: 4000, ElectionHistoryMax: 4}
		steps := 5000
		if seed == 4 {
			opts, steps = SMOptions{}, 2500
		}
		g := newSnapGen(seed)
		orig := NewStateMachine(opts)
		// twin applies the same commands on its own: a replica reaching the
		// same state by itself (its maps grew in their own order) must
		// encode it to the same bytes.
		twin := NewStateMachine(opts)
		if seed >= 3 {
			// At LevelMax snapshots hold the membership, which the node
			// sets before applying anything.
			boot := testBoot.Clone()
			boot.Alpha = 4 * testAlpha
			orig.SetBootstrapMembers(boot)
			twin.SetBootstrapMembers(boot)
		}
		var cur *StateMachine // the restored replica, nil before the first restore
		// frozen is a view taken at the last snapshot point and encoded
		// only at the next one, after 250 more commands: it must still
		// give the bytes of its own point in time.
		var frozen *SnapshotView
		var frozenData []byte
		slot := paxos.Slot(1)
		for i := 0; i < steps; i++ {
			cmd, c := g.next(orig)
			if i == 0 && seed >= 3 {
				// At LevelMax from the start: the hash compared is the
				// encoding's (hash.go), and seed 4's restored replicas
				// hold less of the KV history than the original.
				c = levelCmd(LevelMax)
				cmd = EncodeCommand(&c)
			}
			// A slot ends here: snapshot at its boundary.
			if i > 0 && g.rng.IntN(4) > 0 {
				if i%250 == 0 {
					data := mustSnapshot(t, orig)
					if whole := encodeWhole(t, orig); !bytes.Equal(data, whole) {
						t.Fatalf("seed %d step %d: the streamed encoding differs from msgpack's of the whole state", seed, i)
					}
					if frozen != nil {
						var buf bytes.Buffer
						if _, err := frozen.WriteTo(&buf); err != nil || !bytes.Equal(buf.Bytes(), frozenData) {
							t.Fatalf("seed %d step %d: a view encoded later differs from its point in time (err %v)", seed, i, err)
						}
					}
					var err error
					if frozen, err = orig.View(); err != nil {
						t.Fatal(err)
					}
					if h, err := frozen.Hash(opts); err != nil || h != orig.Hash() {
						t.Fatalf("seed %d step %d: the view's hash %x (%v), the state machine's %x", seed, i, h, err, orig.Hash())
					}
					frozenData = data
					if tw := mustSnapshot(t, twin); !bytes.Equal(data, tw) {
						t.Fatalf("seed %d step %d: replicas in the same state give different snapshots", seed, i)
					}
					if again := mustSnapshot(t, orig); !bytes.Equal(data, again) {
						t.Fatalf("seed %d step %d: two snapshots of one state differ", seed, i)
					}
					base := orig
					if cur != nil {
						base = cur // chain: restore the restored one
						data = mustSnapshot(t, cur)
					}
					r := mustRestore(t, opts, data)
					checkSameState(t, orig, r)
					checkSameState(t, base, r)
					cov.add(r)
					snapshots++
					if i >= 1500 {
						cur = r // from here on, cur follows along
					}
				}
				slot++
				if seed >= 3 && i%40 == 0 {
					// A membership change in a slot of its own now and
					// then (refused while another waits): snapshots are
					// taken with changes pending and in force.
					v := paxos.ConfigValue(nextChange(orig.Members()))
					for _, sm := range []*StateMachine{orig, twin, cur} {
						if sm != nil {
							sm.ApplyValue(slot, v)
						}
					}
					slot++
				}
			}
			ra := orig.Apply(slot, cmd)
			rt := twin.Apply(slot, slices.Clone(cmd))
			g.coord.learn(c, ra)
			aa, at := orig.TakeAnswers(), twin.TakeAnswers()
			if !reflect.DeepEqual(normalize(ra), normalize(rt)) || !reflect.DeepEqual(normAnswers(aa), normAnswers(at)) {
				t.Fatalf("seed %d step %d: the twin answers differently", seed, i)
			}
			if cur == nil {
				continue
			}
			rc := cur.Apply(slot, slices.Clone(cmd))
			ac := cur.TakeAnswers()
			if x, y := normalize(ra), normalize(rc); !reflect.DeepEqual(x, y) {
				t.Fatalf("seed %d step %d: %s: results differ after restore:\n  original: %+v\n  restored: %+v", seed, i, c.Op, x, y)
			}
			if x, y := normAnswers(aa), normAnswers(ac); !reflect.DeepEqual(x, y) {
				t.Fatalf("seed %d step %d: late answers differ after restore:\n  original: %+v\n  restored: %+v", seed, i, x, y)
			}
			if orig.Hash() != cur.Hash() {
				t.Fatalf("seed %d step %d: Hash differs after restore", seed, i)
			}
		}
		checkSameState(t, orig, cur)
		checkSameState(t, orig, twin)
	}
	t.Logf("%d snapshots restored; they held %+v", snapshots, cov)
	if cov.waiters == 0 || cov.delays == 0 || cov.candidates == 0 || cov.renewed == 0 || cov.pending == 0 ||
		cov.errs == 0 || cov.events == 0 || cov.dropped == 0 || cov.ringFull == 0 || cov.bindings == 0 ||
		cov.configPending == 0 || cov.configChanged == 0 {
		t.Fatalf("the histories missed a part of the state: %+v", cov)
	}
}

// encodeWhole encodes sm's state as one msgpack value, keys included: the
// encoding the streamed one (encodeSnapshot) must reproduce byte for byte.
func encodeWhole(t *testing.T, sm *StateMachine) []byte {
	t.Helper()
	st := sm.snapshotState()
	st.KVs = make([]SnapKV, 0, sm.kv.len())
	sm.kv.ascendFrom("", func(kv KV) bool {
		st.KVs = append(st.KVs, snapKV(kv))
		return true
	})
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	v, err := sm.View()
	if err != nil {
		t.Fatal(err)
	}
	version := v.version
	env := []any{snapshotMagic, version, st}
	if version >= 2 {
		env = append(env, &st.Identity)
	}
	if version >= 3 {
		env = append(env, &st.Quota)
	}
	if version >= 4 {
		env = append(env, &st.Level)
	}
	if version >= 5 {
		env = append(env, st.Txns)
	}
	if version >= 6 {
		env = append(env, st.Bindings)
	}
	if version >= 7 {
		env = append(env, &st.Auth)
	}
	if version >= 8 {
		env = append(env, &st.Members)
	}
	if err := enc.Encode(env); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSnapshotErrors: every sentinel error a Result may wrap survives a
// snapshot with its message and errors.Is, including errors that wrap two
// of them. (Package service's TestSnapshotErrorsWire checks that the
// snapshot's table of sentinels covers every error the wire mapping knows,
// and so that the wire code survives too.)
func TestSnapshotErrors(t *testing.T) {
	seen := map[error]bool{}
	for code, s := range snapshotErrors {
		if code == 0 {
			if s != nil {
				t.Errorf("sentinel number 0 is taken")
			}
			continue
		}
		if s == nil || seen[s] {
			t.Errorf("sentinel number %d: %v (nil or repeated)", code, s)
		}
		seen[s] = true
	}

	sm := NewStateMachine(SMOptions{})
	var want []error
	for i, s := range snapshotErrors {
		if s == nil {
			continue
		}
		err := fmt.Errorf("wrapped %d: %w", i, s)
		want = append(want, err, fmt.Errorf("%w: %w: both", ErrInvalid, s))
	}
	want = append(want, errors.New("no sentinel at all"))
	for i, err := range want {
		// Store the errors as results of client 1.
		e := sm.dedup.touch(1, 0, true)
		sm.dedup.store(e, uint64(i+1), Result{Err: err, Revision: 7})
	}
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, sm))
	for i, err := range want {
		got, ok := r.dedup.clients[1].result(uint64(i + 1))
		if !ok || got.Err == nil || got.Err.Error() != err.Error() {
			t.Fatalf("error %q came back as %v", err, got.Err)
		}
		for _, s := range snapshotErrors {
			if s != nil && errors.Is(got.Err, s) != errors.Is(err, s) {
				t.Fatalf("error %q: errors.Is(%v) %v after restore", err, s, errors.Is(got.Err, s))
			}
		}
	}
}

// TestSnapshotAnswersPending: a snapshot refuses while late answers are
// untaken, since it would lose them.
func TestSnapshotAnswersPending(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	h.do(openCmd(5000))
	h.do(openCmd(5000))
	h.do(cs(1, 1, acquireCmd("l", 1, true, 0)))
	if r := h.do(cs(2, 1, acquireCmd("l", 2, true, 0))); !r.Pending {
		t.Fatalf("acquire did not wait: %+v", r)
	}
	h.do(cs(1, 2, releaseCmd("l", 1)))
	if _, err := h.sm.Snapshot(); err == nil || !strings.Contains(err.Error(), "TakeAnswers") {
		t.Fatalf("snapshot with an untaken answer: %v", err)
	}
	if len(h.sm.TakeAnswers()) != 1 {
		t.Fatal("no answer to take")
	}
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, h.sm))
	checkSameState(t, h.sm, r)
}

// TestSnapshotEmptyAndBig: an empty state machine, and a store with many
// keys (many index chunks) that keeps changing after the restore.
func TestSnapshotEmptyAndBig(t *testing.T) {
	empty := NewStateMachine(SMOptions{})
	r := mustRestore(t, SMOptions{}, mustSnapshot(t, empty))
	checkSameState(t, empty, r)

	rng := rand.New(rand.NewPCG(3, 4))
	a := NewStateMachine(SMOptions{KVHistoryMax: 100})
	slot := paxos.Slot(0)
	key := func() string { return fmt.Sprintf("%c/%05d", 'a'+rng.IntN(3), rng.IntN(6000)) }
	op := func(sms ...*StateMachine) {
		slot++
		c := putCmd(key(), fmt.Sprint(rng.IntN(100)))
		if rng.IntN(3) == 0 {
			c = delCmd(key())
		}
		cmd := EncodeCommand(&c)
		var want normResult
		for i, sm := range sms {
			got := normalize(sm.Apply(slot, cmd))
			if i == 0 {
				want = got
			} else if !reflect.DeepEqual(want, got) {
				t.Fatalf("slot %d: %+v, after restore %+v", slot, want, got)
			}
		}
	}
	for i := 0; i < 8000; i++ {
		op(a)
	}
	if a.kv.len() < 4*kvTreeDegree {
		t.Fatalf("only %d keys: the tree has a single node", a.kv.len())
	}
	b := mustRestore(t, SMOptions{KVHistoryMax: 100}, mustSnapshot(t, a))
	checkSameState(t, a, b)
	for i := 0; i < 8000; i++ {
		op(a, b)
	}
	checkSameState(t, a, b)
}

// TestSnapshotWatchHistoryBound: a snapshot carries the newest part of a
// long KV history, bounded in events and in bytes (down to nothing when the
// newest event alone is too large); the restored replica serves every watch
// from there on as the original, refuses older ones with ErrCompacted, and
// snapshots to the same bytes as the original, before and after more
// changes.
func TestSnapshotWatchHistoryBound(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n, size    int
		wantEvents int
	}{
		{"many events", 3 * snapshotHistoryMax, 10, snapshotHistoryMax},
		{"many bytes", 200, 8 << 10, snapshotHistoryBytesMax / (2 * (8<<10 + 4))},
		{"one too large", 3, snapshotHistoryBytesMax + 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewStateMachine(SMOptions{})
			slot := paxos.Slot(0)
			put := func(i int, sms ...*StateMachine) {
				slot++
				c := putCmd(fmt.Sprintf("k%03d", i%7), strings.Repeat("v", tc.size))
				for _, sm := range sms {
					sm.ApplyCommand(slot, &c)
				}
			}
			for i := 0; i < tc.n; i++ {
				put(i, a)
			}
			b := mustRestore(t, SMOptions{}, mustSnapshot(t, a))
			evs, err := b.KVEvents(b.OldestRevision(), "", true, 0)
			if err != nil || len(evs) != tc.wantEvents || b.OldestRevision() != a.Revision()-uint64(tc.wantEvents)+1 {
				t.Fatalf("restored history: %d events from revision %d (%v), want %d", len(evs), b.OldestRevision(), err, tc.wantEvents)
			}
			if _, err := b.KVEvents(b.OldestRevision()-1, "", true, 0); !errors.Is(err, ErrCompacted) {
				t.Fatalf("watch from before the carried history: %v", err)
			}
			checkSameState(t, a, b)
			for i := 0; i < tc.n/2; i++ {
				put(i, a, b)
			}
			checkSameState(t, a, b)
		})
	}
}

// TestSnapshotOptions: a snapshot restores only under the options it was
// taken with (after defaults), and invalid options are refused.
func TestSnapshotOptions(t *testing.T) {
	sm := NewStateMachine(SMOptions{ClientsMax: 7})
	data := mustSnapshot(t, sm)
	if _, err := RestoreStateMachine(SMOptions{ClientsMax: 7, KeyBytesMax: 4096}, data); err != nil {
		t.Fatalf("same options after defaults: %v", err)
	}
	if _, err := RestoreStateMachine(SMOptions{}, data); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("other options: %v", err)
	}
	if _, err := RestoreStateMachine(SMOptions{ClientsMax: -1}, data); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid options: %v", err)
	}
}
