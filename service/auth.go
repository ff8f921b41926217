package service

import (
	"fmt"
	"strings"

	"github.com/paxosd/paxosd/paxos"
	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// Who may do what (docs/SECURITY.md, "Users and roles").
//
// A connection authenticates once: with a client certificate, whose
// CommonName is its user (wire.ClientConn.CertUser), or with an
// OpAuthenticate, whose password the connection's goroutine checks
// against the user's bcrypt hash (auth_login.go), off the node loop. From
// then on every request on it is that user's, and the loop checks it
// (authorize) against the auth state it has applied at that moment: a role
// revoked is gone at the user's next request to this node, and a node
// answers the revoke only once it has applied it. Nothing is cached at
// connect time but the user's name.
//
// The state machine does not check permissions: a command in the log has
// been allowed by the node that proposed it. Only the session owner (the
// user that opened it) is replicated, since it must outlive the node.

// identity is who a client connection acts as.
type identity struct {
	// user is the authenticated user ("" = none yet).
	user string
	// node is the member whose node certificate the connection presented
	// (0: none): a member fetching a snapshot or probing the status. It
	// may do what root may.
	node paxos.NodeID
}

// commandUser is the user a session command carries: a member's node
// certificate acts as root.
func (w identity) commandUser() string {
	if w.node != 0 {
		return statemachine.RootUser
	}
	return w.user
}

// sessionOp reports whether q opens or acts on a session, which the
// state machine checks against its owner: a put with a session (an
// ephemeral key) uses it too.
func sessionOp(q *wire.Request) bool {
	switch q.Op {
	case wire.OpSessionOpen, wire.OpSessionKeepAlive, wire.OpSessionClose, wire.OpLockAcquire, wire.OpLockRelease,
		wire.OpCampaign, wire.OpProclaim, wire.OpResign:
		return true
	case wire.OpPut:
		return q.SessionID != 0
	case wire.OpSessionKeepAliveBatch:
		return true
	}
	return false
}

// authorize decides, on the loop, whether c may run: nil, or the refusal.
// It runs before anything else looks at the call.
func (n *Node) authorize(c *call) *wire.Response {
	a := n.authState.Load() // while a snapshot installs (n.sm nil): the last state applied
	if n.sm != nil {
		a = n.sm.Auth()
	}
	if a == nil || !a.Enabled {
		return nil
	}
	q := c.req
	user := c.who.user
	if c.who.node != 0 && n.isMember(c.who.node) {
		user = statemachine.RootUser
	}
	switch q.Op {
	case wire.OpCancel, wire.OpAuthStatus:
		return nil // a connection's own streams; who it is
	case wire.OpStatus, wire.OpSnapshotRead, wire.OpMemberList:
		if n.cfg.TLS == nil && user == "" {
			// Plaintext: nothing proves a member is a member (anyone may
			// send a peer hello), so the requests members make of each
			// other as clients stay open. docs/SECURITY.md says so.
			return nil
		}
	}
	if user == "" {
		return authRequired()
	}
	if user == statemachine.RootUser {
		if _, ok := a.User(user); ok || c.who.node != 0 {
			return nil
		}
	}
	if _, ok := a.User(user); !ok {
		return denied(fmt.Sprintf("permission denied: user %q does not exist (any more)", user))
	}
	return n.authorizeOp(a, user, q)
}

func (n *Node) authorizeOp(a *statemachine.AuthState, user string, q *wire.Request) *wire.Response {
	need := func(key string, p statemachine.Perm) *wire.Response {
		if a.Allowed(user, key, p) {
			return nil
		}
		return permissionDenied(user, p, key)
	}
	switch q.Op {
	case wire.OpPut, wire.OpDelete, wire.OpCAS:
		if q.FenceName != "" {
			if r := need(q.FenceName, statemachine.PermRead); r != nil {
				return r
			}
		}
		if r := need(q.Key, statemachine.PermWrite); r != nil {
			return r
		}
		if q.Op == wire.OpPut && q.SessionID != 0 {
			return n.ownSession(user, q.SessionID) // an ephemeral key is its session's
		}
		return nil
	case wire.OpGet:
		return need(q.Key, statemachine.PermRead)
	case wire.OpList:
		return need(q.Prefix, statemachine.PermRead)
	case wire.OpWatch:
		return need(q.Key, statemachine.PermRead) // a prefix watch: every key under it
	case wire.OpTxn:
		return n.authorizeTxn(user, q, need)
	case wire.OpSessionOpen, wire.OpSessionList, wire.OpLockList, wire.OpStatus, wire.OpQuotaGet, wire.OpMemberList:
		return nil // answers are filtered to what the user may read (filterForUser)
	case wire.OpSessionKeepAlive, wire.OpSessionClose:
		return n.ownSession(user, q.SessionID)
	case wire.OpSessionKeepAliveBatch:
		for _, id := range q.SessionIDs {
			if r := n.ownSession(user, id); r != nil {
				return r
			}
		}
		return nil
	case wire.OpLockAcquire, wire.OpLockRelease, wire.OpCampaign, wire.OpProclaim, wire.OpResign:
		if r := need(q.Name, statemachine.PermWrite); r != nil {
			return r
		}
		return n.ownSession(user, q.SessionID)
	case wire.OpLockCheck, wire.OpLeader, wire.OpObserve:
		return need(q.Name, statemachine.PermRead)
	}
	// Membership, quota, snapshots, users and roles: root's.
	return denied(fmt.Sprintf("permission denied: %s is root's only, and %s is not root", q.Op, user))
}

// authorizeTxn checks every key of every compare and operation of both
// branches: which branch runs is known only when it applies.
func (n *Node) authorizeTxn(user string, q *wire.Request, need func(string, statemachine.Perm) *wire.Response) *wire.Response {
	for _, cmp := range q.Compares {
		if r := need(cmp.Key, statemachine.PermRead); r != nil {
			return r
		}
	}
	for _, ops := range [][]wire.TxnOp{q.ThenOps, q.ElseOps} {
		for _, op := range ops {
			p := statemachine.PermRead
			if op.Type != wire.TxnGet {
				p = statemachine.PermWrite
			}
			if r := need(op.Key, p); r != nil {
				return r
			}
		}
	}
	return nil
}

// ownSession refuses early a session that is not user's, as this node
// knows it. One it does not know (ended, or opened a moment ago through
// another node) is let through: the state machine decides (checkOwner).
func (n *Node) ownSession(user string, id uint64) *wire.Response {
	if n.sm == nil {
		return nil // installing a snapshot: the state machine decides
	}
	if _, open := n.sm.Session(id); !open {
		return nil
	}
	if owner := n.sm.SessionOwner(id); owner != user {
		if owner == "" {
			owner = "nobody (it was opened without authentication)"
		}
		return denied(fmt.Sprintf("permission denied: session %d belongs to %s, not %s", id, owner, user))
	}
	return nil
}

// filterForUser cuts a listing answered from the node's state down to
// what the call's user may see: its own sessions, the locks it may read.
func (n *Node) filterForUser(c *call, resp *wire.Response) {
	if n.unrestricted(c) {
		return
	}
	a, user := n.sm.Auth(), c.who.user
	if resp.Sessions != nil {
		kept := resp.Sessions[:0]
		for _, s := range resp.Sessions {
			if n.sm.SessionOwner(s.ID) == user {
				kept = append(kept, s)
			}
		}
		resp.Sessions = kept
	}
	if resp.Locks != nil {
		kept := resp.Locks[:0]
		for _, l := range resp.Locks {
			if a.Allowed(user, l.Name, statemachine.PermRead) {
				kept = append(kept, l)
			}
		}
		resp.Locks = kept
	}
}

func (n *Node) isMember(id paxos.NodeID) bool { return n.book.has(id) }

// unrestricted reports whether c's user may see everything: auth is off,
// or the user is root, or a member (a node certificate).
func (n *Node) unrestricted(c *call) bool {
	return !n.sm.Auth().Enabled || c.who.user == statemachine.RootUser || c.who.node != 0 && n.isMember(c.who.node)
}

// hideTxnPairs leaves out of a transaction's answer the pairs its puts
// and deletes report for keys c's user may write but not read (see
// call.hidesPair), and returns what puts them back: resp may be shared
// with other calls.
func (n *Node) hideTxnPairs(c *call, resp *wire.Response) (restore func()) {
	if n.sm != nil && n.unrestricted(c) {
		return func() {}
	}
	var hidden []int
	var kvs []wire.KV
	for i := range resp.TxnResults {
		r := &resp.TxnResults[i]
		if (r.Type == wire.TxnPut || r.Type == wire.TxnDelete) && r.KV.Key != "" && !n.mayRead(c, r.KV.Key) {
			hidden, kvs = append(hidden, i), append(kvs, r.KV)
			r.KV = wire.KV{}
		}
	}
	return func() {
		for j, i := range hidden {
			resp.TxnResults[i].KV = kvs[j]
		}
	}
}

// mayRead reports whether c's user may read key: always while auth is
// off, for root and for a member.
func (n *Node) mayRead(c *call, key string) bool {
	if n.sm == nil {
		// Installing a snapshot, with no state to ask (install.go): what
		// is answered meanwhile (a timeout) carries no pair anyway.
		return false
	}
	return n.unrestricted(c) || n.sm.Auth().Allowed(c.who.user, key, statemachine.PermRead)
}

func authRequired() *wire.Response {
	return &wire.Response{Err: wire.ErrAuthRequired,
		ErrMsg: "authentication required: auth is enabled on this cluster; pass --user NAME (or $PAXOSD_USER), or a client certificate"}
}

func denied(msg string) *wire.Response {
	return &wire.Response{Err: wire.ErrPermissionDenied, ErrMsg: msg}
}

// permissionDenied is the one line docs/SECURITY.md promises:
// "permission denied: USER may not write KEY".
func permissionDenied(user string, p statemachine.Perm, key string) *wire.Response {
	verb := "read"
	if p&statemachine.PermWrite != 0 {
		verb = "write"
	}
	what := fmt.Sprintf("%q", key)
	if key == "" {
		what = "every key (prefix \"\")"
	}
	return denied(fmt.Sprintf("permission denied: %s may not %s %s", user, verb, what))
}

// authAnswer answers the user and role listings and the auth status from
// the node's applied state, on the loop.
func (n *Node) authAnswer(c *call) *wire.Response {
	a := n.sm.Auth()
	switch c.req.Op {
	case wire.OpUserList:
		users := a.Users()
		out := make([]wire.UserInfo, len(users))
		for i, u := range users {
			out[i] = wire.UserInfo{Name: u.Name, Roles: u.Roles, HasPassword: len(u.Hash) > 0}
		}
		return &wire.Response{Users: out, Revision: n.sm.Revision()}
	case wire.OpRoleList:
		roles := a.Roles()
		out := make([]wire.RoleInfo, len(roles))
		for i, r := range roles {
			ri := wire.RoleInfo{Name: r.Name, Perms: make([]wire.RolePerm, len(r.Perms))}
			for j, g := range r.Perms {
				ri.Perms[j] = wire.RolePerm{Prefix: g.Prefix, Perm: wire.Perm(g.Perm)}
			}
			out[i] = ri
		}
		return &wire.Response{Roles: out, Revision: n.sm.Revision()}
	}
	user := c.who.user
	if user == "" && c.who.node != 0 {
		user = fmt.Sprintf("node %d", c.who.node)
	}
	return &wire.Response{AuthEnabled: a.Enabled, User: user, Revision: n.sm.Revision()}
}

// authLocal reports whether q is a user, role or auth request the node
// answers from its own state.
func authLocal(op wire.Op) bool {
	return op == wire.OpUserList || op == wire.OpRoleList || op == wire.OpAuthStatus || op == wire.OpAuthenticate
}

// validateAuthRequest refuses early what the state machine would refuse
// anyway, before a password is hashed for it.
func validateAuthRequest(q *wire.Request) *wire.Response {
	invalid := func(format string, args ...any) *wire.Response {
		return &wire.Response{Err: wire.ErrInvalid, ErrMsg: fmt.Sprintf(format, args...)}
	}
	switch q.Op {
	case wire.OpUserAdd, wire.OpUserDelete, wire.OpUserGrantRole, wire.OpUserRevokeRole, wire.OpAuthenticate:
		if q.Name == "" {
			return invalid("a user name must not be empty")
		}
		if strings.Contains(q.Name, ":") {
			return invalid("user name %q: no ':' (--user NAME:PASSWORD splits at the first)", q.Name)
		}
	case wire.OpRoleAdd, wire.OpRoleDelete, wire.OpRoleGrant, wire.OpRoleRevoke:
		if q.Name == "" {
			return invalid("a role name must not be empty")
		}
	}
	if (q.Op == wire.OpUserGrantRole || q.Op == wire.OpUserRevokeRole) && q.Role == "" {
		return invalid("a role name must not be empty")
	}
	if q.Op == wire.OpRoleGrant && (q.Perm < wire.PermRead || q.Perm > wire.PermReadWrite) {
		return invalid("permission %d: want read (1), write (2) or readwrite (3)", q.Perm)
	}
	if len(q.Value) > passwordBytesMax && (q.Op == wire.OpUserAdd || q.Op == wire.OpAuthenticate) {
		return invalid("password of %d bytes: at most %d (bcrypt reads no more)", len(q.Value), passwordBytesMax)
	}
	return nil
}

// publishAuth hands the applied auth state and level to the connections'
// goroutines; the loop calls it after every iteration that applied.
func (n *Node) publishAuth() {
	n.authState.Store(n.sm.Auth())
	n.authLevel.Store(n.sm.Level())
}

// refuseUnauthorized answers c with its refusal when its user may not run
// it (authorize).
func (n *Node) refuseUnauthorized(c *call) bool {
	resp := n.authorize(c)
	if resp == nil {
		return false
	}
	n.log.Debug().Str("user", c.who.user).Stringer("op", c.req.Op).Str("why", resp.ErrMsg).Msg("request refused")
	c.reply(resp)
	return true
}

// authConn handles, on the connection's goroutine, what a request needs
// before it may become a call: an OpAuthenticate is answered here (and
// makes the connection the user's), a UserAdd's password is hashed, and a
// SnapshotRead, which never reaches the loop, is checked against the
// published state. It returns the answer to send instead of going on.
func (n *Node) authConn(c *wire.ClientConn, q *wire.Request, who *identity) *wire.Response {
	switch q.Op {
	case wire.OpAuthenticate:
		if resp := validateAuthRequest(q); resp != nil {
			return resp
		}
		resp, user := n.authenticate(c.RemoteAddr(), q)
		if user != "" {
			who.user = user
		}
		return resp
	case wire.OpUserAdd:
		if resp := validateAuthRequest(q); resp != nil {
			return resp
		}
		if a := n.authState.Load(); a != nil && a.Enabled && who.user != statemachine.RootUser && who.node == 0 {
			// Refused before the costly hash; the loop checks again.
			if who.user == "" {
				return authRequired()
			}
			return denied(fmt.Sprintf("permission denied: %s is root's only, and %s is not root", q.Op, who.user))
		}
		return n.hashPassword(q)
	case wire.OpSnapshotRead:
		a := n.authState.Load()
		if a == nil || !a.Enabled || who.user == statemachine.RootUser || who.node != 0 && n.isMember(who.node) || n.cfg.TLS == nil && who.user == "" {
			return nil
		}
		if who.user == "" {
			return authRequired()
		}
		return denied(fmt.Sprintf("permission denied: %s is root's only, and %s is not root", q.Op, who.user))
	}
	return nil
}
