package statemachine

import (
	"errors"
	"reflect"
	"testing"
)

// authHarness is a state machine at LevelAuth.
func authHarness(t testing.TB) *smHarness {
	h := newSMHarness(t, SMOptions{})
	h.sm.SetBootstrapMembers(testBoot) // as the node does: LevelMax snapshots hold it
	atLevel(h, LevelMax)               // every behaviour auth checks: ephemeral keys, keep-alive batches
	return h
}

func (h *smHarness) authOK(c Command) {
	h.t.Helper()
	if r := h.do(c); r.Err != nil {
		h.t.Fatalf("%s: %v", c.String(), r.Err)
	}
}

func userAdd(name, hash string) Command {
	return Command{Op: OpUserAdd, Name: name, Value: []byte(hash)}
}
func roleGrant(role, prefix string, p Perm) Command {
	return Command{Op: OpRoleGrant, Name: role, Prefix: prefix, Perm: p}
}

// TestAuthBelowLevel: below LevelAuth every auth command is refused as
// invalid and changes nothing, as an older build refuses the unknown op;
// a session opened with a user records no owner.
func TestAuthBelowLevel(t *testing.T) {
	h := newSMHarness(t, SMOptions{})
	atLevel(h, LevelTxn)
	before := h.sm.Hash()
	for _, c := range []Command{userAdd("root", "h"), {Op: OpAuthEnable}, {Op: OpRoleAdd, Name: "r"}} {
		if r := h.do(cs(1, h.slotSeq(), c)); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("%s below level %d: %v, want ErrInvalid", c.String(), LevelAuth, r.Err)
		}
	}
	if len(h.sm.Auth().Users()) != 0 {
		t.Fatal("a user was added below the level")
	}
	r := h.do(cs(2, 1, Command{Op: OpSessionOpen, TTLMs: 5000, User: "alice"}))
	if r.Err != nil || h.sm.SessionOwner(r.Session.ID) != "" {
		t.Fatalf("session below level: %v, owner %q", r.Err, h.sm.SessionOwner(r.Session.ID))
	}
	_ = before
}

func (h *smHarness) slotSeq() uint64 { return uint64(h.slot) + 1 }

// TestAuthCommands walks the user and role commands and the checks
// Allowed makes from their state.
func TestAuthCommands(t *testing.T) {
	h := authHarness(t)
	if r := h.do(Command{Op: OpAuthEnable}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("auth enable without root: %v, want ErrInvalid", r.Err)
	}
	h.authOK(userAdd("root", "roothash"))
	h.authOK(userAdd("alice", "alicehash"))
	if r := h.do(userAdd("alice", "x")); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("adding alice twice: %v", r.Err)
	}
	if r := h.do(userAdd("bad:name", "x")); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("a name with ':': %v", r.Err)
	}
	if r := h.do(Command{Op: OpUserGrantRole, Name: "alice", Role: "app"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("granting a missing role: %v", r.Err)
	}
	h.authOK(Command{Op: OpRoleAdd, Name: "app"})
	h.authOK(roleGrant("app", "app/", PermReadWrite))
	h.authOK(roleGrant("app", "pub/", PermRead))
	h.authOK(Command{Op: OpUserGrantRole, Name: "alice", Role: "app"})
	h.authOK(Command{Op: OpAuthEnable})

	a := h.sm.Auth()
	checks := []struct {
		user, key string
		p         Perm
		want      bool
	}{
		{"alice", "app/x", PermWrite, true},
		{"alice", "app/x", PermRead, true},
		{"alice", "app/", PermReadWrite, true},
		{"alice", "app", PermRead, false}, // "app" is not under "app/"
		{"alice", "other/x", PermWrite, false},
		{"alice", "pub/x", PermRead, true},
		{"alice", "pub/x", PermWrite, false},
		{"alice", "", PermRead, false}, // a list of everything
		{"root", "other/x", PermWrite, true},
		{"bob", "app/x", PermRead, false},
	}
	for _, c := range checks {
		if got := a.Allowed(c.user, c.key, c.p); got != c.want {
			t.Errorf("Allowed(%s, %q, %s) = %v, want %v", c.user, c.key, c.p, got, c.want)
		}
	}
	if !a.Enabled {
		t.Fatal("auth not enabled")
	}
	if r := h.do(Command{Op: OpUserDelete, Name: "root"}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("deleting root while enabled: %v", r.Err)
	}

	// Copy on write: the state handed out before a change keeps its view.
	h.authOK(Command{Op: OpUserRevokeRole, Name: "alice", Role: "app"})
	if !a.Allowed("alice", "app/x", PermWrite) {
		t.Fatal("a published AuthState changed under its reader")
	}
	if h.sm.Auth().Allowed("alice", "app/x", PermWrite) {
		t.Fatal("revoking the role left alice her permission")
	}
	h.authOK(Command{Op: OpUserGrantRole, Name: "alice", Role: "app"})
	h.authOK(Command{Op: OpRoleRevoke, Name: "app", Prefix: "app/"})
	if h.sm.Auth().Allowed("alice", "app/x", PermRead) || !h.sm.Auth().Allowed("alice", "pub/y", PermRead) {
		t.Fatal("role revoke took the wrong grant")
	}
	h.authOK(Command{Op: OpRoleDelete, Name: "app"})
	if u, _ := h.sm.Auth().User("alice"); len(u.Roles) != 0 {
		t.Fatalf("deleting role app left alice %v", u.Roles)
	}
	h.authOK(Command{Op: OpAuthDisable})
	h.authOK(Command{Op: OpUserDelete, Name: "root"})
	if _, ok := h.sm.Auth().User("root"); ok {
		t.Fatal("root still exists")
	}
}

