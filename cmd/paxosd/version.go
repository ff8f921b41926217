package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/paxosd/paxosd/service"
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
	if rev := service.BuildRevision(); rev != "" {
		rev, dirty, _ := strings.Cut(rev, "+")
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty != "" {
			dirty = "+" + dirty
		}
		commit = "commit " + rev + dirty
	}
	return fmt.Sprintf("paxosd %s (%s, %s, wire protocol %d)", version, commit, runtime.Version(), wire.ProtocolVersion)
}
