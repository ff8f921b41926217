package wal

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble"
)

// ErrDirInUse marks an Open of a data directory that another process (or
// another Store in this one) has open: Pebble's LOCK file is held.
var ErrDirInUse = errors.New("wal: data directory in use")

// DamagedError reports a data directory that cannot be read as a store:
// Pebble's files are corrupt, truncated or missing, or a record of ours does
// not decode. It matches ErrCorrupt with errors.Is and unwraps to the cause.
//
// Its message is one line that names the directory and says what to do,
// because it is what an operator sees when `paxosd serve` refuses to start.
// The node must not vote from such a directory: it may have lost promises
// it made, and voting without them can let two values be chosen for one
// slot.
type DamagedError struct {
	Dir string
	Err error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("wal: data directory %s is damaged (%s); the node must not vote from it: "+
		"restore the directory from a backup, or move it aside and rebuild this node under a new node id",
		e.Dir, oneLine(strings.TrimPrefix(e.Err.Error(), "wal: ")))
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *DamagedError) Is(target error) bool { return target == ErrCorrupt }

func (e *DamagedError) Unwrap() error { return e.Err }

// openError turns an error from pebble.Open of dir into one that says what
// happened to the directory: in use, damaged, or (anything else, such as an
// I/O or permission error) the plain cause.
func openError(dir string, err error) error {
	var of *openFatal
	switch {
	case errors.As(err, &of):
		return err // it names dir already
	case lockHeld(err):
		return fmt.Errorf("%w: %s is locked by another process (is another paxosd running with this data directory?): %w",
			ErrDirInUse, dir, err)
	case pebble.IsCorruptionError(err) || missingFile(err) || errors.As(err, new(*pebblePanic)):
		return &DamagedError{Dir: dir, Err: err}
	}
	return fmt.Errorf("wal: opening %s: %w", dir, err)
}

// damaged marks err as a DamagedError of dir if it is a corruption error
// that is not one already; other errors pass through unchanged.
func damaged(dir string, err error) error {
	var de *DamagedError
	if err == nil || !errors.Is(err, ErrCorrupt) || errors.As(err, &de) {
		return err
	}
	return &DamagedError{Dir: dir, Err: err}
}

// lockHeld reports whether err is Pebble failing to take its LOCK file:
// fcntl's bare EAGAIN (or EACCES, on some systems) when another process
// holds it, or Pebble's own check within this process. An error creating
// the file (a permission problem) is an *os.PathError, and not this.
func lockHeld(err error) bool {
	var errno syscall.Errno
	var pathErr *os.PathError
	if errors.As(err, &errno) && !errors.As(err, &pathErr) && (errno == syscall.EAGAIN || errno == syscall.EACCES) {
		return true
	}
	return strings.Contains(err.Error(), "lock held by current process")
}

// missingFile reports whether err is Pebble finding a file its MANIFEST
// (or a marker) names missing, or of another size than recorded: files
// deleted or truncated from under it. In a directory Open created itself
// (ensureDir) nothing else is ever missing.
func missingFile(err error) bool {
	msg := err.Error()
	return errors.Is(err, os.ErrNotExist) || strings.Contains(msg, "size mismatch") ||
		strings.Contains(msg, "unknown to the objstorage provider")
}

// oneLine joins the lines of s, so that an error prints as one line.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}
