// Package learner decides which slots are chosen and delivers them in order.
//
// A slot is chosen when a quorum of acceptors accepted it under the same
// ballot (the leader counts Accepted replies), or when a node learns it from
// someone who knows: a leader's commit watermark matching the ballot of the
// local accepted entry, a catch-up Decide, or a Promise whose sender had it
// below its own watermark. Whatever the source, the learner hands out only a
// contiguous prefix: Advance returns the slots after the last one delivered,
// in order, with no holes.
//
// The learner is a pure state machine: no I/O, no clock.
package learner
