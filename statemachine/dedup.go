package statemachine

import (
	"container/heap"
	"slices"

	"github.com/paxosd/paxosd/paxos"
)

// dedupTable is the duplicate-detection part of the replicated state: per
// client, the results of the mutating commands it may still retry. See the
// package comment for the contract.
//
// Invariants: clients and byAge hold the same entries; len(clients) <=
// clientsMax; byAge is a min-heap on (lastSlot, id) and every entry's
// heapIndex is its position in it; bytes is the sum of the entries' bytes.
//
// Every change to an entry's results goes through the table's methods
// (store, resolve, raiseFloor, trim, remove), which keep the byte counts.
type dedupTable struct {
	clients    map[uint64]*clientEntry
	byAge      clientHeap
	clientsMax int
	resultsMax int
	// bytesMax bounds bytes from LevelDedupBytes on (dedup_bytes.go).
	bytesMax uint64
	// bytes is resultBytes summed over every stored result. Derived, at
	// every level: kept by the methods below, recomputed on restore, never
	// in a snapshot, so that the bound starts from the right count at the
	// slot that raises the level.
	bytes uint64
}

// clientEntry is what the state machine remembers about one client.
//
// Invariants: results is sorted by seq; a result with seq < floor is that
// of a waiting command (a lock acquire or campaign that got Pending, and
// may have been answered since, see resolve); len(results) <= resultsMax,
// except that Pending results are never dropped to make room: a waiting
// command's result stays until it is answered or the client acknowledges
// it, even if the floor rose past it meanwhile.
type clientEntry struct {
	id uint64
	// floor: the answers to the client's commands with Seq below it are
	// forgotten; such a command is refused with ErrStaleRequest. It never
	// decreases.
	floor uint64
	// lastSlot is the slot of the client's last command, for eviction.
	lastSlot paxos.Slot
	results  []seqResult
	// bytes is resultBytes summed over results.
	bytes     uint64
	heapIndex int
}

type seqResult struct {
	seq uint64
	res Result
}

func newDedupTable(opts *SMOptions) dedupTable {
	return dedupTable{clients: make(map[uint64]*clientEntry), clientsMax: opts.ClientsMax,
		resultsMax: opts.ResultsPerClientMax, bytesMax: uint64(opts.DedupBytesMax)}
}

// touch records activity of client id at slot and returns its entry,
// creating it when create is set (evicting the least recently active client
// if the table is full) and otherwise returning nil for an unknown client.
func (t *dedupTable) touch(id uint64, slot paxos.Slot, create bool) *clientEntry {
	if e := t.clients[id]; e != nil {
		e.lastSlot = slot
		heap.Fix(&t.byAge, e.heapIndex)
		return e
	}
	if !create {
		return nil
	}
	for len(t.clients) >= t.clientsMax {
		t.remove(t.byAge[0])
	}
	e := &clientEntry{id: id, lastSlot: slot}
	t.clients[id] = e
	heap.Push(&t.byAge, e)
	return e
}

// remove forgets client e entirely, Pending results included.
func (t *dedupTable) remove(e *clientEntry) {
	heap.Remove(&t.byAge, e.heapIndex)
	delete(t.clients, e.id)
	t.bytes -= e.bytes
}

// raiseFloor forgets the results of e's commands with Seq below floor.
func (t *dedupTable) raiseFloor(e *clientEntry, floor uint64) {
	if floor <= e.floor {
		return
	}
	e.floor = floor
	i, _ := slices.BinarySearchFunc(e.results, floor, cmpSeq)
	t.forget(e, 0, i)
}

// forget deletes e.results[i:j], keeping the byte counts.
func (t *dedupTable) forget(e *clientEntry, i, j int) {
	for k := i; k < j; k++ {
		n := resultBytes(&e.results[k].res)
		e.bytes -= n
		t.bytes -= n
	}
	e.results = slices.Delete(e.results, i, j)
}

// result returns the stored result of command seq.
func (e *clientEntry) result(seq uint64) (Result, bool) {
	i, ok := slices.BinarySearchFunc(e.results, seq, cmpSeq)
	if !ok {
		return Result{}, false
	}
	return e.results[i].res, true
}

// StoredResult returns the result the duplicate-detection table keeps for
// client's command seq, if it keeps one: what a retry of that command would
// be answered. The node uses it to answer the calls whose commands an
// installed snapshot skipped. The Result shares bytes with the state
// machine; the caller must not modify them.
func (sm *StateMachine) StoredResult(client, seq uint64) (Result, bool) {
	if e := sm.dedup.clients[client]; e != nil {
		return e.result(seq)
	}
	return Result{}, false
}

// store records the result of e's command seq (>= floor, not yet
// stored). When the client has more than resultsMax results outstanding,
// the oldest that is not Pending is forgotten and the floor raised past it:
// a retry of it then gets ErrStaleRequest rather than being applied twice.
func (t *dedupTable) store(e *clientEntry, seq uint64, res Result) {
	i, _ := slices.BinarySearchFunc(e.results, seq, cmpSeq)
	e.results = slices.Insert(e.results, i, seqResult{seq: seq, res: res})
	n := resultBytes(&res)
	e.bytes += n
	t.bytes += n
	t.trim(e)
}

// resolve replaces the Pending result of e's command seq, if it is still
// stored, by its final answer, which makes it subject to the bounds again.
func (t *dedupTable) resolve(e *clientEntry, seq uint64, res Result) {
	i, ok := slices.BinarySearchFunc(e.results, seq, cmpSeq)
	if !ok || !e.results[i].res.Pending {
		return
	}
	old, n := resultBytes(&e.results[i].res), resultBytes(&res)
	e.bytes = e.bytes - old + n
	t.bytes = t.bytes - old + n
	e.results[i].res = res
	t.trim(e)
}

// trim forgets e's oldest results that are not Pending until at most
// resultsMax remain (or only Pending ones are left to forget).
func (t *dedupTable) trim(e *clientEntry) {
	for len(e.results) > t.resultsMax && t.dropOldest(e) {
	}
}

// dropOldest forgets e's oldest result that is not Pending and raises the
// floor past it, so that a retry of it gets ErrStaleRequest rather than
// being applied twice; false if every result is Pending. Pending results
// older than the forgotten one stay, below the raised floor.
func (t *dedupTable) dropOldest(e *clientEntry) bool {
	i := slices.IndexFunc(e.results, func(r seqResult) bool { return !r.res.Pending })
	if i < 0 {
		return false
	}
	e.floor = max(e.floor, e.results[i].seq+1)
	t.forget(e, i, i+1)
	return true
}

func cmpSeq(r seqResult, seq uint64) int {
	switch {
	case r.seq < seq:
		return -1
	case r.seq > seq:
		return 1
	}
	return 0
}

// sortedIDs returns the client ids in increasing order.
func (t *dedupTable) sortedIDs() []uint64 {
	ids := make([]uint64, 0, len(t.clients))
	for id := range t.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// clientHeap orders clients by last activity, oldest first, ties broken by
// the smaller id: the eviction order is a function of the applied commands
// alone, the same on every replica.
type clientHeap = indexedHeap[*clientEntry]

func (e *clientEntry) heapLess(o *clientEntry) bool {
	if e.lastSlot != o.lastSlot {
		return e.lastSlot < o.lastSlot
	}
	return e.id < o.id
}

func (e *clientEntry) setHeapIndex(i int) { e.heapIndex = i }
