package service

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/paxosd/paxosd/statemachine"
)

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
