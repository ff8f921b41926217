package statemachine

// heapItem is an element of an indexedHeap: it orders itself against
// another and remembers its position, so it can be fixed or removed in
// place (heap.Fix, heap.Remove) when its key changes.
type heapItem[T any] interface {
	heapLess(T) bool
	setHeapIndex(int) // -1 once popped
}

// indexedHeap implements container/heap.Interface for items that track
// their own index. Ties must be broken by the items (by id) so that the
// order, and so everything the state machine derives from it, is the same
// on every replica.
type indexedHeap[T heapItem[T]] []T

func (h indexedHeap[T]) Len() int           { return len(h) }
func (h indexedHeap[T]) Less(i, j int) bool { return h[i].heapLess(h[j]) }

func (h indexedHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setHeapIndex(i)
	h[j].setHeapIndex(j)
}

func (h *indexedHeap[T]) Push(x any) {
	e := x.(T)
	e.setHeapIndex(len(*h))
	*h = append(*h, e)
}

func (h *indexedHeap[T]) Pop() any {
	old := *h
	var zero T
	e := old[len(old)-1]
	old[len(old)-1] = zero
	*h = old[:len(old)-1]
	e.setHeapIndex(-1)
	return e
}
