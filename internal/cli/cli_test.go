package cli

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestClientFlags: the endpoints list drops blanks, $PAXOSD_ENDPOINTS is
// the default, and a bad flag is a usage error naming the command.
func TestClientFlags(t *testing.T) {
	t.Setenv("PAXOSD_ENDPOINTS", "a:1, b:2")
	fs := NewFlags("kv get", "paxosd kv get KEY")
	var cf ClientFlags
	cf.Register(fs)
	if err := Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if got := cf.List(); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Errorf("List() = %q from $PAXOSD_ENDPOINTS", got)
	}
	if err := Parse(fs, []string{"--endpoints", " , c:3,,"}); err != nil {
		t.Fatal(err)
	}
	if got := cf.List(); !slices.Equal(got, []string{"c:3"}) {
		t.Errorf("List() = %q", got)
	}
	err := Parse(fs, []string{"--bogus"})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "'paxosd kv get --help'") {
		t.Errorf("Parse(--bogus) = %v, want a usage error pointing at --help", err)
	}
	fs.Usage = func() {} // not on the test's stderr
	if err := Parse(fs, []string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("Parse(--help) = %v, want pflag.ErrHelp", err)
	}
}
