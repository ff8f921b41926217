// Package contrib holds no code: it is the home of what operators load
// next to paxosd — Prometheus alerting rules (prometheus/) and a Grafana
// dashboard (grafana/) — and of the tests that keep them honest: every
// metric they use must be one paxosd exports, and every metric paxosd
// exports must be documented in docs/OPERATIONS.md.
package contrib
