package wal

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
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
		"restore the directory from a backup, or move it aside and start the node with --rejoin to rebuild it from the other members",
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
		return &inUseError{dir: dir, err: err}
	case pebble.IsCorruptionError(err) || missingFile(err) || errors.As(err, new(*pebblePanic)):
		return &DamagedError{Dir: dir, Err: err}
	}
	return fmt.Errorf("wal: opening %s: %w", dir, err)
}

// inUseError reports a data directory whose LOCK another process holds.
type inUseError struct {
	dir string
	err error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("wal: data directory %s is in use (is another paxosd running with this data directory?): %v", e.dir, e.err)
}

// Is makes errors.Is(err, ErrDirInUse) hold.
func (e *inUseError) Is(target error) bool { return target == ErrDirInUse }

func (e *inUseError) Unwrap() error { return e.err }

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

// checkOrphans refuses a directory in which Pebble finds no database but
// which holds an sstable or a non-empty WAL file: what is left of a store
// whose manifest marker (or more) is gone. pebble.Open would create a new,
// empty database beside them, Open would record the identity in it, and
// the node would vote again with none of its promises. A directory with
// nothing in it, or with only what an interrupted creation leaves (a
// MANIFEST, OPTIONS, an empty WAL: the identity record is the store's
// first write), is a new store.
func checkOrphans(fs vfs.FS, dir string) error {
	desc, err := pebble.Peek(dir, fs)
	if err != nil || desc.Exists {
		return nil // pebble.Open reports what is wrong, if anything
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil
	}
	var found []string
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, ".sst"):
			found = append(found, n)
		case strings.HasSuffix(n, ".log"):
			if st, err := fs.Stat(fs.PathJoin(dir, n)); err == nil && st.Size() > 0 {
				found = append(found, n)
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	return &DamagedError{Dir: dir, Err: fmt.Errorf("it holds Pebble data (%s) but no database: its manifest marker or MANIFEST is gone", strings.Join(found, ", "))}
}
