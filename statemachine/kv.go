package statemachine

import (
	"bytes"
	"strings"

	"github.com/tidwall/btree"
)

// KV is a key with its value and revision bookkeeping, as in etcd.
//
// Invariants: CreateRevision <= ModRevision <= the store revision;
// Version >= 1 (the number of puts since the key was last created).
type KV struct {
	Key            string
	Value          []byte
	CreateRevision uint64 // store revision of the put that created the key
	ModRevision    uint64 // store revision of the key's last change
	Version        uint64 // puts since creation; a delete resets the key
}

// kvStore is the key-value part of the state: a copy-on-write B-tree of
// the pairs in key order (tidwall/btree), for point lookups and prefix
// scans alike.
//
// The tree, not a map, because a snapshot needs a point-in-time view of a
// million keys without stopping the node: clone shares every node with the
// live tree and costs O(1); the live tree copies a node the first time it
// writes to it after a clone, so a snapshot taken while writes go on costs
// at most one copy of the nodes written meanwhile, never the whole state.
type kvStore struct {
	rev  uint64 // store revision: the number of changes ever made
	tree *btree.BTreeG[KV]
	// hint is the path of the last key looked up. A put looks its key up
	// up to three times (the quota check, the previous pair, the write):
	// with the path remembered, the second and third compare one key per
	// level instead of searching each node of a tree of a million keys.
	// A clone starts without one: it is the tree's, not the state's.
	hint btree.PathHint
}

// kvTreeDegree is the B-tree's degree: nodes hold up to 2*degree-1 pairs.
// A write after a clone copies one node per level, so smaller nodes copy
// less; larger ones make the tree shallower. 32 (a node of at most 63
// 64-byte pairs, 4 KiB) is in between.
const kvTreeDegree = 32

func kvLess(a, b KV) bool { return a.Key < b.Key }

// newKVStore returns an empty store. The tree takes no locks: the state
// machine is one goroutine's, and a clone is another tree.
func newKVStore() kvStore {
	return kvStore{tree: btree.NewBTreeGOptions(kvLess, btree.Options{Degree: kvTreeDegree, NoLocks: true})}
}

// clone returns a copy of s that shares the tree's nodes copy-on-write:
// later writes to either leave the other as it was.
func (s *kvStore) clone() kvStore { return kvStore{rev: s.rev, tree: s.tree.Copy()} }

// len returns the number of keys.
func (s *kvStore) len() int { return s.tree.Len() }

func (s *kvStore) get(key string) (KV, bool) {
	return s.tree.GetHint(KV{Key: key}, &s.hint)
}

// put sets key to value and returns the new KV and the previous one, if
// any. The tree keeps key and value as they are given, the previous key's
// string too: a decoded command's key and value share one allocation
// (joinKeyValue), and keeping the previous key would keep the previous
// value's bytes alive with it.
func (s *kvStore) put(key string, value []byte) (kv, prev KV, existed bool) {
	s.rev++
	return s.putAt(key, value, s.rev)
}

// putAt is put at revision rev, which it leaves the store's revision to
// become: a transaction's writes share one revision (txn.go).
func (s *kvStore) putAt(key string, value []byte, rev uint64) (kv, prev KV, existed bool) {
	prev, existed = s.tree.GetHint(KV{Key: key}, &s.hint)
	kv = KV{Key: key, Value: value, CreateRevision: rev, ModRevision: rev, Version: 1}
	if existed {
		kv.CreateRevision = prev.CreateRevision
		kv.Version = prev.Version + 1
	}
	s.tree.SetHint(kv, &s.hint)
	return kv, prev, existed
}

// del removes key and returns it; it changes nothing if key is absent.
func (s *kvStore) del(key string) (KV, bool) {
	prev, ok := s.delAt(key)
	if ok {
		s.rev++
	}
	return prev, ok
}

// delAt is del without the revision's increment (see putAt).
func (s *kvStore) delAt(key string) (KV, bool) {
	prev, ok := s.tree.DeleteHint(KV{Key: key}, &s.hint)
	if !ok {
		return KV{}, false
	}
	return prev, true
}

// ascendFrom calls fn for every pair whose key is >= start, in key order,
// until fn returns false.
func (s *kvStore) ascendFrom(start string, fn func(KV) bool) {
	s.tree.Ascend(KV{Key: start}, fn)
}

// casHolds reports whether c's conditions hold for the current state of
// c.Key. Both conditions, when present, must hold.
func (s *kvStore) casHolds(c *Command) (cur KV, found, ok bool) {
	cur, found = s.get(c.Key)
	ok = true
	if c.HasPrevRevision {
		if c.PrevRevision == 0 {
			ok = ok && !found
		} else {
			ok = ok && found && cur.ModRevision == c.PrevRevision
		}
	}
	if c.HasPrevValue {
		ok = ok && found && bytes.Equal(cur.Value, c.PrevValue)
	}
	return cur, found, ok
}

// list returns the KVs whose key starts with prefix, in key order, at most
// limit of them (limit <= 0: all), and whether more keys matched.
func (s *kvStore) list(prefix string, limit int) (kvs []KV, more bool) {
	s.ascendFrom(prefix, func(kv KV) bool {
		if !strings.HasPrefix(kv.Key, prefix) {
			return false
		}
		if limit > 0 && len(kvs) == limit {
			more = true
			return false
		}
		kvs = append(kvs, kv)
		return true
	})
	return kvs, more
}
