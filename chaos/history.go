package chaos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/paxosd/paxosd/internal/linearize"
)

// The key-value model lives in internal/linearize, shared with the node
// simulation.
type (
	KVInput  = linearize.KVInput
	KVOutput = linearize.KVOutput
)

// KVModel is linearize.KVModel.
var KVModel = linearize.KVModel

// History records key-value operations for the linearizability check.
// Times are nanoseconds on the monotonic clock since Start.
type History struct {
	Start time.Time

	mu  sync.Mutex
	ops []porcupine.Operation
}

// NewHistory starts an empty history.
func NewHistory() *History { return &History{Start: time.Now()} }

// Now is the current time on the history's clock.
func (h *History) Now() int64 { return int64(time.Since(h.Start)) }

// Add records an operation; ret is ignored when out.Unknown.
func (h *History) Add(client int, in KVInput, call, ret int64, out KVOutput) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Ops returns a copy of the operations, with every unknown operation's
// return moved past the end of the history.
func (h *History) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var end int64
	for _, op := range h.ops {
		end = max(end, op.Call, op.Return)
	}
	out := make([]porcupine.Operation, len(h.ops))
	for i, op := range h.ops {
		if op.Output.(KVOutput).Unknown {
			op.Return = end + 1
		}
		out[i] = op
	}
	return out
}

// Len is the number of operations recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Annotation marks a stretch of time (a fault) in the visualization.
type Annotation struct {
	Start, End int64
	What       string
}

// CheckResult is the outcome of a linearizability check.
type CheckResult struct {
	Result porcupine.CheckResult
	Took   time.Duration
	// Files are the history and its visualization, written when the
	// history is not linearizable (or the check could not decide).
	HistoryFile, VisualizationFile string
}

// Check checks the history with porcupine, giving up after timeout. Unless
// the history is linearizable it writes the history (JSON) and
// porcupine's visualization (HTML: open it in a browser) into dir.
func (h *History) Check(timeout time.Duration, dir string, notes []Annotation) (CheckResult, error) {
	ops := h.Ops()
	start := time.Now()
	// The verbose check also computes the partial linearizations the
	// visualization needs, at several times the cost: only a failing
	// history pays for it.
	res := porcupine.CheckOperationsTimeout(KVModel, ops, timeout)
	cr := CheckResult{Result: res, Took: time.Since(start)}
	if res == porcupine.Ok {
		return cr, nil
	}
	_, info := porcupine.CheckOperationsVerbose(KVModel, ops, timeout)
	var anns []porcupine.Annotation
	for _, n := range notes {
		anns = append(anns, porcupine.Annotation{Tag: "faults", Start: n.Start, End: n.End, Description: n.What, BackgroundColor: "#ffd0d0"})
	}
	info.AddAnnotations(anns)
	cr.HistoryFile = filepath.Join(dir, "history.json")
	cr.VisualizationFile = filepath.Join(dir, "history.html")
	if err := writeHistory(cr.HistoryFile, ops, notes); err != nil {
		return cr, err
	}
	if err := porcupine.VisualizePath(KVModel, info, cr.VisualizationFile); err != nil {
		return cr, err
	}
	return cr, nil
}

// writeHistory writes the operations as JSON, one object per operation, in
// call order, with the faults alongside.
func writeHistory(path string, ops []porcupine.Operation, notes []Annotation) error {
	type op struct {
		Client int      `json:"client"`
		Call   int64    `json:"call_ns"`
		Return int64    `json:"return_ns"`
		Input  KVInput  `json:"input"`
		Output KVOutput `json:"output"`
	}
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	doc := struct {
		Faults     []Annotation `json:"faults"`
		Operations []op         `json:"operations"`
	}{Faults: notes}
	for _, o := range sorted {
		doc.Operations = append(doc.Operations, op{o.ClientId, o.Call, o.Return, o.Input.(KVInput), o.Output.(KVOutput)})
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
