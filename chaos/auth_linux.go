//go:build linux

package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/paxosd/paxosd/client"
)

// enableAuth turns users and roles on for a TLS schedule before its
// workers start: user root (needed before auth can be enabled), and the
// workers' own user, the CommonName of their client certificate
// ("chaos"), whose role grants readwrite on every key, lock and election
// (the prefix ""). So every request of the schedule is authenticated by
// certificate and checked against the replicated auth state, through the
// same faults; the workers' checks are unchanged. The auth commands need
// cluster level 10, which the leader raises shortly after it is elected:
// each step is retried until it succeeds or the limit passes.
func (s *schedule) enableAuth(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	steps := []struct {
		what string
		do   func(ctx context.Context) error
	}{
		{"user add root", func(ctx context.Context) error { return s.probe.UserAdd(ctx, "root", "chaos-root-password") }},
		{"role add all", func(ctx context.Context) error { return s.probe.RoleAdd(ctx, "all") }},
		{"role grant all", func(ctx context.Context) error { return s.probe.RoleGrant(ctx, "all", "", client.PermReadWrite) }},
		{"user add chaos", func(ctx context.Context) error { return s.probe.UserAdd(ctx, "chaos", "") }},
		{"user grant-role chaos all", func(ctx context.Context) error { return s.probe.UserGrantRole(ctx, "chaos", "all") }},
		{"auth enable", func(ctx context.Context) error { return s.probe.AuthEnable(ctx) }},
	}
	for _, st := range steps {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := st.do(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %w", st.what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The workers are now checked as user chaos.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.probe.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("auth status: %w", err)
	}
	if !st.Enabled || st.User != "chaos" {
		return fmt.Errorf("auth status: enabled %v, user %q; want enabled, chaos", st.Enabled, st.User)
	}
	s.cfg.Logf("schedule %d: auth enabled, the workers are user %q (client certificate)", s.idx, st.User)
	return nil
}
