package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/service"
	"github.com/paxosd/paxosd/wire"
)

// version is the release; a release build sets it with -ldflags
// "-X main.version=...". The commit comes from the build info.
var version = "0.1.0-dev"

// cmdVersion: paxosd version [-w json].
func cmdVersion(args []string, stdout io.Writer) error {
	fs := cli.NewFlags("version", "paxosd version [-w json]")
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: version takes no arguments", cli.ErrUsage)
	}
	v := versionInfo()
	if o.json() {
		return o.print(v)
	}
	fmt.Fprintln(stdout, versionLine(v))
	return nil
}

// versionInfo is the release, the commit the binary was built from (Go
// records it when building inside a git checkout; "+dirty" when the tree
// had changes; "" unknown), the Go release and the wire protocol version,
// which decides what a mixed cluster can do.
func versionInfo() versionJSON {
	commit := ""
	if rev := service.BuildRevision(); rev != "" {
		rev, dirty, _ := strings.Cut(rev, "+")
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty != "" {
			dirty = "+" + dirty
		}
		commit = rev + dirty
	}
	return versionJSON{Version: version, Commit: commit, Go: runtime.Version(), WireProtocol: wire.ProtocolVersion}
}

// versionLine is what 'paxosd version' prints.
func versionLine(v versionJSON) string {
	commit := "unknown commit"
	if v.Commit != "" {
		commit = "commit " + v.Commit
	}
	return fmt.Sprintf("paxosd %s (%s, %s, wire protocol %d)", v.Version, commit, v.Go, v.WireProtocol)
}
