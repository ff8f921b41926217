package statemachine

import (
	"bytes"
	"slices"
	"sort"
	"strings"
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

// kvStore is the key-value part of the state: a map for point lookups and
// a sorted key index for prefix scans.
//
// Invariant: the keys of m and of index are the same set.
type kvStore struct {
	rev   uint64 // store revision: the number of changes ever made
	m     map[string]KV
	index keyIndex
}

func newKVStore() kvStore { return kvStore{m: make(map[string]KV)} }

func (s *kvStore) get(key string) (KV, bool) {
	kv, ok := s.m[key]
	return kv, ok
}

// put sets key to value and returns the previous KV, if any.
func (s *kvStore) put(key string, value []byte) (prev KV, existed bool) {
	prev, existed = s.m[key]
	s.rev++
	kv := KV{Key: key, Value: value, CreateRevision: s.rev, ModRevision: s.rev, Version: 1}
	if existed {
		kv.Key = prev.Key // share the string the index holds
		kv.CreateRevision = prev.CreateRevision
		kv.Version = prev.Version + 1
	} else {
		s.index.insert(key)
	}
	s.m[kv.Key] = kv
	return prev, existed
}

// del removes key and returns it; it changes nothing if key is absent.
func (s *kvStore) del(key string) (KV, bool) {
	prev, ok := s.m[key]
	if !ok {
		return KV{}, false
	}
	s.rev++
	delete(s.m, key)
	s.index.remove(key)
	return prev, true
}

// casHolds reports whether c's conditions hold for the current state of
// c.Key. Both conditions, when present, must hold.
func (s *kvStore) casHolds(c *Command) (cur KV, found, ok bool) {
	cur, found = s.m[c.Key]
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
	s.index.ascend(prefix, func(key string) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		if limit > 0 && len(kvs) == limit {
			more = true
			return false
		}
		kvs = append(kvs, s.m[key])
		return true
	})
	return kvs, more
}

// ascendFrom calls fn with every KV whose key is >= start, in key order,
// until fn returns false. Paged listings (list.go) seek with it, so a page
// deep into a large store costs O(log n) to find, not a scan from the
// first key.
func (s *kvStore) ascendFrom(start string, fn func(KV) bool) {
	s.index.ascend(start, func(key string) bool { return fn(s.m[key]) })
}

// keyIndex is a sorted set of strings kept as a list of sorted chunks (a
// B+tree of height two). Inserting or removing a key moves at most
// chunkKeysMax keys plus, on a split or merge, one entry of the chunk list,
// instead of the whole key set as a flat sorted slice would.
//
// Invariants: every chunk is non-empty and holds at most chunkKeysMax keys
// in increasing order; every key of chunks[i] is less than every key of
// chunks[i+1]; n is the total number of keys.
type keyIndex struct {
	chunks [][]string
	n      int
}

const chunkKeysMax = 512

// seek returns the position of the first key >= key: chunk ci and offset i
// within it, or ci == len(chunks) when every key is smaller.
func (x *keyIndex) seek(key string) (ci, i int) {
	ci = sort.Search(len(x.chunks), func(j int) bool {
		c := x.chunks[j]
		return c[len(c)-1] >= key
	})
	if ci == len(x.chunks) {
		return ci, 0
	}
	i, _ = slices.BinarySearch(x.chunks[ci], key)
	return ci, i
}

// insert adds key, which must not be present.
func (x *keyIndex) insert(key string) {
	x.n++
	if len(x.chunks) == 0 {
		x.chunks = append(x.chunks, []string{key})
		return
	}
	ci, i := x.seek(key)
	if ci == len(x.chunks) { // larger than every key: append to the last chunk
		ci = len(x.chunks) - 1
		i = len(x.chunks[ci])
	}
	c := slices.Insert(x.chunks[ci], i, key)
	if len(c) <= chunkKeysMax {
		x.chunks[ci] = c
		return
	}
	mid := len(c) / 2
	right := slices.Clone(c[mid:])
	clear(c[mid:]) // drop references so the strings can be collected
	x.chunks[ci] = c[:mid]
	x.chunks = slices.Insert(x.chunks, ci+1, right)
}

// remove deletes key, which must be present.
func (x *keyIndex) remove(key string) {
	ci, i := x.seek(key)
	if ci == len(x.chunks) || x.chunks[ci][i] != key {
		panic("service: key index out of sync with the key map: " + key)
	}
	x.n--
	c := slices.Delete(x.chunks[ci], i, i+1)
	x.chunks[ci] = c
	switch {
	case len(c) == 0:
		x.chunks = slices.Delete(x.chunks, ci, ci+1)
	case len(c) >= chunkKeysMax/4:
	// A small chunk is merged into a neighbour that has room, so deletes
	// cannot leave a long list of tiny chunks behind: a small chunk that
	// stays has two neighbours of more than 3/4 chunkKeysMax.
	case ci+1 < len(x.chunks) && len(c)+len(x.chunks[ci+1]) <= chunkKeysMax:
		x.chunks[ci] = append(c, x.chunks[ci+1]...)
		x.chunks = slices.Delete(x.chunks, ci+1, ci+2)
	case ci > 0 && len(x.chunks[ci-1])+len(c) <= chunkKeysMax:
		x.chunks[ci-1] = append(x.chunks[ci-1], c...)
		x.chunks = slices.Delete(x.chunks, ci, ci+1)
	}
}

// ascend calls fn for every key >= from in increasing order until fn
// returns false.
func (x *keyIndex) ascend(from string, fn func(key string) bool) {
	ci, i := x.seek(from)
	for ; ci < len(x.chunks); ci, i = ci+1, 0 {
		for _, k := range x.chunks[ci][i:] {
			if !fn(k) {
				return
			}
		}
	}
}
