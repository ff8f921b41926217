package contrib

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

const (
	rulesFile     = "prometheus/paxosd-alerts.yml"
	dashboardFile = "grafana/paxosd-dashboard.json"
	opsDoc        = "../docs/OPERATIONS.md"
)

// metricName matches a metric paxosd's /metrics serves: its own, the Go
// runtime's and the process's. Prometheus's own series (up) are not ours
// to check.
var metricName = regexp.MustCompile(`\b(?:paxosd|go|process)_[a-zA-Z0-9_]+\b`)

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleExprs parses the rule file and returns each rule's expression by
// alert name, reporting rules an on-call engineer could not act on.
func ruleExprs(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true) // a misspelt key would silently drop what it holds
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	exprs := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			switch {
			case name == "" || r.Expr == "":
				t.Errorf("%s: group %s has a rule without a name or an expression", rulesFile, g.Name)
			case exprs[name] != "":
				t.Errorf("%s: two rules named %s", rulesFile, name)
			}
			exprs[name] = r.Expr
			if r.Alert == "" {
				continue
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: %s: severity %q, want critical, warning or info", rulesFile, name, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: %s lacks the %s annotation", rulesFile, name, a)
				}
			}
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no rules", rulesFile)
	}
	return exprs
}

// dashboardExprs parses the dashboard and returns the queries of its
// panels and variables, by where they are. It checks that every panel
// queries the templated data source, so the dashboard imports anywhere.
func dashboardExprs(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int             `json:"id"`
			Type       string          `json:"type"`
			Title      string          `json:"title"`
			Datasource json.RawMessage `json:"datasource"`
			Targets    []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Query      any    `json:"query"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs := map[string]string{}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" {
			hasDS = true
		}
		if q, ok := v.Query.(map[string]any); ok {
			exprs["variable "+v.Name] = fmt.Sprint(q["query"])
		}
		exprs["variable "+v.Name+" definition"] = v.Definition
	}
	if !hasDS {
		t.Errorf("%s: no datasource variable named datasource", dashboardFile)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d used twice", dashboardFile, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("%s: panel %q does not use the datasource variable: %s", dashboardFile, p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
		}
		for i, tg := range p.Targets {
			exprs[fmt.Sprintf("panel %q query %d", p.Title, i)] = tg.Expr
		}
	}
	return exprs
}

// missingMetrics returns, for each expression, the metric names it uses
// that families lacks. A histogram's series (_bucket, _sum, _count) and a
// summary's (_sum, _count) count as their family's.
func missingMetrics(exprs map[string]string, families map[string]dto.MetricType) map[string][]string {
	missing := map[string][]string{}
	for where, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			if !exists(name, families) {
				missing[where] = append(missing[where], name)
			}
		}
	}
	return missing
}

func exists(name string, families map[string]dto.MetricType) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch families[base] {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

// documentedMetrics returns the metric names the first column of the
// tables in docs/OPERATIONS.md names.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `((?:paxosd|go|process)_[a-z0-9_]+)")
	names := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		names[m[1]] = true
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
