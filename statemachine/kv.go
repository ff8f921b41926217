package statemachine

import (
	"bytes"
	"strings"
	"unsafe"

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
	tree *btree.BTreeG[kvItem]
	// hint is the path of the last key looked up. A put looks its key up
	// up to three times (the quota check, the previous pair, the write):
	// with the path remembered, the second and third compare one key per
	// level instead of searching each node of a tree of a million keys.
	// A clone starts without one: it is the tree's, not the state's.
	hint btree.PathHint
}

// kvItem is a pair as the tree holds it: with the first kvHeadBytes of its
// key in the item itself, and the rest of the pair packed (72 bytes, where
// a head beside a KV took 88).
//
// Why the head: a lookup in a tree of a million keys compares about
// twenty keys, and with the key only behind its string each comparison
// read two cache lines far apart in a heap of gigabytes (the item, then
// the key's bytes): about 8 µs of cache and TLB misses a put, the largest
// single cost of a replica at that size (docs/BENCHMARKS.md, "Where the
// CPU goes at a million keys"). With the head in the item, a comparison
// reads only the node it searches, unless two keys share their first
// kvHeadBytes bytes. The head costs 24 bytes a key and no object: a map
// or hash index beside the tree was tried, and the objects it added (a
// copy of each key, its buckets) doubled what each garbage collection
// marks, which cost more than the lookups saved.
//
// Why packed: the tree's nodes are a third of a node's heap at a million
// keys (130 MB of 430), every write after a snapshot view copies the node
// it lands in, and the collector scans every node. A string and a slice
// header carry a capacity and lengths of 8 bytes each that a stored pair
// does not need: its key and value are never appended to, and no frame
// (a 4-byte length prefix, docs/PROTOCOL.md) carries a key or value of
// 4 GiB. So the item keeps two data pointers and two 32-bit lengths, and
// kv rebuilds the KV the rest of the package works with.
type kvItem struct {
	head           kvHead
	key, value     *byte // nil when empty
	keyLen, valLen uint32
	createRevision uint64
	modRevision    uint64
	version        uint64
}

// kv returns the pair the item holds. An empty value is nil, as
// joinKeyValue and a snapshot's decoder give it.
func (it *kvItem) kv() KV {
	kv := KV{Key: it.keyString(), CreateRevision: it.createRevision, ModRevision: it.modRevision, Version: it.version}
	if it.valLen > 0 {
		kv.Value = unsafe.Slice(it.value, it.valLen)
	}
	return kv
}

func (it *kvItem) keyString() string { return unsafe.String(it.key, it.keyLen) }

// kvHeadBytes is how much of a key its item holds: keys as long as this
// compare without reading the key (bench scale's are 22 bytes).
const kvHeadBytes = 24

// kvHead is a key's first kvHeadBytes bytes, big-endian in words and
// padded with zeros, so that comparing heads word by word orders keys as
// their bytes do.
type kvHead [kvHeadBytes / 8]uint64

func headOf(key string) kvHead {
	var h kvHead
	for w := range h {
		var x uint64
		for b := 0; b < 8; b++ {
			x <<= 8
			if i := w*8 + b; i < len(key) {
				x |= uint64(key[i])
			}
		}
		h[w] = x
	}
	return h
}

// itemOf packs kv for the tree.
func itemOf(kv KV) kvItem { return probe(kv.Key).holding(kv) }

// holding returns it, the probe of kv's key, with the rest of kv packed
// in: a put builds the key's head once for its lookup and its write.
func (it kvItem) holding(kv KV) kvItem {
	if len(kv.Value) > 0 {
		it.value, it.valLen = unsafe.SliceData(kv.Value), uint32(len(kv.Value))
	}
	it.createRevision, it.modRevision, it.version = kv.CreateRevision, kv.ModRevision, kv.Version
	return it
}

// probe is the item a lookup of key searches the tree with.
func probe(key string) kvItem {
	it := kvItem{head: headOf(key)}
	if len(key) > 0 {
		it.key, it.keyLen = unsafe.StringData(key), uint32(len(key))
	}
	return it
}

// kvLess orders items by key. Heads that differ decide (zero padding
// orders a key before the longer keys it begins); equal heads of keys no
// longer than a head are equal up to trailing zero bytes, so the shorter
// key is the smaller; otherwise the keys themselves decide.
func kvLess(a, b kvItem) bool {
	for w := range a.head {
		if a.head[w] != b.head[w] {
			return a.head[w] < b.head[w]
		}
	}
	if a.keyLen <= kvHeadBytes && b.keyLen <= kvHeadBytes {
		return a.keyLen < b.keyLen
	}
	return a.keyString() < b.keyString()
}

// kvTreeDegree is the B-tree's degree: nodes hold up to 2*degree-1 pairs.
// A write after a clone copies one node per level, so smaller nodes copy
// less; larger ones make the tree shallower. 32 (a node of at most 63
// 72-byte items, 4.4 KiB) is in between.
const kvTreeDegree = 32

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
	it, ok := s.tree.GetHint(probe(key), &s.hint)
	return it.kv(), ok
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
	p := probe(key)
	old, existed := s.tree.GetHint(p, &s.hint)
	prev = old.kv()
	kv = KV{Key: key, Value: value, CreateRevision: rev, ModRevision: rev, Version: 1}
	if existed {
		kv.CreateRevision = prev.CreateRevision
		kv.Version = prev.Version + 1
	}
	s.tree.SetHint(p.holding(kv), &s.hint)
	return kv, prev, existed
}

// load adds kv, whose key must be greater than every key in s: a
// snapshot's keys come in order, and the tree appends them without a
// search from the root.
func (s *kvStore) load(kv KV) { s.tree.Load(itemOf(kv)) }

// loaded ends a load. The tree splits a full node by leaving the right
// half's items behind in the left node's array, past its end (out of its
// slice's reach, not the collector's); a load then appends to a new array
// on the right, and never writes to the left node again. The stale copies
// are harmless until their keys are overwritten, and from then on keep the
// overwritten values alive: half of a loaded state, until each node
// happens to be copied (the first snapshot's view makes every node written
// after it copied). A node that rejoined by a million-key snapshot held
// 60-100 MB of values beyond its state through its catch-up (make
// bench-scale OUTAGE=5m, session 22); a state of 300,000 keys restored and
// overwritten grew from 122 to 177 MB where one built by puts stayed at
// 114. A tree that shares its nodes with a copy copies each node the first
// time it writes to it, into an array of its own: dropping the copy at
// once leaves the stale arrays to go with the nodes' first writes.
func (s *kvStore) loaded() { s.tree = s.tree.Copy() }

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
	prev, ok := s.tree.DeleteHint(probe(key), &s.hint)
	if !ok {
		return KV{}, false
	}
	return prev.kv(), true
}

// ascendFrom calls fn for every pair whose key is >= start, in key order,
// until fn returns false.
func (s *kvStore) ascendFrom(start string, fn func(KV) bool) {
	s.tree.Ascend(probe(start), func(it kvItem) bool { return fn(it.kv()) })
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
