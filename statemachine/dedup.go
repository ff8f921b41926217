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
// heapIndex is its position in it.
type dedupTable struct {
	clients    map[uint64]*clientEntry
	byAge      clientHeap
	clientsMax int
	resultsMax int
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
	lastSlot  paxos.Slot
	results   []seqResult
	heapIndex int
}

type seqResult struct {
	seq uint64
	res Result
}

func newDedupTable(clientsMax, resultsMax int) dedupTable {
	return dedupTable{clients: make(map[uint64]*clientEntry), clientsMax: clientsMax, resultsMax: resultsMax}
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
		old := heap.Pop(&t.byAge).(*clientEntry)
		delete(t.clients, old.id)
	}
	e := &clientEntry{id: id, lastSlot: slot}
	t.clients[id] = e
	heap.Push(&t.byAge, e)
	return e
}

// raiseFloor forgets the results of commands with Seq below floor.
func (e *clientEntry) raiseFloor(floor uint64) {
	if floor <= e.floor {
		return
	}
	e.floor = floor
	i, _ := slices.BinarySearchFunc(e.results, floor, cmpSeq)
	e.results = slices.Delete(e.results, 0, i)
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

// store records the result of command seq (>= floor, not yet stored). When
// the client has more than max results outstanding, the oldest that is not
// Pending is forgotten and the floor raised past it: a retry of it then gets
// ErrStaleRequest rather than being applied twice.
func (e *clientEntry) store(seq uint64, res Result, max int) {
	i, _ := slices.BinarySearchFunc(e.results, seq, cmpSeq)
	e.results = slices.Insert(e.results, i, seqResult{seq: seq, res: res})
	e.trim(max)
}

// resolve replaces the Pending result of command seq, if it is still
// stored, by its final answer, which makes it subject to the bound again.
func (e *clientEntry) resolve(seq uint64, res Result, max int) {
	i, ok := slices.BinarySearchFunc(e.results, seq, cmpSeq)
	if !ok || !e.results[i].res.Pending {
		return
	}
	e.results[i].res = res
	e.trim(max)
}

// trim forgets the oldest results that are not Pending until at most max
// remain (or only Pending ones are left to forget). Pending results older
// than a forgotten one stay, below the raised floor.
func (e *clientEntry) trim(max int) {
	for len(e.results) > max {
		i := slices.IndexFunc(e.results, func(r seqResult) bool { return !r.res.Pending })
		if i < 0 {
			return
		}
		e.floor = max64(e.floor, e.results[i].seq+1)
		e.results = slices.Delete(e.results, i, i+1)
	}
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
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
