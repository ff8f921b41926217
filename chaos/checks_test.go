package chaos

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checkers are the suite's judges: these tests make sure they convict
// the histories they must, and acquit the ones they must, without any
// cluster.

func kvOp(h *History, client int, in KVInput, call, ret int64, out KVOutput) {
	h.Add(client, in, call, ret, out)
}

func TestHistoryLinearizable(t *testing.T) {
	h := NewHistory()
	kvOp(h, 0, KVInput{Op: "put", Key: "k", Value: "a"}, 0, 10, KVOutput{})
	kvOp(h, 1, KVInput{Op: "get", Key: "k"}, 5, 15, KVOutput{Value: "a", Found: true})
	kvOp(h, 0, KVInput{Op: "cas", Key: "k", Value: "b", Expected: "a"}, 20, 30, KVOutput{OK: true, Value: "a"})
	kvOp(h, 1, KVInput{Op: "cas", Key: "k", Value: "c", Expected: "a"}, 31, 40, KVOutput{OK: false, Value: "b"})
	// A put whose outcome is unknown may take effect later...
	kvOp(h, 2, KVInput{Op: "put", Key: "k", Value: "d"}, 41, 0, KVOutput{Unknown: true})
	kvOp(h, 1, KVInput{Op: "get", Key: "k"}, 50, 60, KVOutput{Value: "b", Found: true})
	kvOp(h, 1, KVInput{Op: "get", Key: "k"}, 70, 80, KVOutput{Value: "d", Found: true})
	kvOp(h, 0, KVInput{Op: "del", Key: "k"}, 90, 100, KVOutput{Found: true})
	kvOp(h, 0, KVInput{Op: "get", Key: "k"}, 110, 120, KVOutput{})
	kvOp(h, 0, KVInput{Op: "get", Key: "other"}, 110, 120, KVOutput{})
	res, err := h.Check(10*time.Second, t.TempDir(), nil)
	if err != nil || res.Result != porcupine.Ok {
		t.Fatalf("linearizable history judged %v (%v)", res.Result, err)
	}
}

