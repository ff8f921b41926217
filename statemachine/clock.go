package statemachine

// advanceClock applies an OpClock: the cluster clock moves to now if that
// is later (it never goes back); the sessions opened or kept alive since
// the previous clock command get their deadline from this clock; then every
// session whose deadline the clock has reached expires, in session id
// order, and every lock-delay that has run out ends, in lock name order,
// granting those locks to their waiters.
func (sm *StateMachine) advanceClock(now uint64) {
	sm.clock = max(sm.clock, now)
	sm.restartRenewed()
	sm.expireSessions()
	sm.endDelays()
}
