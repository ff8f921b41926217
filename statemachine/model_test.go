package statemachine

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// kvModel is the reference implementation: the same semantics written the
// obvious way, without an index, heap or bounds (the test runs with limits
// it never reaches).
type kvModel struct {
	rev     uint64
	kvs     map[string]KV
	clients map[uint64]*kvModelClient
}

type kvModelClient struct {
	floor   uint64
	results map[uint64]Result
}

func (m *kvModel) apply(c Command) Result {
	valid := c.Op >= OpPut && c.Op <= OpList && (c.ClientID == 0 || c.AckedBelow <= c.Seq) &&
		(c.Op == OpList || c.Key != "") && (c.Op != OpCAS || c.HasPrevValue || c.HasPrevRevision)
	if !valid {
		return Result{Err: ErrInvalid, Revision: m.rev}
	}
	mutating := c.Op == OpPut || c.Op == OpDelete || c.Op == OpCAS
	if c.ClientID == 0 {
		return m.exec(c)
	}
	cl := m.clients[c.ClientID]
	if !mutating {
		if cl != nil {
			cl.floor = max(cl.floor, c.AckedBelow)
		}
		return m.exec(c)
	}
	if cl == nil {
		cl = &kvModelClient{results: map[uint64]Result{}}
		m.clients[c.ClientID] = cl
	}
	cl.floor = max(cl.floor, c.AckedBelow)
	if c.Seq < cl.floor {
		return Result{Err: ErrStaleRequest, Revision: m.rev}
	}
	if r, ok := cl.results[c.Seq]; ok {
		return r
	}
	r := m.exec(c)
	cl.results[c.Seq] = r
	return r
}

func (m *kvModel) exec(c Command) Result {
	old, found := m.kvs[c.Key]
	write := func() {
		m.rev++
		nkv := KV{Key: c.Key, Value: c.Value, CreateRevision: m.rev, ModRevision: m.rev, Version: 1}
		if found {
			nkv.CreateRevision, nkv.Version = old.CreateRevision, old.Version+1
		}
		m.kvs[c.Key] = nkv
	}
	switch c.Op {
	case OpPut:
		write()
		return Result{Revision: m.rev, Found: found, KV: old}
	case OpGet, OpDelete:
		if !found {
			return Result{Err: ErrNotFound, Revision: m.rev}
		}
		if c.Op == OpDelete {
			m.rev++
			delete(m.kvs, c.Key)
		}
		return Result{Revision: m.rev, Found: true, KV: old}
	case OpCAS:
		ok := true
		if c.HasPrevValue && (!found || !bytes.Equal(old.Value, c.PrevValue)) {
			ok = false
		}
		if c.HasPrevRevision && c.PrevRevision == 0 && found {
			ok = false
		}
		if c.HasPrevRevision && c.PrevRevision != 0 && (!found || old.ModRevision != c.PrevRevision) {
			ok = false
		}
		if ok {
			write()
		}
		return Result{Revision: m.rev, Found: found, KV: old, Succeeded: ok}
	default: // list
		var keys []string
		for k := range m.kvs {
			if strings.HasPrefix(k, c.Prefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		r := Result{Revision: m.rev}
		if c.Limit > 0 && len(keys) > int(c.Limit) {
			keys, r.More = keys[:c.Limit], true
		}
		for _, k := range keys {
			r.KVs = append(r.KVs, m.kvs[k])
		}
		return r
	}
}

// TestAgainstModel compares the state machine with the reference model on
// long random streams.
func TestAgainstModel(t *testing.T) {
	for seed := uint64(10); seed < 20; seed++ {
		h := newSMHarness(t, SMOptions{})
		m := &kvModel{kvs: map[string]KV{}, clients: map[uint64]*kvModelClient{}}
		g := newCmdGen(seed, 4)
		for i := 0; i < 3000; i++ {
			c := g.next(h.sm.Get)
			got, want := h.do(c), m.apply(c)
			if !resultEqual(got, want) {
				t.Fatalf("seed %d command %d %s:\n got  %s\n want %s", seed, i, c.String(), describeResult(got), describeResult(want))
			}
		}
		if h.sm.kv.len() != len(m.kvs) {
			t.Fatalf("seed %d: %d keys, model %d", seed, h.sm.kv.len(), len(m.kvs))
		}
		for k, want := range m.kvs {
			if got, ok := h.sm.Get(k); !ok || !kvEqual(got, want) {
				t.Fatalf("seed %d: key %q: %s, kvModel %s", seed, k, describeKV(got), describeKV(want))
			}
		}
	}
}

// BenchmarkApplyPut measures decode+apply of a put: overwriting a small key
// set without duplicate detection, with it (one client acknowledging as it
// goes, the command encoded in the loop), and creating a new key each time.
func BenchmarkApplyPut(b *testing.B) {
	value := make([]byte, 100)
	b.Run("overwrite", func(b *testing.B) {
		cmds := make([][]byte, 1024)
		for i := range cmds {
			cmds[i] = EncodeCommand(&Command{Op: OpPut, Key: fmt.Sprintf("key/%06d", i), Value: value})
		}
		sm := NewStateMachine(SMOptions{})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sm.Apply(paxos.Slot(i+1), cmds[i%len(cmds)])
		}
	})
	b.Run("dedup", func(b *testing.B) {
		sm := NewStateMachine(SMOptions{})
		c := Command{ClientID: 7, Op: OpPut, Key: "key", Value: value}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c.Seq = uint64(i + 1)
			c.AckedBelow = uint64(max(i-10, 0))
			sm.Apply(paxos.Slot(i+1), EncodeCommand(&c))
		}
	})
	b.Run("newkeys", func(b *testing.B) {
		sm := NewStateMachine(SMOptions{})
		c := Command{Op: OpPut, Value: value}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c.Key = fmt.Sprintf("key/%09d", uint32(i)*2654435761) // scattered
			sm.Apply(paxos.Slot(i+1), EncodeCommand(&c))
		}
	})
}
