package service

import (
	"testing"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestCommandFieldsLeaveOutOtherOpsFields: a field appended for one op
// reaches the log only with that op. A put carrying session_ids (or a
// transaction's compares, a role, a permission) from a careless client
// would otherwise be encoded with more fields than an older member
// decodes: during a rolling upgrade the newer members would apply it and
// the older ones refuse it, and their states would part. (Found by a
// review of the keep-alive batches.)
func TestCommandFieldsLeaveOutOtherOpsFields(t *testing.T) {
	stray := wire.Request{ClientID: 1, Seq: 1, Key: "k", Value: []byte("v"),
		SessionIDs: []uint64{5}, Role: "r", Perm: wire.PermReadWrite,
		Compares: []wire.Compare{{Target: wire.CompareExists, Result: wire.CompareEqual, Key: "x"}}}
	put := stray
	put.Op = wire.OpPut
	plain := wire.Request{Op: wire.OpPut, ClientID: 1, Seq: 1, Key: "k", Value: []byte("v")}
	c, want := commandFields(&put), commandFields(&plain)
	if got, w := statemachine.EncodeCommand(&c), statemachine.EncodeCommand(&want); string(got) != string(w) {
		t.Errorf("a put with stray fields encodes as %x, want the plain put's %x", got, w)
	}
	// Each op keeps its own.
	for _, tc := range []struct {
		op   wire.Op
		keep func(statemachine.Command) bool
	}{
		{wire.OpSessionKeepAliveBatch, func(c statemachine.Command) bool { return len(c.SessionIDs) == 1 }},
		{wire.OpTxn, func(c statemachine.Command) bool { return len(c.Compares) == 1 }},
		{wire.OpUserGrantRole, func(c statemachine.Command) bool { return c.Role == "r" }},
		{wire.OpRoleGrant, func(c statemachine.Command) bool { return c.Perm == statemachine.PermReadWrite }},
	} {
		q := stray
		q.Op = tc.op
		if c := commandFields(&q); !tc.keep(c) {
			t.Errorf("%s lost its own field: %+v", tc.op, c)
		}
	}
}
