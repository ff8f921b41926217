package statemachine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Users, roles and permissions (from LevelAuth on): replicated like every
// other state, so every member checks a request against the same grants.
//
// A user has a name, a bcrypt hash of its password (empty: it can only
// authenticate with a client certificate whose CommonName is its name) and
// roles. A role grants permissions on key prefixes: read, write or both. A
// permission on a prefix covers the keys, lock names and election names
// that start with it. The user named RootUser may do everything, and
// auth can be enabled only once it exists.
//
// The log carries the hash, never the password: the node that takes the
// request hashes it (service/auth.go), off its loop, so that applying
// stays deterministic and fast. Apply never checks a request's
// permissions either: the node that serves a request checks it against
// its applied state at the time (service/auth.go), as etcd does.
//
// The state is copied on write: Auth returns a value that no later
// command changes, which a node hands to the goroutines that authenticate
// connections. Changes are rare (an operator's commands), so the copy is
// cheap next to the lock that sharing a mutable state would need.

// RootUser is the user that may do everything: manage users, roles,
// members and auth, read snapshots, and every key.
const RootUser = "root"

// Perm is what a role may do under a prefix: read, write, or both.
type Perm uint8

const (
	PermRead      Perm = 1
	PermWrite     Perm = 2
	PermReadWrite Perm = PermRead | PermWrite
)

func (p Perm) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	case PermReadWrite:
		return "readwrite"
	}
	return fmt.Sprintf("perm(%d)", uint8(p))
}

// userNameBytesMax bounds user and role names.
const userNameBytesMax = 256

// AuthUser is a user as the state holds it.
type AuthUser struct {
	Name string
	// Hash is the bcrypt hash of its password; empty: no password (a
	// client certificate only).
	Hash []byte
	// Roles are its roles' names, sorted.
	Roles []string
}

// RolePerm is one grant of a role: Perm on the keys starting with Prefix.
type RolePerm struct {
	Prefix string
	Perm   Perm
}

// AuthRole is a role: its grants, sorted by prefix, one per prefix.
type AuthRole struct {
	Name  string
	Perms []RolePerm
}

// AuthState is the auth part of the replicated state. A *AuthState that
// Auth returned is never changed afterwards: safe to read from any
// goroutine.
type AuthState struct {
	Enabled bool
	users   map[string]*AuthUser
	roles   map[string]*AuthRole
}

var emptyAuth = &AuthState{}

// Auth returns the auth state as of the last applied command.
func (sm *StateMachine) Auth() *AuthState {
	if sm.auth == nil {
		return emptyAuth
	}
	return sm.auth
}

// clone returns a copy of a whose maps may be changed; the users and roles
// they point to are shared, and replaced (never changed) by the caller.
func (a *AuthState) clone() *AuthState {
	b := &AuthState{Enabled: a.Enabled, users: make(map[string]*AuthUser, len(a.users)+1), roles: make(map[string]*AuthRole, len(a.roles)+1)}
	for k, v := range a.users {
		b.users[k] = v
	}
	for k, v := range a.roles {
		b.roles[k] = v
	}
	return b
}

// User returns user name, if it exists.
func (a *AuthState) User(name string) (AuthUser, bool) {
	u, ok := a.users[name]
	if !ok {
		return AuthUser{}, false
	}
	return *u, true
}

