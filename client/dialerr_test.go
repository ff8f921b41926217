package client

import "testing"

// TestJoinDialErrors: a TLS mistake every endpoint reports is said once;
// anything else is listed per endpoint, as before.
func TestJoinDialErrors(t *testing.T) {
	tlsErr := func(addr string) string {
		return "wire: dial " + addr + ": wire: TLS: the node requires a client certificate: pass --cert FILE --key FILE"
	}
	for _, tc := range []struct {
		errs []string
		want string
	}{
		{[]string{tlsErr("a:1"), tlsErr("b:2")}, "wire: TLS: the node requires a client certificate: pass --cert FILE --key FILE"},
		{[]string{tlsErr("a:1")}, tlsErr("a:1")},
		{[]string{tlsErr("a:1"), "dial tcp b:2: connect: connection refused"}, tlsErr("a:1") + "; dial tcp b:2: connect: connection refused"},
		{[]string{"wire: dial a:1: wire: wrong cluster id: x", "wire: dial b:2: wire: wrong cluster id: x"},
			"wire: dial a:1: wire: wrong cluster id: x; wire: dial b:2: wire: wrong cluster id: x"},
	} {
		if got := joinDialErrors(tc.errs); got != tc.want {
			t.Errorf("joinDialErrors(%q)\n = %q\nwant %q", tc.errs, got, tc.want)
		}
	}
}
