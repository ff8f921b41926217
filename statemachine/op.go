package statemachine

import "strconv"

// Op names a client operation. The numbering is part of the log format and
// of the client protocol (package wire uses the same numbers): never reuse or
// renumber a value.
//
// Some numbers are wire-only operations that are served from a node's local
// state and never enter the log (6 status, 10 session list, 14 lock list,
// 19 observe, 20 watch, 21 cancel, 23 snapshot read, 27 leader transfer,
// 29 quota get); the state machine refuses them with ErrInvalid. OpClock,
// OpStateHash, OpClusterID, OpVoter, OpQuotaDefault and OpLevel are
// internal: only nodes propose them, and the node refuses them from
// clients.
type Op uint8

const (
	OpPut    Op = 1 // set Key to Value
	OpGet    Op = 2 // read Key
	OpDelete Op = 3 // remove Key
	OpCAS    Op = 4 // set Key to Value if PrevValue/PrevRevision match
	OpList   Op = 5 // read the keys starting with Prefix, at most Limit

	OpSessionOpen      Op = 7 // open a session with TTLMs
	OpSessionKeepAlive Op = 8 // restart SessionID's TTL
	OpSessionClose     Op = 9 // end SessionID, releasing what it holds

	OpLockAcquire Op = 11 // take lock Name for SessionID (Wait: block)
	OpLockRelease Op = 12 // release lock Name, or stop waiting for it
	OpLockCheck   Op = 13 // is Token the current holder's token of Name?

	OpCampaign Op = 15 // become leader of election Name (blocks)
	OpProclaim Op = 16 // the leader publishes a new Value
	OpResign   Op = 17 // the leader steps down, or a candidate leaves
	OpLeader   Op = 18 // read the current leader of Name

	OpClock Op = 22 // internal: advance the cluster clock to Now (ms)

	// OpStateHash is internal: member Reporter's state after slot
	// HashSlot hashed to StateHash (see service/statecheck.go). It changes
	// nothing; the nodes compare the reports.
	OpStateHash Op = 24

	// OpClusterID is internal: the cluster's random id (Value, 16
	// bytes), proposed by the first leader of a cluster that has none; the
	// first one applied wins (see identity.go).
	OpClusterID Op = 25
	// OpVoter is internal: member Reporter has promised or accepted, so
	// it must never vote again with an empty data directory.
	OpVoter Op = 26

	// OpQuotaSet sets the space quota (quota.go) to Quota bytes; from the
	// first OpQuotaSet or OpQuotaDefault applied on, every replica
	// enforces it. (27 is the wire-only leader transfer.)
	OpQuotaSet Op = 28
	// OpQuotaDefault is internal: the default quota (Quota bytes),
	// proposed by a leader once every member speaks a version that knows
	// quotas; it applies only while no quota is set, so it never undoes a
	// client's OpQuotaSet. (29, quota get, is wire-only.)
	OpQuotaDefault Op = 30

	// OpLevel is internal: raise the cluster level (level.go) to Level,
	// proposed by a leader once every member speaks a protocol that
	// knows that level. It never lowers the level.
	OpLevel Op = 31

	// OpTxn is a transaction (txn.go), from LevelTxn on: Compares, and
	// the Then or Else operations, applied at one revision.
	OpTxn Op = 32

	// Users, roles and auth (auth.go), from LevelAuth on. The node
	// proposes a user's bcrypt hash in Value, never its password.
	OpUserAdd        Op = 33 // add user Name with password hash Value
	OpUserDelete     Op = 34 // delete user Name
	OpUserGrantRole  Op = 35 // give user Name role Role
	OpUserRevokeRole Op = 36 // take role Role from user Name
	OpRoleAdd        Op = 37 // add role Name
	OpRoleDelete     Op = 38 // delete role Name (and take it from every user)
	OpRoleGrant      Op = 39 // role Name may do Perm under Prefix
	OpRoleRevoke     Op = 40 // role Name loses its permission on Prefix
	OpAuthEnable     Op = 41 // check every request from now on (needs user root)
	OpAuthDisable    Op = 42 // stop checking
	// 43 user list, 44 role list, 45 auth status and 46 authenticate are
	// wire-only: a node answers them from its own state.

	// OpSessionKeepAliveBatch renews every session of SessionIDs
	// (keepalive_batch.go), from LevelKeepAliveBatch on.
	OpSessionKeepAliveBatch Op = 47
)

var opNames = [...]string{
	OpPut: "put", OpGet: "get", OpDelete: "delete", OpCAS: "cas", OpList: "list",
	OpSessionOpen: "session-open", OpSessionKeepAlive: "session-keepalive", OpSessionClose: "session-close",
	OpLockAcquire: "lock-acquire", OpLockRelease: "lock-release", OpLockCheck: "lock-check",
	OpCampaign: "campaign", OpProclaim: "proclaim", OpResign: "resign", OpLeader: "leader",
	OpClock: "clock", OpStateHash: "state-hash",
	OpClusterID: "cluster-id", OpVoter: "voter",
	OpQuotaSet: "quota-set", OpQuotaDefault: "quota-default",
	OpLevel: "level",
	OpTxn:   "txn",

	OpUserAdd: "user-add", OpUserDelete: "user-delete", OpUserGrantRole: "user-grant-role", OpUserRevokeRole: "user-revoke-role",
	OpRoleAdd: "role-add", OpRoleDelete: "role-delete", OpRoleGrant: "role-grant", OpRoleRevoke: "role-revoke",
	OpAuthEnable: "auth-enable", OpAuthDisable: "auth-disable",
	OpSessionKeepAliveBatch: "session-keepalive-batch",
}

func (o Op) String() string {
	if o.valid() {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// valid reports whether o is a command the log may carry.
func (o Op) valid() bool { return int(o) < len(opNames) && opNames[o] != "" }

// mutating reports whether o may change the state; only mutating commands
// have their results kept for duplicate detection. OpClock is mutating but
// always comes with ClientID 0, so it is never stored.
func (o Op) mutating() bool {
	switch o {
	case OpGet, OpList, OpLockCheck, OpLeader, OpStateHash:
		return false
	case OpSessionKeepAliveBatch:
		// Mutating, but never stored: applying a batch again only renews
		// its sessions again (harmless: the client counts from the send
		// time of the attempt it saw acknowledged), while storing its
		// result would keep up to 4096 ids per answer in the table.
		return false
	}
	return true
}

// fenceable reports whether o is a KV write that FenceName/FenceToken may
// guard.
func (o Op) fenceable() bool { return o == OpPut || o == OpDelete || o == OpCAS }
