package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/paxosd/paxosd/wire"
)

// TestCodeErrors: every error code the wire knows, but ErrNone and
// ErrCASFailed (answered as a result, not an error), has its own sentinel,
// and an Error matches exactly that one.
func TestCodeErrors(t *testing.T) {
	seen := map[error]wire.ErrCode{}
	for c := range 256 {
		code := wire.ErrCode(c)
		known := !strings.HasPrefix(code.String(), "ErrCode(")
		var want error
		if c < len(codeErrors) {
			want = codeErrors[c]
		}
		switch {
		case !known || code == wire.ErrNone || code == wire.ErrCASFailed:
			if want != nil {
				t.Errorf("%v maps to %v", code, want)
			}
			continue
		case want == nil:
			t.Errorf("%v has no sentinel error", code)
			continue
		}
		if prev, dup := seen[want]; dup {
			t.Errorf("%v and %v both map to %v", prev, code, want)
		}
		seen[want] = code
	}
	for c := range 256 {
		err := &Error{Code: wire.ErrCode(c), Msg: "x"}
		for s, code := range seen {
			if got := errors.Is(err, s); got != (code == wire.ErrCode(c)) {
				t.Errorf("errors.Is(code %v, %v) = %v", wire.ErrCode(c), s, got)
			}
		}
	}
}