func TestHistoryNotLinearizable(t *testing.T) {
	for name, ops := range map[string][]porcupine.Operation{
		"stale read": {
			{Input: KVInput{Op: "put", Key: "k", Value: "a"}, Call: 0, Return: 10, Output: KVOutput{}},
			{Input: KVInput{Op: "put", Key: "k", Value: "b"}, Call: 20, Return: 30, Output: KVOutput{}},
			{Input: KVInput{Op: "get", Key: "k"}, Call: 40, Return: 50, Output: KVOutput{Value: "a", Found: true}},
		},
		"lost write": {
			{Input: KVInput{Op: "put", Key: "k", Value: "a"}, Call: 0, Return: 10, Output: KVOutput{}},
			{Input: KVInput{Op: "get", Key: "k"}, Call: 40, Return: 50, Output: KVOutput{}},
		},
		"cas reports a wrong previous value": {
			{Input: KVInput{Op: "put", Key: "k", Value: "a"}, Call: 0, Return: 10, Output: KVOutput{}},
			{Input: KVInput{Op: "cas", Key: "k", Value: "c", Expected: "x"}, Call: 20, Return: 30, Output: KVOutput{OK: false, Value: "b"}},
		},
		"cas succeeds on a wrong value": {
			{Input: KVInput{Op: "put", Key: "k", Value: "a"}, Call: 0, Return: 10, Output: KVOutput{}},
			{Input: KVInput{Op: "cas", Key: "k", Value: "c", Expected: "x"}, Call: 20, Return: 30, Output: KVOutput{OK: true, Value: "a"}},
		},
		"delete of an absent key reports it found": {
			{Input: KVInput{Op: "del", Key: "k"}, Call: 0, Return: 10, Output: KVOutput{Found: true}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := NewHistory()
			for _, op := range ops {
				h.Add(op.ClientId, op.Input.(KVInput), op.Call, op.Return, op.Output.(KVOutput))
			}
			dir := t.TempDir()
			res, err := h.Check(10*time.Second, dir, []Annotation{{Start: 15, End: 35, What: "a fault"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Result != porcupine.Illegal {
				t.Fatalf("judged %v, want Illegal", res.Result)
			}
			html, err := os.ReadFile(res.VisualizationFile)
			if err != nil || !strings.Contains(string(html), "a fault") {
				t.Fatalf("visualization %s: %v (fault annotation present: %v)", res.VisualizationFile, err, strings.Contains(string(html), "a fault"))
			}
			if _, err := os.Stat(res.HistoryFile); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAllowedAfterCrash(t *testing.T) {
	h := NewHistory()
	kvOp(h, 0, KVInput{Op: "put", Key: "k", Value: "old"}, 0, 10, KVOutput{})
	kvOp(h, 0, KVInput{Op: "put", Key: "k", Value: "acked"}, 20, 30, KVOutput{})
	kvOp(h, 1, KVInput{Op: "put", Key: "k", Value: "concurrent"}, 25, 35, KVOutput{})
	kvOp(h, 2, KVInput{Op: "put", Key: "k", Value: "in-flight"}, 40, 0, KVOutput{Unknown: true})
	kvOp(h, 1, KVInput{Op: "cas", Key: "k", Value: "refused", Expected: "x"}, 40, 50, KVOutput{Value: "acked"})
	got := sortedKeys(AllowedAfterCrash(h, "k"))
	if want := []string{"acked", "concurrent", "in-flight"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("allowed %q, want %q", got, want)
	}
	if got := sortedKeys(AllowedAfterCrash(h, "never-written")); !reflect.DeepEqual(got, []string{""}) {
		t.Fatalf("never-written key: allowed %q, want only absent", got)
	}
}

func TestTenures(t *testing.T) {
	ok := &Tenures{}
	ok.Add(Tenure{Worker: 0, Token: 5, Start: 0, End: 10})
	ok.Add(Tenure{Worker: 1, Token: 7, Start: 10, End: 20})
	ok.Add(Tenure{Worker: 2, Token: 6, Start: 15, End: 15, Lost: true}) // never sure: ignored
	ok.Add(Tenure{Worker: 0, Token: 9, Start: 30, End: 35})
	if a := ok.Check("lock"); len(a) != 0 {
		t.Fatalf("clean tenures: %q", a)
	}
	overlap := &Tenures{}
	overlap.Add(Tenure{Worker: 0, Token: 5, Start: 0, End: 100})
	overlap.Add(Tenure{Worker: 1, Token: 7, Start: 10, End: 20})
	overlap.Add(Tenure{Worker: 2, Token: 8, Start: 50, End: 60}) // overlaps the first, not the second
	if a := overlap.Check("lock"); len(a) != 2 || !strings.Contains(a[0], "overlaps") {
		t.Fatalf("overlapping tenures: %q", a)
	}
	backwards := &Tenures{}
	backwards.Add(Tenure{Worker: 0, Token: 5, Start: 0, End: 10})
	backwards.Add(Tenure{Worker: 1, Token: 5, Start: 20, End: 30})
	if a := backwards.Check("lock"); len(a) != 1 || !strings.Contains(a[0], "tokens must grow") {
		t.Fatalf("repeated token: %q", a)
	}
	// A release that failed leaves the session holding the grant: asking
	// again answers the same grant (chaos finding F3), which is no
	// anomaly; the same token in a new change, or to another session, is.
	again := &Tenures{}
	again.Add(Tenure{Worker: 3, Session: 1, Token: 1, Start: 0, End: 10, Seq: 1, Revision: 6})
	again.Add(Tenure{Worker: 3, Session: 1, Token: 1, Start: 20, End: 30, Seq: 1, Revision: 6})
	again.Add(Tenure{Worker: 5, Session: 5, Token: 6, Start: 40, End: 50, Seq: 2, Revision: 85})
	if a := again.Check("election"); len(a) != 0 {
		t.Fatalf("one grant seen twice: %q", a)
	}
	for _, second := range []Tenure{
		{Worker: 3, Session: 1, Token: 1, Start: 20, End: 30, Seq: 2, Revision: 9}, // a new change with an old term
		{Worker: 4, Session: 2, Token: 1, Start: 20, End: 30, Seq: 1, Revision: 6}, // another session
	} {
		twice := &Tenures{}
		twice.Add(Tenure{Worker: 3, Session: 1, Token: 1, Start: 0, End: 10, Seq: 1, Revision: 6})
		twice.Add(second)
		if a := twice.Check("election"); len(a) != 1 || !strings.Contains(a[0], "tokens must grow") {
			t.Fatalf("token 1 granted twice (%+v): %q", second, a)
		}
	}
	// What a failing check leaves to read: every tenure, with the faults.
	path := filepath.Join(t.TempDir(), "tenures.json")
	backwards.Add(Tenure{Worker: 2, Session: 41, Token: 6, Start: 40, End: 50, Seq: 3, Revision: 77})
	if err := backwards.WriteFile(path, []Annotation{{Start: 5, End: 25, What: "kill node 1"}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"What": "kill node 1"`, `"session": 41`, `"revision": 77`, `"seq": 3`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("tenures file lacks %s:\n%s", want, b)
		}
	}
}

func TestFenceLog(t *testing.T) {
	f := &FenceLog{}
	f.Add(FencedWrite{Token: 5, Call: 0, Return: 10, OK: true, Sure: true})
	f.Add(FencedWrite{Token: 7, Call: 20, Return: 30, OK: true, Sure: true})
	f.Add(FencedWrite{Token: 6, Call: 25, Return: 40, OK: true})                   // concurrent with 7: fine
	f.Add(FencedWrite{Token: 5, Call: 50, Return: 60, Refused: true, Sure: false}) // a stale holder, refused
	if a := f.Check("lock"); len(a) != 0 {
		t.Fatalf("clean fenced writes: %q", a)
	}
	f.Add(FencedWrite{Token: 6, Call: 70, Return: 80, OK: true})                  // accepted after 7 returned
	f.Add(FencedWrite{Token: 9, Call: 90, Return: 95, Refused: true, Sure: true}) // refused while sure
	if a := f.Check("lock"); len(a) != 2 {
		t.Fatalf("want 2 anomalies, got %q", a)
	}
}

func TestPlan(t *testing.T) {
	cfg := PlanConfig{Nodes: 3, ElectionTimeoutMax: 300 * time.Millisecond}
	a, b := Plan(42, 50, cfg), Plan(42, 50, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two plans")
	}
	if reflect.DeepEqual(a, Plan(43, 50, cfg)) {
		t.Fatal("two seeds gave the same plan")
	}
	for seed := int64(1); seed <= 200; seed++ {
		crash := -1
		for i, f := range Plan(seed, 20, cfg) {
			if f.Kind == CrashAll && crash < 0 {
				crash = i
			}
			if f.Kind == Mixed {
				if f.Also == nil || (f.Also.Kind != Kill && f.Also.Kind != Pause) || f.Net == "" {
					t.Fatalf("seed %d: bad mixed fault %+v", seed, f)
				}
				if f.Also.Hold != f.Hold {
					t.Fatalf("seed %d: %s: the two parts of a mixed fault last %s and %s", seed, f, f.Hold, f.Also.Hold)
				}
				f = *f.Also
			}
			if f.Kind == Pause && f.Hold <= cfg.ElectionTimeoutMax {
				t.Fatalf("seed %d: pause of %s is not longer than the election timeout", seed, f.Hold)
			}
			if f.Node == f.Other || f.Node < 0 || f.Node >= 3 || f.Other < 0 || f.Other >= 3 {
				t.Fatalf("seed %d: bad nodes %d, %d", seed, f.Node, f.Other)
			}
		}
		if crash < 0 || crash > 4 {
			t.Fatalf("seed %d: the whole-cluster crash comes at fault %d, want among the first five", seed, crash)
		}
	}
}
