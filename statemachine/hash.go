package statemachine

// Hash returns a digest of the whole replicated state (legacyHash,
// hash_legacy.go, says what it covers). Replicas that applied the same
// commands have the same Hash. It walks everything: for tests and checks,
// not for hot paths.
func (sm *StateMachine) Hash() uint64 { return sm.legacyHash() }
