package linearize

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestKVModelChecksPreviousPairs: a put's or a delete's answer is checked
// against the previous pair when the client recorded it (PrevChecked),
// and must carry none when the request asked for none (OmitPrev).
func TestKVModelChecksPreviousPairs(t *testing.T) {
	op := func(client int, call, ret int64, in KVInput, out KVOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	put := func(v string, omit bool) KVInput {
		return KVInput{Op: "put", Key: "k", Value: v, PrevChecked: true, OmitPrev: omit}
	}
	del := func(omit bool) KVInput { return KVInput{Op: "del", Key: "k", PrevChecked: true, OmitPrev: omit} }
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"previous pairs as they were", []porcupine.Operation{
			op(0, 0, 1, put("a", false), KVOutput{}),
			op(0, 2, 3, put("b", false), KVOutput{Found: true, Value: "a"}),
			op(0, 4, 5, del(false), KVOutput{Found: true, Value: "b"}),
		}, true},
		{"omitted previous pairs", []porcupine.Operation{
			op(0, 0, 1, put("a", true), KVOutput{}),
			op(0, 2, 3, put("b", true), KVOutput{Found: true}),
			op(0, 4, 5, del(true), KVOutput{Found: true}),
		}, true},
		{"a put reports a previous value never there", []porcupine.Operation{
			op(0, 0, 1, put("a", false), KVOutput{}),
			op(0, 2, 3, put("b", false), KVOutput{Found: true, Value: "x"}),
		}, false},
		{"a put reports no previous pair over a value", []porcupine.Operation{
			op(0, 0, 1, put("a", false), KVOutput{}),
			op(0, 2, 3, put("b", false), KVOutput{}),
		}, false},
		{"an omitted pair sent anyway", []porcupine.Operation{
			op(0, 0, 1, put("a", false), KVOutput{}),
			op(0, 2, 3, put("b", true), KVOutput{Found: true, Value: "a"}),
		}, false},
		{"a delete reports another value", []porcupine.Operation{
			op(0, 0, 1, put("a", false), KVOutput{}),
			op(0, 2, 3, del(false), KVOutput{Found: true, Value: "b"}),
		}, false},
		{"concurrent puts, either order", []porcupine.Operation{
			op(0, 0, 10, put("a", false), KVOutput{Found: true, Value: "b"}),
			op(1, 1, 9, put("b", false), KVOutput{}),
		}, true},
		{"unchecked puts, as the chaos suite records them", []porcupine.Operation{
			op(0, 0, 1, KVInput{Op: "put", Key: "k", Value: "a"}, KVOutput{}),
			op(0, 2, 3, KVInput{Op: "put", Key: "k", Value: "b"}, KVOutput{}),
		}, true},
	} {
		if got := porcupine.CheckOperations(KVModel, tc.ops); got != tc.ok {
			t.Errorf("%s: linearizable %v, want %v", tc.name, got, tc.ok)
		}
	}
}
