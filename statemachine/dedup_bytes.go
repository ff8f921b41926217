package statemachine

// The duplicate table bounded by bytes (from LevelDedupBytes on).
//
// ClientsMax and ResultsPerClientMax bound counts, but a stored result can
// be large: a put's holds the previous value, up to the value limit (64
// MiB in the node), so 100,000 clients of 1,024 results each bound nothing
// in practice. From the slot at which the cluster level reaches
// LevelDedupBytes, every replica also keeps the bytes of the stored
// results within SMOptions.DedupBytesMax, checked after every valid
// command (invalid ones never touch the table):
//
//  1. while over, the least recently active client other than the
//     command's own is evicted, as a full table evicts one (the byAge
//     order: oldest last slot, then smaller id), Pending results included;
//  2. if the command's own client alone is still over, its oldest results
//     that are not Pending are forgotten and its floor raised past them: a
//     retry of one then gets ErrStaleRequest, never a second execution
//     (the newest result too, if it alone exceeds the bound: its command
//     was answered, only a retry of it is refused).
//
// Pending results are never forgotten for room (as with the count bound),
// so a client whose Pending results alone exceed the bound stays over it
// until they are answered or it is evicted.
//
// The count (resultBytes) is a pure function of the results, kept as they
// are stored and forgotten and recomputed on restore, never stored in a
// snapshot: the same on every replica. Below LevelDedupBytes it is kept
// but decides nothing, so the table behaves exactly as in builds without
// the bound (the members of a mixed cluster).

// dedupResultOverhead is what a stored result costs besides its variable
// parts: the Result and its seq as this build lays them out on a 64-bit
// platform (384 bytes). A constant, not unsafe.Sizeof: evictions follow
// the count, which must be the same on every replica whatever its
// architecture or compiler. For the same reason it, like resultBytes, is
// part of what LevelDedupBytes means: never change either (even when
// Result grows); a different count is a new level.
const dedupResultOverhead = 384

// resultBytes counts what a stored result holds: the fixed overhead, the
// keys and values of KV and KVs, and the other parts whose size a client
// decides (an election's value and name, a lock's name and waiters, a
// session's lists of names). Error messages are left in the overhead: they
// are short, at most a name long.
func resultBytes(r *Result) uint64 {
	n := uint64(dedupResultOverhead) + kvBytes(r.KV.Key, r.KV.Value)
	for _, kv := range r.KVs {
		n += kvBytes(kv.Key, kv.Value)
	}
	n += uint64(len(r.Leader.Name) + len(r.Leader.Value) + len(r.Lock.Name) + 8*len(r.Lock.Waiters))
	for _, names := range [...][]string{r.Session.Locks, r.Session.Waiting, r.Session.Elections} {
		for _, name := range names {
			n += uint64(len(name))
		}
	}
	// A transaction's results (from LevelTxn on: no older result has
	// any, so the count of every other result is as it was).
	for i := range r.Txn {
		o := &r.Txn[i]
		n += dedupTxnOpOverhead + kvBytes(o.KV.Key, o.KV.Value)
		for _, kv := range o.KVs {
			n += kvBytes(kv.Key, kv.Value)
		}
	}
	return n
}

// dedupTxnOpOverhead is what one operation's result of a stored
// transaction result costs besides its keys and values (a TxnOpResult).
// Part of what LevelTxn means, like dedupResultOverhead.
const dedupTxnOpOverhead = 128

// boundBytes brings the table within bytesMax after a command of client
// own (nil: a command without a client in the table), as the package
// comment above says.
func (t *dedupTable) boundBytes(own *clientEntry) {
	for t.bytes > t.bytesMax {
		victim := t.leastRecentOther(own)
		if victim == nil {
			break
		}
		t.remove(victim)
	}
	for t.bytes > t.bytesMax && own != nil && t.dropOldest(own) {
	}
}

// leastRecentOther returns the least recently active client other than
// own, nil if there is none. own, just touched, is the heap's minimum only
// if every other client shares its slot with a larger id; the next is
// then the smaller of the root's children.
func (t *dedupTable) leastRecentOther(own *clientEntry) *clientEntry {
	h := t.byAge
	switch {
	case len(h) == 0:
		return nil
	case h[0] != own:
		return h[0]
	case len(h) == 1:
		return nil
	case len(h) == 2 || h[1].heapLess(h[2]):
		return h[1]
	}
	return h[2]
}