// TestAuthSnapshot: users, roles, the switch and sessions' owners survive
// a snapshot, and are in the agreement hash.
func TestAuthSnapshot(t *testing.T) {
	h := authHarness(t)
	h.authOK(userAdd("root", "roothash"))
	h.authOK(userAdd("alice", "alicehash"))
	h.authOK(Command{Op: OpRoleAdd, Name: "app"})
	h.authOK(roleGrant("app", "app/", PermReadWrite))
	h.authOK(Command{Op: OpUserGrantRole, Name: "alice", Role: "app"})
	h.authOK(Command{Op: OpAuthEnable})
	r := h.do(cs(7, 1, Command{Op: OpSessionOpen, TTLMs: 5000, User: "alice"}))
	if r.Err != nil || h.sm.SessionOwner(r.Session.ID) != "alice" {
		t.Fatalf("session open: %v, owner %q", r.Err, h.sm.SessionOwner(r.Session.ID))
	}
	data, err := h.sm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	got, err := RestoreStateMachine(SMOptions{}, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Auth().Users(), h.sm.Auth().Users()) || !reflect.DeepEqual(got.Auth().Roles(), h.sm.Auth().Roles()) ||
		!got.Auth().Enabled || got.SessionOwner(r.Session.ID) != "alice" {
		t.Fatalf("restored auth differs: users %+v roles %+v", got.Auth().Users(), got.Auth().Roles())
	}
	if got.Hash() != h.sm.Hash() {
		t.Fatal("restored state hashes differently")
	}
	before := h.sm.Hash()
	h.authOK(roleGrant("app", "more/", PermRead))
	if h.sm.Hash() == before {
		t.Fatal("a role grant does not change the hash")
	}
}

// TestAuthSessionOwner: while auth is enabled only a session's owner (or
// root) may use it; the state machine decides, so that a node that does
// not know the session yet cannot let another user through.
func TestAuthSessionOwner(t *testing.T) {
	h := authHarness(t)
	h.authOK(userAdd("root", "h"))
	h.authOK(Command{Op: OpAuthEnable})
	r := h.do(cs(1, 1, Command{Op: OpSessionOpen, TTLMs: 5000, User: "alice"}))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	id := r.Session.ID
	for _, c := range []Command{
		{Op: OpSessionKeepAlive, SessionID: id, User: "bob"},
		{Op: OpLockAcquire, SessionID: id, Name: "app/l", User: "bob"},
		{Op: OpCampaign, SessionID: id, Name: "app/e", User: ""},
		{Op: OpSessionClose, SessionID: id, User: "bob"},
		{Op: OpPut, Key: "app/x", Value: []byte("v"), SessionID: id, User: "bob"}, // an ephemeral key on it
		{Op: OpSessionKeepAliveBatch, SessionIDs: []uint64{id}, User: "bob"},
	} {
		if r := h.do(cs(2, h.slotSeq(), c)); !errors.Is(r.Err, ErrPermissionDenied) {
			t.Fatalf("%s by %q: %v, want ErrPermissionDenied", c.String(), c.User, r.Err)
		}
	}
	if _, ok := h.sm.Session(id); !ok {
		t.Fatal("the session was closed by another user")
	}
	if r := h.do(cs(1, 2, Command{Op: OpLockAcquire, SessionID: id, Name: "app/l", User: "alice"})); r.Err != nil {
		t.Fatalf("alice locks with her session: %v", r.Err)
	}
	if r := h.do(cs(1, 3, Command{Op: OpGet, Key: "app/x"})); r.Found {
		t.Fatal("bob's refused put on alice's session wrote app/x")
	}
	if r := h.do(cs(1, 4, Command{Op: OpPut, Key: "app/x", Value: []byte("v"), SessionID: id, User: "alice"})); r.Err != nil {
		t.Fatalf("alice puts an ephemeral key on her session: %v", r.Err)
	}
	if r := h.do(cs(3, 1, Command{Op: OpSessionClose, SessionID: id, User: RootUser})); r.Err != nil {
		t.Fatalf("root closes alice's session: %v", r.Err)
	}
}
