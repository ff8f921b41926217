package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/paxosd/paxosd/wire"
)

// version is the release; a release build sets it with -ldflags
// "-X main.version=...". The commit comes from the build info.
var version = "0.1.0-dev"

// versionLine is what 'paxosd version' prints: the release, the commit the
// binary was built from (Go records it when building inside a git
// checkout; "+dirty" when the tree had changes), the Go release and the
// wire protocol version, which decides what a mixed cluster can do.
func versionLine() string {
	commit := "unknown commit"
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			commit = "commit " + rev + dirty
		}
	}
	return fmt.Sprintf("paxosd %s (%s, %s, wire protocol %d)", version, commit, runtime.Version(), wire.ProtocolVersion)
}
