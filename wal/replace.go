package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/vfs"
)

// Replacing a data directory by another (paxosd serve --force-new-cluster,
// service/forcenew.go): the new store is written completely in a staged
// directory beside it, closed, and then swapped in by two renames, the
// old directory kept beside it. A crash before the first rename leaves
// the old directory as it was (the staged one is removed at the next
// try); a crash between the two leaves no directory at dir, which the
// caller tells apart (DirExists of both) and reports: nothing is lost, the
// old state is whole under its kept name.

// DirExists reports whether path exists (as anything).
func DirExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// RemoveDir removes dir and everything under it, if it exists: a staged
// store a crash left behind.
func RemoveDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("wal: removing %s: %w", dir, err)
	}
	return nil
}

// ReplaceDir makes staged (a closed store) the data directory dir, and
// moves dir's old contents to keep, which must not exist. The parent
// directory is synced after the renames, so the swap is durable when it
// returns.
func ReplaceDir(dir, staged, keep string) error {
	if ok, err := DirExists(keep); err != nil || ok {
		return fmt.Errorf("wal: %s exists already (%v): remove it or move it away first", keep, err)
	}
	if err := os.Rename(dir, keep); err != nil {
		return fmt.Errorf("wal: moving the old data directory aside: %w", err)
	}
	if err := os.Rename(staged, dir); err != nil {
		return fmt.Errorf("wal: moving the new data directory into place (the old one is whole in %s): %w", keep, err)
	}
	if err := syncDir(vfs.Default, filepath.Dir(filepath.Clean(dir))); err != nil {
		return fmt.Errorf("wal: syncing the parent of %s: %w", dir, err)
	}
	return nil
}