// Users returns every user, by name.
func (a *AuthState) Users() []AuthUser {
	out := make([]AuthUser, 0, len(a.users))
	for _, u := range a.users {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Roles returns every role, by name.
func (a *AuthState) Roles() []AuthRole {
	out := make([]AuthRole, 0, len(a.roles))
	for _, r := range a.roles {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Allowed reports whether user may do p on key (or a lock or election
// named key): root always, anyone else when one of its roles grants p on
// a prefix of key.
func (a *AuthState) Allowed(user, key string, p Perm) bool {
	return a.granted(user, p, func(prefix string) bool { return strings.HasPrefix(key, prefix) })
}

// AllowedPrefix reports whether user may do p on every key starting with
// q (a list or a watch of prefix q): one granted prefix must cover all of
// q, that is be a prefix of q itself.
func (a *AuthState) AllowedPrefix(user, q string, p Perm) bool {
	return a.Allowed(user, q, p)
}

func (a *AuthState) granted(user string, p Perm, covers func(prefix string) bool) bool {
	if user == RootUser {
		return true
	}
	u, ok := a.users[user]
	if !ok {
		return false
	}
	for _, rn := range u.Roles {
		r := a.roles[rn]
		if r == nil {
			continue
		}
		for _, g := range r.Perms {
			if g.Perm&p == p && covers(g.Prefix) {
				return true
			}
		}
	}
	return false
}

// isAuthOp reports whether o is one of the user, role and auth commands.
func (o Op) isAuthOp() bool { return o >= OpUserAdd && o <= OpAuthDisable }

// validateAuth checks an auth command's fields; the state decides the
// rest (execAuth).
func (sm *StateMachine) validateAuth(c *Command) error {
	if sm.level < LevelAuth {
		return fmt.Errorf("%w: users and roles need cluster level %d (every member at protocol %d or newer); the cluster is at level %d",
			ErrInvalid, LevelAuth, LevelAuth, sm.level)
	}
	switch c.Op {
	case OpAuthEnable, OpAuthDisable:
		return nil
	case OpUserGrantRole, OpUserRevokeRole:
		if err := validateAuthName(c.Role, "role"); err != nil {
			return err
		}
	case OpRoleGrant:
		if c.Perm < PermRead || c.Perm > PermReadWrite {
			return fmt.Errorf("%w: permission %d: want 1 (read), 2 (write) or 3 (readwrite)", ErrInvalid, c.Perm)
		}
		fallthrough
	case OpRoleRevoke:
		if len(c.Prefix) > sm.opts.KeyBytesMax || !utf8.ValidString(c.Prefix) {
			return fmt.Errorf("%w: prefix: not valid UTF-8, or over %d bytes", ErrInvalid, sm.opts.KeyBytesMax)
		}
	}
	what := "user"
	if c.Op >= OpRoleAdd && c.Op <= OpRoleRevoke {
		what = "role"
	}
	return validateAuthName(c.Name, what)
}

// validateAuthName checks a user or role name: not empty, UTF-8, no ':'
// (the CLI's --user NAME:PASSWORD splits at the first), no control
// characters, at most userNameBytesMax bytes.
func validateAuthName(name, what string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty %s name", ErrInvalid, what)
	case len(name) > userNameBytesMax:
		return fmt.Errorf("%w: %s name is %d bytes, limit %d", ErrInvalid, what, len(name), userNameBytesMax)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s name is not valid UTF-8", ErrInvalid, what)
	case strings.ContainsAny(name, ":\x00\n\r\t "):
		return fmt.Errorf("%w: %s name %q: no ':', spaces or control characters", ErrInvalid, what, name)
	}
	return nil
}

// execAuth runs a valid auth command on a copy of the auth state, which
// replaces it only when the command succeeds.
func (sm *StateMachine) execAuth(c *Command) Result {
	a := sm.Auth().clone()
	if err := a.exec(c); err != nil {
		return Result{Err: err, Revision: sm.kv.rev}
	}
	sm.auth = a
	return Result{Revision: sm.kv.rev}
}

func (a *AuthState) exec(c *Command) error {
	switch c.Op {
	case OpUserAdd:
		if _, ok := a.users[c.Name]; ok {
			return fmt.Errorf("%w: user %q exists already", ErrInvalid, c.Name)
		}
		a.users[c.Name] = &AuthUser{Name: c.Name, Hash: slices.Clone(c.Value)}
	case OpUserDelete:
		if _, ok := a.users[c.Name]; !ok {
			return fmt.Errorf("%w: no user %q", ErrNotFound, c.Name)
		}
		if c.Name == RootUser && a.Enabled {
			return fmt.Errorf("%w: user root cannot be deleted while auth is enabled (paxosd auth disable first)", ErrInvalid)
		}
		delete(a.users, c.Name)
	case OpUserGrantRole, OpUserRevokeRole:
		u, ok := a.users[c.Name]
		if !ok {
			return fmt.Errorf("%w: no user %q", ErrNotFound, c.Name)
		}
		i, has := slices.BinarySearch(u.Roles, c.Role)
		nu := &AuthUser{Name: u.Name, Hash: u.Hash, Roles: slices.Clone(u.Roles)}
		if c.Op == OpUserGrantRole {
			if _, ok := a.roles[c.Role]; !ok {
				return fmt.Errorf("%w: no role %q (paxosd role add %s)", ErrNotFound, c.Role, c.Role)
			}
			if has {
				return nil // granted already: nothing to do
			}
			nu.Roles = slices.Insert(nu.Roles, i, c.Role)
		} else {
			if !has {
				return fmt.Errorf("%w: user %q does not have role %q", ErrNotFound, c.Name, c.Role)
			}
			nu.Roles = slices.Delete(nu.Roles, i, i+1)
		}
		a.users[c.Name] = nu
	case OpRoleAdd:
		if _, ok := a.roles[c.Name]; ok {
			return fmt.Errorf("%w: role %q exists already", ErrInvalid, c.Name)
		}
		a.roles[c.Name] = &AuthRole{Name: c.Name}
	case OpRoleDelete:
		if _, ok := a.roles[c.Name]; !ok {
			return fmt.Errorf("%w: no role %q", ErrNotFound, c.Name)
		}
		delete(a.roles, c.Name)
		for name, u := range a.users {
			if i, has := slices.BinarySearch(u.Roles, c.Name); has {
				a.users[name] = &AuthUser{Name: u.Name, Hash: u.Hash, Roles: slices.Delete(slices.Clone(u.Roles), i, i+1)}
			}
		}
	case OpRoleGrant, OpRoleRevoke:
		r, ok := a.roles[c.Name]
		if !ok {
			return fmt.Errorf("%w: no role %q", ErrNotFound, c.Name)
		}
		i, has := slices.BinarySearchFunc(r.Perms, c.Prefix, func(g RolePerm, p string) int { return strings.Compare(g.Prefix, p) })
		nr := &AuthRole{Name: r.Name, Perms: slices.Clone(r.Perms)}
		switch {
		case c.Op == OpRoleGrant && has:
			nr.Perms[i].Perm = c.Perm
		case c.Op == OpRoleGrant:
			nr.Perms = slices.Insert(nr.Perms, i, RolePerm{Prefix: c.Prefix, Perm: c.Perm})
		case !has:
			return fmt.Errorf("%w: role %q has no permission on prefix %q", ErrNotFound, c.Name, c.Prefix)
		default:
			nr.Perms = slices.Delete(nr.Perms, i, i+1)
		}
		a.roles[c.Name] = nr
	case OpAuthEnable:
		if _, ok := a.users[RootUser]; !ok {
			return fmt.Errorf("%w: auth enable refused: no root user yet (paxosd user add root)", ErrInvalid)
		}
		a.Enabled = true
	case OpAuthDisable:
		a.Enabled = false
	default:
		panic(fmt.Sprintf("statemachine: execAuth misses op %s", c.Op))
	}
	return nil
}

// checkOwner refuses, while auth is enabled, a command that acts on a
// session of another user: only its owner or root may keep it alive, use
// it or close it. The node that proposed the command checked it too, but
// against its own applied state, which may not know a session opened a
// moment ago elsewhere: here every replica decides alike. A session
// without an owner (opened before auth was enabled, or by a client that
// had not authenticated) is root's alone.
func (sm *StateMachine) checkOwner(c *Command) error {
	switch c.Op {
	case OpSessionKeepAlive, OpSessionClose, OpLockAcquire, OpLockRelease, OpCampaign, OpProclaim, OpResign:
	case OpPut:
		if c.SessionID == 0 {
			return nil
		}
		// An ephemeral key's put uses its session (ephemeral.go).
	case OpSessionKeepAliveBatch:
	default:
		return nil
	}
	if sm.level < LevelAuth || !sm.Auth().Enabled || c.User == RootUser {
		return nil
	}
	if c.Op == OpSessionKeepAliveBatch {
		// Every id of the batch must be the user's: one that is not
		// refuses the whole batch, which renews nothing.
		for _, id := range c.SessionIDs {
			if err := sm.checkSessionOwner(c, id); err != nil {
				return err
			}
		}
		return nil
	}
	return sm.checkSessionOwner(c, c.SessionID)
}

// checkSessionOwner is checkOwner's test of one session id.
func (sm *StateMachine) checkSessionOwner(c *Command, id uint64) error {
	s := sm.sessions.m[id]
	if s == nil || s.owner == c.User && c.User != "" {
		return nil // a missing session is answered as such
	}
	owner := s.owner
	if owner == "" {
		owner = "nobody (it was opened without authentication)"
	}
	who := c.User
	if who == "" {
		who = "a client that did not authenticate"
	}
	return fmt.Errorf("%w: session %d belongs to %s, not %s", ErrPermissionDenied, id, owner, who)
}

// SessionOwner returns the user that opened session id ("" when it was
// opened without authentication, or does not exist).
func (sm *StateMachine) SessionOwner(id uint64) string {
	if s := sm.sessions.m[id]; s != nil {
		return s.owner
	}
	return ""
}
