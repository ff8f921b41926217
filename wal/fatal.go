package wal

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
)

// Pebble v1.1 calls Logger.Fatalf, which must not return, when a write it
// cannot undo fails: a WAL append or sync under a commit, a MANIFEST write
// (at Open, or after a flush or compaction). On a full or failing disk that
// is the normal way for a node to find out. What happens next depends on
// the goroutine Fatalf runs on:
//
//   - Inside a Store method or Open, on the caller's goroutine: it panics
//     with a *FatalError, which the caller can recover (the node's WAL
//     writer turns it into one error line and stops the node; Open returns
//     it as an error). Nothing was acknowledged that was not durable.
//   - On one of Pebble's own goroutines (a flush or compaction committing
//     to the MANIFEST): nobody can recover there, and an unrecovered panic
//     would print a stack trace over the reason. It prints one line to
//     stderr and ends the process with status 1 instead (backgroundFatal).
//     The store's state on disk is unknown from then on, so going on is not
//     an option either way.

// FatalError is the panic value of a fatal Pebble error on the caller's
// goroutine (see above). It unwraps to the I/O error Pebble reported.
type FatalError struct {
	msg string // Pebble's message
	err error  // the first error among Fatalf's arguments, if any
}

func (e *FatalError) Error() string { return "wal: pebble fatal error: " + e.msg }

func (e *FatalError) Unwrap() error { return e.err }

func newFatalError(format string, args ...any) *FatalError {
	fe := &FatalError{msg: oneLine(fmt.Sprintf(format, args...))}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.err = err
			break
		}
	}
	return fe
}

// pebbleFatal is quietLogger.Fatalf.
func pebbleFatal(format string, args ...any) {
	fe := newFatalError(format, args...)
	if onCallerGoroutine() {
		panic(fe)
	}
	(*backgroundFatal.Load())(fe)
	panic(fe) // backgroundFatal must not return; if a test's does, stop here
}

// backgroundFatal ends the process after a fatal error on one of Pebble's
// goroutines. Tests replace it; it is atomic because Pebble goroutines of
// stores left open by other tests may read it meanwhile.
var backgroundFatal atomic.Pointer[func(*FatalError)]

func init() {
	exit := func(fe *FatalError) {
		fmt.Fprintf(os.Stderr, "%s (the data directory can no longer be written: disk full or failing?); stopping\n", fe)
		os.Exit(1)
	}
	backgroundFatal.Store(&exit)
}

// walFuncPrefix is this package's prefix in function names, e.g.
// "github.com/paxosd/paxosd/wal.".
var walFuncPrefix = strings.TrimSuffix(runtime.FuncForPC(reflect.ValueOf(Open).Pointer()).Name(), "Open")

// onCallerGoroutine reports whether a Store method or Open is on the
// current goroutine's stack: then a caller of this package is there to
// recover a panic.
func onCallerGoroutine() bool {
	pcs := make([]uintptr, 256)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if name := strings.TrimPrefix(f.Function, walFuncPrefix); name != f.Function &&
			(name == "Open" || strings.HasPrefix(name, "(*Store).")) {
			return true
		}
		if !more {
			return false
		}
	}
}

// openPebble is pebble.Open, returning a fatal error raised inside it (a
// MANIFEST that cannot be written or synced: a full or failing disk at
// startup) as an error instead of a panic. Any other panic inside
// pebble.Open is returned as an error too: Pebble v1.1 can crash on a
// directory that is missing files, and an operator should read that the
// directory is damaged, not a stack trace.
func openPebble(dir string, po *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case *FatalError: // Logger.Fatalf
			err = &openFatal{dir: dir, fe: r}
		case runtime.Error: // a bug met on a damaged directory
			err = &pebblePanic{val: r}
		case error: // Pebble's own panic on an I/O error it cannot undo
			err = &openFatal{dir: dir, fe: &FatalError{msg: oneLine(r.Error()), err: r}}
		default:
			err = &pebblePanic{val: r}
		}
	}()
	return pebble.Open(dir, po)
}

// pebblePanic is a panic inside pebble.Open other than a *FatalError: a
// Pebble bug met on a damaged directory. openError reports it as damage.
type pebblePanic struct{ val any }

func (p *pebblePanic) Error() string { return fmt.Sprintf("pebble crashed reading it: %v", p.val) }

// initGuarded is s.init, returning a fatal error raised inside it (the
// identity record of a new store cannot be written) as an error; fatal
// reports that case, in which the DB must not be closed: its commit
// pipeline is wedged.
func (s *Store) initGuarded() (fatal bool, err error) {
	defer func() {
		var fe *FatalError
		fatal = errors.As(err, &fe)
	}()
	defer recoverFatal(s.dir, &err) // runs first; recover works only in a deferred call itself
	return false, s.init()
}

// recoverFatal, deferred, turns a *FatalError panic into *err, an error
// naming dir. Any other panic (a bug) goes on.
func recoverFatal(dir string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	fe, ok := r.(*FatalError)
	if !ok {
		panic(r)
	}
	*err = &openFatal{dir: dir, fe: fe}
}

// openFatal words a fatal error during Open for the operator.
type openFatal struct {
	dir string
	fe  *FatalError
}

func (e *openFatal) Error() string {
	return fmt.Sprintf("wal: cannot write data directory %s (disk full or failing?): %s", e.dir, e.fe.msg)
}

func (e *openFatal) Unwrap() error { return e.fe }
