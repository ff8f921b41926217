package statemachine

import (
	"bytes"
	"container/heap"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Keep-alive batches (OpSessionKeepAliveBatch, from LevelKeepAliveBatch
// on): one command renews every session it lists, each exactly as
// OpSessionKeepAlive renews one — deadline = clock + TTL now, and again
// from the next clock command (markRenewed) — so a renewal still goes
// through the log and the replicated clock, and what docs/SESSIONS.md
// guarantees (the client gives up first; no session is immortal) holds
// unchanged: only the number of commands changes, one per batch instead
// of one per session.
//
// A batch is not kept in the duplicate table (Op.mutating): a retry that
// applies again renews its live sessions again, later, which the client
// cannot mistake for a renewal it did not see (it counts the TTL from the
// send time of the attempt it saw acknowledged, so a later renewal only
// leaves the cluster's deadline further out than the client's), and
// keeping up to SessionKeepAliveBatchMax ids per answer would fill the
// table's bytes.

// SessionKeepAliveBatchMax bounds the session ids of one keep-alive batch
// (wire.KeepAliveBatchMax).
const SessionKeepAliveBatchMax = 4096

// validateKeepAliveBatch checks a batch's ids and that the cluster level
// has batches.
func (sm *StateMachine) validateKeepAliveBatch(c *Command) error {
	if sm.level < LevelKeepAliveBatch {
		return fmt.Errorf("%w: keep-alive batches need cluster level %d (every member at protocol %d or newer); the cluster is at level %d",
			ErrInvalid, LevelKeepAliveBatch, LevelKeepAliveBatch, sm.level)
	}
	return ValidateKeepAliveBatch(c.SessionIDs)
}

// ValidateKeepAliveBatch checks a batch's session ids: 1 to
// SessionKeepAliveBatchMax of them, none 0. The node runs it before
// proposing, so a bad batch costs no slot.
func ValidateKeepAliveBatch(ids []uint64) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: a keep-alive batch without session ids", ErrInvalid)
	}
	if len(ids) > SessionKeepAliveBatchMax {
		return fmt.Errorf("%w: %w: a keep-alive batch of %d session ids; the limit is %d: split it",
			ErrInvalid, ErrTooLarge, len(ids), SessionKeepAliveBatchMax)
	}
	for i, id := range ids {
		if id == 0 {
			return fmt.Errorf("%w: session id 0 (at %d) in a keep-alive batch", ErrInvalid, i)
		}
	}
	return nil
}

// sessionKeepAliveBatch renews every live session of c.SessionIDs and
// reports the others, in the batch's order.
func (sm *StateMachine) sessionKeepAliveBatch(c *Command) Result {
	var expired []uint64
	for _, id := range c.SessionIDs {
		s := sm.liveSession(id)
		if s == nil {
			expired = append(expired, id)
			continue
		}
		s.deadline = sm.clock + s.ttl
		heap.Fix(&sm.sessions.byDeadline, s.heapIndex)
		sm.sessions.markRenewed(s)
	}
	return Result{Revision: sm.kv.rev, Expired: expired}
}

// encodeIDList writes a command's list of ids: an array of uints.
func encodeIDList(enc *msgpack.Encoder, us []uint64) error {
	return encodeArrayOf(enc, len(us), us...)
}

// decodeIDList reads a list of ids (nil, or an array of uints of at least
// one byte each).
func decodeIDList(d *msgpack.Decoder, r *bytes.Reader) ([]uint64, error) {
	if code, err := d.PeekCode(); err != nil || code == msgpcode.Nil {
		if err != nil {
			return nil, err
		}
		return nil, d.DecodeNil()
	}
	n, err := decodeListLen(d, r, 1)
	if err != nil || n == 0 {
		return nil, err
	}
	us := make([]uint64, n)
	for i := range us {
		if us[i], err = decodeUint(d, math.MaxUint64); err != nil {
			return nil, err
		}
	}
	return us, nil
}
