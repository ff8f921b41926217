package statemachine

import (
	"fmt"
	"strings"
)

// Ephemeral keys (from LevelEphemeral on): etcd's keys on a lease,
// ZooKeeper's ephemeral nodes, with sessions as the leases.
//
// A put with a SessionID binds its key to that session (which must be
// open: else ErrSessionExpired and nothing is written). When the session
// ends, closed, revoked or expired, every key bound to it is deleted: one
// delete event per key in the watch history, all at one new revision (one
// revision per ending session, as etcd's lease revoke deletes a lease's
// keys in one transaction), in key order.
//
// A binding lasts until the key next changes otherwise:
//
//   - a put from another session moves it to that session;
//   - a put without a session, a compare-and-set that writes, and a
//     transaction's put make the key permanent (transactions' puts carry
//     no session);
//   - a delete of the key by any op (a delete, a transaction's delete or
//     prefix delete) drops it: a key put again later without a session is
//     permanent.
//
// A put by the same session again keeps it. A failed put (fenced, over the
// quota, or to a session that has ended) changes no binding.
//
// The bindings are replicated state: in the hash (through the snapshot
// encoding, format 6) and in snapshots. They live beside the key tree, not
// in it: a million permanent keys pay nothing for them, and the few
// ephemeral ones cost a map entry each.
//
// Invariant: byKey and bySession hold the same pairs; every bound key
// exists in the store and every session in byKey is open.
type bindings struct {
	byKey     map[string]uint64              // key -> its session
	bySession map[uint64]map[string]struct{} // session -> its keys
}

func newBindings() bindings {
	return bindings{byKey: map[string]uint64{}, bySession: map[uint64]map[string]struct{}{}}
}

// bind binds key to session id, moving it from any other session. The
// key is cloned: a command's key shares its allocation with the value
// (joinKeyValue), which the binding must not keep alive once the key is
// written again.
func (b *bindings) bind(key string, id uint64) {
	if old, ok := b.byKey[key]; ok {
		if old == id {
			return
		}
		b.unbind(key)
	}
	key = strings.Clone(key)
	b.byKey[key] = id
	keys := b.bySession[id]
	if keys == nil {
		keys = map[string]struct{}{}
		b.bySession[id] = keys
	}
	keys[key] = struct{}{}
}

// unbind makes key permanent (or forgets a deleted key's binding).
func (b *bindings) unbind(key string) {
	id, ok := b.byKey[key]
	if !ok {
		return
	}
	delete(b.byKey, key)
	keys := b.bySession[id]
	delete(keys, key)
	if len(keys) == 0 {
		delete(b.bySession, id)
	}
}

// take removes and returns session id's keys, in key order.
func (b *bindings) take(id uint64) []string {
	keys := b.bySession[id]
	if len(keys) == 0 {
		return nil
	}
	out := sortedKeys(keys)
	for _, k := range out {
		delete(b.byKey, k)
	}
	delete(b.bySession, id)
	return out
}

// KeySession returns the session key is bound to (0: none, a permanent
// key or no key).
func (sm *StateMachine) KeySession(key string) uint64 { return sm.bound.byKey[key] }

// SessionKeys returns the keys bound to session id, sorted.
func (sm *StateMachine) SessionKeys(id uint64) []string {
	return sortedKeysOrNil(sm.bound.bySession[id])
}

// putSession checks a put's session before it writes: the session the key
// is to be bound to (0: none, the key becomes permanent), or the error
// that refuses the put. Below LevelEphemeral a put's SessionID means
// nothing, as in every older build.
func (sm *StateMachine) putSession(c *Command) (uint64, error) {
	if c.SessionID == 0 || sm.level < LevelEphemeral {
		return 0, nil
	}
	if s := sm.liveSession(c.SessionID); s == nil || s.ending {
		return 0, fmt.Errorf("%w: session %d does not exist (expired, closed, or never opened): key %q not written", ErrSessionExpired, c.SessionID, c.Key)
	}
	return c.SessionID, nil
}

// deleteSessionKeys deletes the keys bound to s, which is ending, at one
// new revision (nothing if it has none).
func (sm *StateMachine) deleteSessionKeys(s *session) {
	keys := sm.bound.take(s.id)
	if len(keys) == 0 {
		return
	}
	kv := &sm.kv
	rev := kv.rev + 1
	sm.kvHist.beginRevision()
	defer sm.kvHist.endRevision()
	deleted := false
	for _, k := range keys {
		prev, ok := kv.delAt(k)
		if !ok {
			continue // cannot happen (a delete unbinds); a missing key is gone already
		}
		sm.quotaDel(prev)
		sm.kvHist.add(KVEvent{Revision: rev, Type: EventDelete, KV: KV{Key: prev.Key, ModRevision: rev}, PrevKV: prev})
		deleted = true
	}
	if deleted {
		kv.rev = rev
	}
}

// snapshotBindings lists the bindings in key order, for a snapshot.
func (sm *StateMachine) snapshotBindings() []SnapBinding {
	keys := sortedKeys(sm.bound.byKey)
	out := make([]SnapBinding, len(keys))
	for i, k := range keys {
		out[i] = SnapBinding{Key: k, Session: sm.bound.byKey[k]}
	}
	return out
}

// restoreBindings rebuilds the bindings of st, checking that they are in
// key order, name open sessions and (when the keys were read) existing
// keys.
func (sm *StateMachine) restoreBindings(st *SnapshotState) error {
	if len(st.Bindings) > 0 && sm.level < LevelEphemeral {
		return badSnapshot("%d key bindings at cluster level %d, below %d", len(st.Bindings), sm.level, LevelEphemeral)
	}
	for i, b := range st.Bindings {
		if b.Key == "" || i > 0 && b.Key <= st.Bindings[i-1].Key {
			return badSnapshot("key binding %d (%q): empty or out of order", i, b.Key)
		}
		if sm.sessions.m[b.Session] == nil {
			return badSnapshot("key %q bound to session %d, which is not open", b.Key, b.Session)
		}
		if !st.keysUnread {
			if _, ok := sm.kv.get(b.Key); !ok {
				return badSnapshot("key %q bound to session %d does not exist", b.Key, b.Session)
			}
		}
		sm.bound.bind(b.Key, b.Session)
	}
	return nil
}
