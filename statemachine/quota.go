package statemachine

import (
	"errors"
	"fmt"
)

// The space quota (docs/DESIGN.md, "Space quota"): a bound on the bytes the
// live keys hold, len(key)+len(value) summed over every key, so that a
// runaway writer fills the quota instead of the members' disks.
//
// The quota is replicated state. Until the first OpQuotaSet or
// OpQuotaDefault is applied, none is set and nothing is enforced: a member
// of an older version, which has no quota, applies every put, and a newer
// one must apply the same. A leader proposes OpQuotaDefault once every
// member speaks a version that knows quotas (service/quota_node.go); from
// that slot on every replica enforces the same limit.
//
// Usage is derived from the keys: kept up to date by the put and delete
// hooks below and recomputed on restore, never stored in a snapshot. The
// limit is in the snapshot only once set, so the state of a cluster that
// never set one encodes as before. Like the cluster identity it is not
// part of Hash, at any level (hash.go): a member rolled back to an older version lacks it, and
// must not be convicted by the state check for a setting that has decided
// nothing yet; a put that one replica refused and another applied differs
// in the keys and the stored results, which Hash covers.

// DefaultQuotaBytes is the quota a leader proposes (OpQuotaDefault) for a
// cluster that has none, unless its node is configured otherwise.
const DefaultQuotaBytes = 8 << 30

// ErrQuotaExceeded: a put or cas would have grown the keys' bytes beyond
// the space quota; nothing was written. The wrapped message gives the usage
// and the quota.
var ErrQuotaExceeded = errors.New("service: quota exceeded")

// spaceQuota is the quota and the usage it bounds.
//
// Invariant: used is the sum of len(Key)+len(Value) over the live keys;
// limit > 0 when set.
type spaceQuota struct {
	limit uint64
	set   bool
	used  uint64
}

// QuotaInfo is the space quota as a replica sees it.
type QuotaInfo struct {
	// Used is the bytes of the live keys and values.
	Used uint64
	// Limit is the quota in bytes, 0 while none is set (Set false).
	Limit uint64
	// Set reports whether a quota was applied: only then is it enforced.
	Set bool
}

// Quota returns the space quota and the current usage.
func (sm *StateMachine) Quota() QuotaInfo {
	q := &sm.quota
	return QuotaInfo{Used: q.used, Limit: q.limit, Set: q.set}
}

func kvBytes(key string, value []byte) uint64 { return uint64(len(key) + len(value)) }

// quotaCheck refuses a write of value to key that would grow the usage past
// a set quota. A write that shrinks the usage or keeps it passes even above
// the quota, so that a full store can still be rewritten smaller.
func (sm *StateMachine) quotaCheck(key string, value []byte, cur KV, found bool) error {
	q := &sm.quota
	if !q.set {
		return nil
	}
	after := q.used + kvBytes(key, value)
	if found {
		after -= kvBytes(cur.Key, cur.Value)
	}
	if after <= q.used || after <= q.limit {
		return nil
	}
	return fmt.Errorf("%w: %s of %s used; delete keys or raise it with paxosd quota set",
		ErrQuotaExceeded, FormatBytes(q.used), FormatBytes(q.limit))
}

// quotaPut accounts for key's value replacing prev (if found).
func (sm *StateMachine) quotaPut(key string, value []byte, prev KV, found bool) {
	sm.quota.used += kvBytes(key, value)
	if found {
		sm.quota.used -= kvBytes(prev.Key, prev.Value)
	}
}

// quotaDel accounts for the deletion of prev.
func (sm *StateMachine) quotaDel(prev KV) { sm.quota.used -= kvBytes(prev.Key, prev.Value) }

// execQuota runs a valid OpQuotaSet or OpQuotaDefault.
func (sm *StateMachine) execQuota(c *Command) Result {
	if c.Op == OpQuotaSet || !sm.quota.set {
		sm.quota.limit, sm.quota.set = c.Quota, true
	}
	return Result{Revision: sm.kv.rev}
}

func validateQuota(c *Command) error {
	if c.Quota == 0 {
		return fmt.Errorf("%w: a quota of 0 bytes", ErrInvalid)
	}
	if c.Op == OpQuotaDefault && c.ClientID != 0 {
		return fmt.Errorf("%w: %s command from client %d: only nodes propose it, with client id 0", ErrInvalid, c.Op, c.ClientID)
	}
	return nil
}

// restoreQuota takes a snapshot's quota (limit 0: none set) and recomputes
// the usage from its keys.
func (sm *StateMachine) restoreQuota(limit uint64) {
	sm.quota = spaceQuota{limit: limit, set: limit != 0}
	sm.kv.ascendFrom("", func(kv KV) bool {
		sm.quota.used += kvBytes(kv.Key, kv.Value)
		return true
	})
}

// FormatBytes formats n in binary units with one decimal, as the quota
// error and 'paxosd quota' print it: "512.0 B", "1.5 KiB", "8.0 GiB".
func FormatBytes(n uint64) string {
	units := [...]string{"B", "KiB", "MiB", "GiB", "TiB"}
	u, div := 0, uint64(1)
	for u < len(units)-1 && n >= div<<10 {
		u, div = u+1, div<<10
	}
	return fmt.Sprintf("%.1f %s", float64(n)/float64(div), units[u])
}
