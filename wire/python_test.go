package wire

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonWithMsgpack finds a Python 3 that imports msgpack (Debian's
// python3-msgpack, installed by scripts/install-deps.sh, is for
// /usr/bin/python3, which may not be the python3 first on PATH).
func pythonWithMsgpack() string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import msgpack").Run() == nil {
			return p
		}
	}
	return ""
}

// TestPythonClientCodec runs the Python client's tests that need no
// cluster (clients/python/tests): it decodes every golden frame of
// testdata/wire and compares it with the description TestGoldenJSON
// checks, re-encodes it to the same bytes, and runs its request path
// (retries with the same client_id/seq, leader hints, error classes)
// against fake nodes. So a change to the wire that the Python client does
// not follow fails here. cmd/paxosd/python_e2e_test.go runs the rest
// against a real cluster.
func TestPythonClientCodec(t *testing.T) {
	python := pythonWithMsgpack()
	if python == "" {
		t.Skip("python3 with msgpack not installed (make deps installs Debian's python3-msgpack)")
	}
	cmd := exec.Command(python, "-m", "unittest", "-v", "tests.test_golden", "tests.test_retry", "tests.test_ephemeral_retry")
	cmd.Dir = filepath.Join("..", "clients", "python")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "skipped") {
		t.Fatalf("python -m unittest: %v\n%s", err, out)
	}
}
