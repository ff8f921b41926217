//go:build !linux

package bench

import "os"

// fdatasync: outside Linux, a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }

// filesystemOf is only known on Linux.
func filesystemOf(string) string { return "unknown" }
