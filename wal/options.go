package wal

import (
	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Options configures a Store. The zero value is valid: the real disk, a
// silent Pebble, and every Save synced.
type Options struct {
	// FS is the filesystem. Default (nil): the real disk, vfs.Default. Tests
	// pass vfs.NewStrictMem() to drop unsynced writes at a simulated crash.
	FS vfs.FS
	// Logger receives Pebble's own log lines. Default (nil): they are
	// discarded, so Pebble prints nothing to stdout or stderr. Pebble calls
	// Fatalf when it cannot go on (for example, a failed WAL write or
	// sync); Fatalf must not return. The default logger panics there with
	// a *FatalError when a Store method or Open is on the goroutine, and
	// otherwise prints one line and exits (see fatal.go).
	Logger pebble.Logger
	// NoSync commits Saves without fsync. UNSAFE: a machine crash can then
	// lose a promise or an acceptance that was already sent, which breaks
	// Paxos. For tests and benchmarks only. Default false.
	NoSync bool
	// MustExist makes Open fail with an error matching ErrNoStore, creating
	// nothing, when dir holds no store. A node that has voted must never
	// start over with an empty directory by accident (see ErrNoStore).
	MustExist bool
	// MemTableBytes bounds a memtable, and so a Pebble log file. Default
	// 8 MiB. Tests on vfs.NewStrictMem shrink it: that filesystem copies a
	// whole file at each sync.
	MemTableBytes int
}

// EnsureDefaults fills nil fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	if o.MemTableBytes <= 0 {
		o.MemTableBytes = memTableBytes
	}
}

// Validate reports the first problem with o. Every combination of fields is
// currently valid; Validate exists so that callers check options uniformly
// and future fields have a place to be checked.
func (o *Options) Validate() error { return nil }

// Pebble tuning. The store holds a few small records plus the accepted log,
// which is written once per slot (rewritten only by a new leader's Phase 2)
// and read back at restart and for catch-up. It is write-heavy and small.
const (
	// memTableBytes bounds a memtable. A batch of up to 1 MiB of commands
	// per slot with a window of a few hundred slots fits a few memtables;
	// larger memtables only lengthen recovery (the WAL replays into them).
	memTableBytes = 8 << 20
	// blockCacheBytes is small: reads are the restart scan and catch-up of
	// recent slots, which the memtables mostly serve.
	blockCacheBytes = 8 << 20
	// maxOpenFiles bounds file descriptors; the LSM stays a handful of
	// tables unless the log grows very long.
	maxOpenFiles = 256
	// l0CompactionTables is how many tables L0 holds before a compaction
	// (Pebble's default 4), l0StopWritesTables how many stop the writes
	// until compactions catch up (default 12), lBaseMaxBytes the size of
	// the base level (default 64 MiB). See pebbleOptions.
	l0CompactionTables = 16
	l0StopWritesTables = 64
	lBaseMaxBytes      = 512 << 20
)

// pebbleOptions translates o (after EnsureDefaults) into Pebble options. The
// caller must Unref the returned options' Cache after Open (Pebble takes
// its own reference).
func (o *Options) pebbleOptions() *pebble.Options {
	po := &pebble.Options{
		FS:           o.FS,
		Logger:       o.Logger,
		Cache:        pebble.NewCache(blockCacheBytes),
		MemTableSize: uint64(o.MemTableBytes),
		MaxOpenFiles: maxOpenFiles,
		// New stores start at the newest stable format of the Pebble in
		// go.mod; an existing store is ratcheted up to it, never down.
		FormatMajorVersion: pebble.FormatNewest,
		ErrorIfNotExists:   o.MustExist,
		// The log is written once and deleted in bulk below each snapshot
		// (a range deletion). Left to Pebble's defaults (compact L0 at 4
		// tables, a 64 MiB base level), the log of a state of a million
		// keys, hundreds of megabytes between two snapshots, is rewritten
		// two or three times by compactions before it is deleted: 8 % of a
		// leader's CPU under load (make bench-scale). Letting L0 hold more
		// tables and the base level more bytes lets most of the log be
		// deleted where it was first flushed.
		L0CompactionThreshold:     l0CompactionTables,
		L0CompactionFileThreshold: 4 * l0CompactionTables,
		L0StopWritesThreshold:     l0StopWritesTables,
		LBaseMaxBytes:             lBaseMaxBytes,
	}
	// A nil EventListener would make Pebble log background errors through
	// Logger anyway; an explicit one keeps that behaviour documented here.
	el := pebble.MakeLoggingEventListener(o.Logger)
	// Only errors and stalls are worth a line; flush and compaction chatter
	// is not, and the default logger discards everything regardless.
	po.EventListener = &pebble.EventListener{
		BackgroundError: el.BackgroundError,
		DiskSlow:        el.DiskSlow,
		WriteStallBegin: el.WriteStallBegin,
		WriteStallEnd:   el.WriteStallEnd,
	}
	return po
}

// quietLogger discards Pebble's informational lines. Fatalf cannot return
// (Pebble would carry on with a broken commit pipeline): it panics, so that
// the caller of Save or Open can stop the node with the reason, or, on
// Pebble's own goroutines, prints the reason and exits (fatal.go).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Fatalf(format string, args ...any) {
	pebbleFatal(format, args...) // see fatal.go: a panic, or exit from Pebble's goroutines
}
