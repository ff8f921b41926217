package wal

import (
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/vfs"
)

// ensureDir creates dir (and missing ancestors) durably. A directory's
// existence is an entry in its parent, which only a sync of the parent
// makes durable. Pebble v1.1 creates the data directory with MkdirAll and
// syncs the directory itself, never its parent: on a fresh node a crash
// right after the first Saves could lose the whole directory, identity and
// promises included. The crash test found exactly that.
func ensureDir(fs vfs.FS, dir string) error {
	// Collect the missing components, deepest first.
	var missing []string
	for d := dir; ; {
		_, err := fs.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: data directory %s: %w", dir, err)
		}
		missing = append(missing, d)
		parent := fs.PathDir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("wal: creating data directory %s: %w", dir, err)
	}
	for _, d := range missing {
		if err := syncDir(fs, fs.PathDir(d)); err != nil {
			return fmt.Errorf("wal: creating data directory %s: %w", dir, err)
		}
	}
	return nil
}

func syncDir(fs vfs.FS, dir string) error {
	f, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// SnapshotFilesBytes returns the size of the largest snapshot file in the
// data directory dir, or 0 if it holds none (or cannot be read). It reads
// no snapshot and opens no store: it is for a process that sizes its
// memory before the node it starts decodes its state, and a snapshot's
// encoding is its key and value bytes plus a few bytes per key. The
// largest file may be a transfer's staged snapshot or a write a crash cut
// short, which the store deletes at Open: an estimate, on the high side.
func SnapshotFilesBytes(dir string) uint64 {
	fs := vfs.Default
	snapDir := fs.PathJoin(dir, snapDirName)
	names, err := fs.List(snapDir)
	if err != nil {
		return 0
	}
	var largest uint64
	for _, name := range names {
		var gen uint64
		if _, err := fmt.Sscanf(name, "%016x.snap", &gen); err != nil {
			continue
		}
		if fi, err := fs.Stat(fs.PathJoin(snapDir, name)); err == nil && fi.Size() > 0 {
			largest = max(largest, uint64(fi.Size()))
		}
	}
	return largest
}
