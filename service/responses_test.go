package service

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/statemachine"
	"github.com/paxosd/paxosd/wire"
)

// TestOpNumbers: statemachine.Op and wire.Op number the operations alike,
// so service converts one to the other with a cast: every command the log
// carries is either the wire op of the same name or internal (unknown to
// the wire).
func TestOpNumbers(t *testing.T) {
	internal := []statemachine.Op{statemachine.OpClock, statemachine.OpStateHash, statemachine.OpClusterID,
		statemachine.OpVoter, statemachine.OpQuotaDefault, statemachine.OpLevel}
	for n := 1; n < 256; n++ {
		sm, w := statemachine.Op(n), wire.Op(n)
		if strings.HasPrefix(sm.String(), "op(") {
			continue // not a command
		}
		if slices.Contains(internal, sm) {
			if w.Valid() {
				t.Errorf("internal op %d (%v) is wire op %v", n, sm, w)
			}
			continue
		}
		if got, want := strings.ToLower(w.String()), strings.ReplaceAll(sm.String(), "-", ""); !w.Valid() || got != want {
			t.Errorf("op %d: state machine %v, wire %v", n, sm, w)
		}
	}
}

// TestTxnNumbers: the transaction's compare targets, results and
// operation types are numbered alike in statemachine and wire, so
// service converts them with a cast (txn.go).
func TestTxnNumbers(t *testing.T) {
	targets := map[statemachine.CompareTarget]wire.CompareTarget{
		statemachine.CompareValue: wire.CompareValue, statemachine.CompareVersion: wire.CompareVersion,
		statemachine.CompareCreate: wire.CompareCreate, statemachine.CompareMod: wire.CompareMod,
		statemachine.CompareExists: wire.CompareExists, statemachine.CompareToken: wire.CompareToken,
	}
	for s, w := range targets {
		if uint8(s) != uint8(w) {
			t.Errorf("compare target %d is wire %d", s, w)
		}
	}
	results := map[statemachine.CompareResult]wire.CompareResult{
		statemachine.CompareEqual: wire.CompareEqual, statemachine.CompareNotEqual: wire.CompareNotEqual,
		statemachine.CompareLess: wire.CompareLess, statemachine.CompareGreater: wire.CompareGreater,
	}
	for s, w := range results {
		if uint8(s) != uint8(w) {
			t.Errorf("compare result %d is wire %d", s, w)
		}
	}
	types := map[statemachine.TxnOpType]wire.TxnOpType{
		statemachine.TxnPut: wire.TxnPut, statemachine.TxnDelete: wire.TxnDelete, statemachine.TxnGet: wire.TxnGet,
	}
	for s, w := range types {
		if uint8(s) != uint8(w) {
			t.Errorf("txn op type %d is wire %d", s, w)
		}
	}
}

// sameSentinels is an error as a snapshot restores it (statemachine's
// restoredError): the original's message, wrapping the snapshot sentinels
// the original matches.
type sameSentinels struct {
	msg  string
	errs []error
}

func (e *sameSentinels) Error() string   { return e.msg }
func (e *sameSentinels) Unwrap() []error { return e.errs }

// TestSnapshotErrorsWire: the snapshot's table of sentinels covers every
// error the wire mapping knows, so a stored Result's error restored from a
// snapshot (its message and the snapshot sentinels it matches) gets the
// same wire response as the original; statemachine's TestSnapshotErrors
// checks that message and sentinels survive.
func TestSnapshotErrorsWire(t *testing.T) {
	sentinels := statemachine.SnapshotSentinels()
	for _, ec := range errorCodes {
		if !slices.Contains(sentinels, ec.err) {
			t.Errorf("%v has a wire code but no snapshot number", ec.err)
		}
	}
	var errs []error
	for i, s := range sentinels {
		errs = append(errs, fmt.Errorf("wrapped %d: %w", i, s), fmt.Errorf("%w: %w: both", statemachine.ErrInvalid, s))
	}
	errs = append(errs, errors.New("no sentinel at all"))
	for _, err := range errs {
		restored := &sameSentinels{msg: err.Error()}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				restored.errs = append(restored.errs, s)
			}
		}
		for _, op := range []statemachine.Op{statemachine.OpPut, statemachine.OpLockAcquire} {
			x := resultResponse(op, statemachine.Result{Err: err, Revision: 7})
			y := resultResponse(op, statemachine.Result{Err: restored, Revision: 7})
			if !reflect.DeepEqual(x, y) {
				t.Fatalf("error %q: wire response %+v, after restore %+v", err, x, y)
			}
		}
	}
}
