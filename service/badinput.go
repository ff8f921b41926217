package service

import (
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
	return nil
}
