package contrib

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/service/servicetest"
)

// TestMissingMetricsCatchesATypo: the check below would let a rule name a
// metric nobody exports if it matched loosely; a misspelt name, and a
// counter read as if it were a histogram, are reported.
func TestMissingMetricsCatchesATypo(t *testing.T) {
	families := map[string]dto.MetricType{
		"paxosd_leader_changes_total": dto.MetricType_COUNTER,
		"paxosd_wal_save_seconds":     dto.MetricType_HISTOGRAM,
	}
	got := missingMetrics(map[string]string{
		"typo":      `increase(paxosd_leader_chagnes_total[15m]) > 3`,
		"histogram": `histogram_quantile(0.99, rate(paxosd_wal_save_seconds_bucket[5m])) / rate(paxosd_wal_save_seconds_count[5m])`,
		"counter":   `rate(paxosd_leader_changes_total_bucket[5m])`,
		"prom":      `up{job="paxosd"} == 0`,
	}, families)
	if len(got) != 2 || len(got["typo"]) != 1 || len(got["counter"]) != 1 {
		t.Errorf("missing = %v, want the typo and the counter's _bucket only", got)
	}
}

// TestContribMetricsExist: every metric the alert rules and the dashboard
// use is one a running cluster exports, once it has served the requests
// that create the labelled series (a put, a get, a lock) — and every
// metric it exports is in docs/OPERATIONS.md's table, and the other way
// round. With promtool installed (Debian's prometheus package), the rules
// are also checked and their unit tests run.
func TestContribMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	rulesData, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dashData, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	rules, dash := ruleExprs(t, rulesData), dashboardExprs(t, dashData)

	families := clusterFamilies(t)
	for what, exprs := range map[string]map[string]string{rulesFile: rules, dashboardFile: dash} {
		missing := missingMetrics(exprs, families)
		for _, where := range sortedKeys(missing) {
			t.Errorf("%s: %s uses metrics paxosd does not export: %s", what, where, strings.Join(missing[where], ", "))
		}
	}
	documented := documentedMetrics(t)
	for _, name := range sortedKeys(families) {
		if strings.HasPrefix(name, "paxosd_") && !documented[name] {
			t.Errorf("%s: %s is exported but not documented", opsDoc, name)
		}
	}
	for _, name := range sortedKeys(documented) {
		if _, ok := families[name]; !ok {
			t.Errorf("%s: %s is documented but not exported", opsDoc, name)
		}
	}

	if _, err := exec.LookPath("promtool"); err != nil {
		t.Log("promtool not installed: the rules' syntax and unit tests are not checked")
		return
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// rulesTestFile holds promtool unit tests of some of the rules.
const rulesTestFile = "prometheus/paxosd-alerts.test.yml"

// clusterFamilies starts a 3-member cluster, has it serve a put, a get and
// a lock, waits for the leader to time a heartbeat round trip, and
// returns the type of every metric family any member exports.
func clusterFamilies(t *testing.T) map[string]dto.MetricType {
	c := servicetest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, c.Endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	s, err := cl.NewSession(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TryLock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		families := map[string]dto.MetricType{}
		for _, n := range c.Nodes {
			mfs, err := n.Metrics().Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				families[mf.GetName()] = mf.GetType()
			}
		}
		// The leader times heartbeats every 30ms: its first round trip
		// is the last series to appear.
		if _, ok := families["paxosd_peer_rtt_seconds"]; ok {
			return families
		}
		select {
		case <-ctx.Done():
			t.Fatal("no member exported paxosd_peer_rtt_seconds")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
