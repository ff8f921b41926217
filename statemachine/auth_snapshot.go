package statemachine

import (
	"slices"
	"strings"
)

// The auth state in a snapshot: the envelope's ninth element (format
// version 7, written from LevelAuth on, see snapshot.go).

// SnapAuth is the auth state (auth.go) and the owners of the sessions
// that have one. It is part of the agreement hash: members that disagree
// on who may do what must be flagged like any other divergence.
type SnapAuth struct {
	_msgpack struct{} `msgpack:",as_array"`

	Enabled bool
	// Users by name, Roles by name, each role's grants by prefix.
	Users []SnapUser
	Roles []SnapRole
	// Owners are the open sessions that have an owner, by session id.
	Owners []SnapOwner
}

// SnapUser is an AuthUser.
type SnapUser struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name  string
	Hash  []byte
	Roles []string
}

// SnapRole is an AuthRole.
type SnapRole struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name  string
	Perms []SnapPerm
}

// SnapPerm is a RolePerm.
type SnapPerm struct {
	_msgpack struct{} `msgpack:",as_array"`

	Prefix string
	Perm   uint8
}

// SnapOwner says that session Session belongs to User.
type SnapOwner struct {
	_msgpack struct{} `msgpack:",as_array"`

	Session uint64
	User    string
}

// snapAuth returns the auth section of a snapshot of sm; sids are the
// open sessions' ids, in order.
func (sm *StateMachine) snapAuth(sids []uint64) SnapAuth {
	a := sm.Auth()
	out := SnapAuth{Enabled: a.Enabled, Users: []SnapUser{}, Roles: []SnapRole{}, Owners: []SnapOwner{}}
	for _, u := range a.Users() {
		out.Users = append(out.Users, SnapUser{Name: u.Name, Hash: nonNil(u.Hash), Roles: nonNilStrings(u.Roles)})
	}
	for _, r := range a.Roles() {
		sr := SnapRole{Name: r.Name, Perms: make([]SnapPerm, len(r.Perms))}
		for i, g := range r.Perms {
			sr.Perms[i] = SnapPerm{Prefix: g.Prefix, Perm: uint8(g.Perm)}
		}
		out.Roles = append(out.Roles, sr)
	}
	for _, id := range sids {
		if o := sm.sessions.m[id].owner; o != "" {
			out.Owners = append(out.Owners, SnapOwner{Session: id, User: o})
		}
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// restoreAuth rebuilds the auth state from st.Auth, after the sessions.
func (sm *StateMachine) restoreAuth(st *SnapshotState) error {
	sa := &st.Auth
	if !sa.Enabled && len(sa.Users) == 0 && len(sa.Roles) == 0 && len(sa.Owners) == 0 {
		return nil
	}
	a := &AuthState{Enabled: sa.Enabled, users: map[string]*AuthUser{}, roles: map[string]*AuthRole{}}
	for i, r := range sa.Roles {
		if validateAuthName(r.Name, "role") != nil || i > 0 && r.Name <= sa.Roles[i-1].Name {
			return badSnapshot("role %q: bad name, or out of order", r.Name)
		}
		ar := &AuthRole{Name: r.Name, Perms: make([]RolePerm, len(r.Perms))}
		for j, g := range r.Perms {
			if g.Perm < uint8(PermRead) || g.Perm > uint8(PermReadWrite) || j > 0 && g.Prefix <= r.Perms[j-1].Prefix {
				return badSnapshot("role %q: permission %d on %q: bad, or out of order", r.Name, g.Perm, g.Prefix)
			}
			ar.Perms[j] = RolePerm{Prefix: g.Prefix, Perm: Perm(g.Perm)}
		}
		a.roles[r.Name] = ar
	}
	for i, u := range sa.Users {
		if validateAuthName(u.Name, "user") != nil || i > 0 && u.Name <= sa.Users[i-1].Name {
			return badSnapshot("user %q: bad name, or out of order", u.Name)
		}
		for j, rn := range u.Roles {
			if a.roles[rn] == nil || j > 0 && rn <= u.Roles[j-1] {
				return badSnapshot("user %q: role %q: missing, or out of order", u.Name, rn)
			}
		}
		var hash []byte
		if len(u.Hash) > 0 {
			hash = slices.Clone(u.Hash)
		}
		a.users[u.Name] = &AuthUser{Name: u.Name, Hash: hash, Roles: slices.Clone(u.Roles)}
		if len(u.Roles) == 0 {
			a.users[u.Name].Roles = nil
		}
	}
	if a.Enabled && a.users[RootUser] == nil {
		return badSnapshot("auth enabled without a root user")
	}
	var prev uint64
	for _, o := range sa.Owners {
		s := sm.sessions.m[o.Session]
		if s == nil || o.Session <= prev || o.User == "" || strings.ContainsRune(o.User, 0) {
			return badSnapshot("owner of session %d: no such session, out of order, or no user", o.Session)
		}
		prev = o.Session
		s.owner = o.User
	}
	sm.auth = a
	return nil
}
