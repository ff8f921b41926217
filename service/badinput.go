package service

import (
	"fmt"
	"unicode/utf8"

	"github.com/paxosd/paxosd/wire"
)

// checkUTF8 refuses a request whose key, prefix or lock/election name is
// not valid UTF-8. They travel as msgpack str, which the protocol defines
// as UTF-8 text: a client in another language (Python's msgpack, by
// default) fails to decode a response that carries an invalid one, so one
// careless writer could break every other client's List or Watch.
func checkUTF8(q *wire.Request) *wire.Response {
	for _, f := range [...]struct{ what, s string }{
		{"key", q.Key}, {"prefix", q.Prefix}, {"name", q.Name}, {"fence name", q.FenceName}, {"start key", q.StartKey},
	} {
		if !utf8.ValidString(f.s) {
			return &wire.Response{Err: wire.ErrInvalid, ErrMsg: f.what + " is not valid UTF-8"}
		}
	}
	for i := range q.Compares {
		if !utf8.ValidString(q.Compares[i].Key) {
			return &wire.Response{Err: wire.ErrInvalid, ErrMsg: fmt.Sprintf("compare %d: key is not valid UTF-8", i+1)}
		}
	}
	for _, b := range [...]struct {
		name string
		ops  []wire.TxnOp
	}{{"then", q.ThenOps}, {"else", q.ElseOps}} {
		for i := range b.ops {
			if !utf8.ValidString(b.ops[i].Key) {
				return &wire.Response{Err: wire.ErrInvalid, ErrMsg: fmt.Sprintf("%s op %d: key is not valid UTF-8", b.name, i+1)}
			}
		}
	}
	return nil
}
