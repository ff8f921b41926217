package statemachine

// Test hooks. The node's checks — the state check between replicas
// (service/statecheck.go) and the node simulation's checkers — must catch a
// replica whose state went wrong in a way no command can cause: a bug, a
// bit flip, a damaged restore. Their tests damage a state machine with
// these. Nothing outside tests may call them: the result is a replica that
// disagrees with its peers.

// TamperPut writes key with value straight into the store, as a put would
// (the revision moves), but outside the log: no duplicate detection, no KV
// history event.
func (sm *StateMachine) TamperPut(key string, value []byte) { sm.kv.put(key, value) }

// TamperFence sets the fencing-token counter, so that tokens already handed
// out may be handed out again.
func (sm *StateMachine) TamperFence(fence uint64) { sm.fence = fence }
