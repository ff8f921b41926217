// Package linearize holds the sequential specifications that paxosd's
// linearizability checks (porcupine) compare client histories with: the
// seeded node simulation (service) and the fault-injection suite (chaos)
// check against the same model.
package linearize

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// KVInput is one key-value operation as a client issued it.
type KVInput struct {
	Op       string // "get", "put", "cas", "del"
	Key      string
	Value    string // put, cas: the value written (unique per write)
	Expected string // cas: the value compared with; "" means "absent"
	// PrevChecked (put, del): the output's Found and Value are the
	// previous pair as the answer reported it, and the model checks
	// them (a del's Found is checked either way). OmitPrev: the request
	// asked for no previous pair (omit_prev), so the answer must carry
	// Found but no value.
	PrevChecked, OmitPrev bool
}

// KVOutput is what the client got back.
type KVOutput struct {
	// Value: get, the value read; cas, the key's value before ("" when
	// absent); put and del with PrevChecked, the previous pair's value
	// the answer carried.
	Value string
	Found bool // get: the key existed; put, del: it existed before
	OK    bool // cas: the swap happened
	// Unknown: the call failed without a definite answer (timeout, lost
	// connection), so a write may or may not have happened, at any time
	// from its call on. Such operations get a return time after the end
	// of the history: porcupine may then place them anywhere after their
	// call, or nowhere that matters.
	Unknown bool
}

// KVModel is the sequential specification of the key-value store, one
// partition (and one state: the value, "" for absent) per key. Values are
// never empty, so "" unambiguously means absent.
var KVModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(KVInput).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(string), input.(KVInput), output.(KVOutput)
		switch in.Op {
		case "get":
			return out.Found == (s != "") && out.Value == s, s
		case "put":
			return out.Unknown || !in.PrevChecked || prevMatches(s, in, out), in.Value
		case "del":
			if out.Unknown {
				return true, ""
			}
			return out.Found == (s != "") && (!in.PrevChecked || prevMatches(s, in, out)), ""
		case "cas":
			holds := s == in.Expected
			next := s
			if holds {
				next = in.Value
			}
			if out.Unknown {
				return true, next
			}
			return out.OK == holds && out.Value == s, next
		}
		panic("linearize: unknown op " + in.Op)
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(KVInput), output.(KVOutput)
		var res string
		switch {
		case out.Unknown:
			res = "unknown"
		case in.Op == "get" && !out.Found, in.Op == "del" && !out.Found:
			res = "absent"
		case in.Op == "get":
			res = fmt.Sprintf("%q", out.Value)
		case in.Op == "del":
			res = "deleted"
		case in.Op == "cas":
			res = fmt.Sprintf("ok=%v was %q", out.OK, out.Value)
		default:
			res = "ok"
		}
		if in.PrevChecked && !out.Unknown && (in.Op == "put" || in.Op == "del" && out.Found) {
			res += fmt.Sprintf(" (found %v, previous %q)", out.Found, out.Value)
		}
		switch in.Op {
		case "put":
			return fmt.Sprintf("put(%s, %q) -> %s", in.Key, in.Value, res)
		case "cas":
			return fmt.Sprintf("cas(%s, %q -> %q) -> %s", in.Key, in.Expected, in.Value, res)
		default:
			return fmt.Sprintf("%s(%s) -> %s", in.Op, in.Key, res)
		}
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return fmt.Sprintf("%q", state)
	},
}

// prevMatches reports whether a put's or del's answer reports the
// previous pair of state s: whether there was one, and its value unless
// the request asked for none.
func prevMatches(s string, in KVInput, out KVOutput) bool {
	if in.OmitPrev {
		return out.Found == (s != "") && out.Value == ""
	}
	return out.Found == (s != "") && out.Value == s
}
