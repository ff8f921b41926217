package wire

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

// kvHandler is a toy key-value server for TestPythonClient.
type kvHandler struct {
	mu  sync.Mutex
	kvs map[string]KV
	rev uint64
}

func (h *kvHandler) HandlePeer(paxos.Message) {}

func (h *kvHandler) HandleClient(c *ClientConn) {
	for {
		q, err := c.Recv()
		if err != nil {
			return
		}
		h.mu.Lock()
		s := &Response{ID: q.ID}
		switch q.Op {
		case OpPut:
			h.rev++
			kv := h.kvs[q.Key]
			s.KV, s.Found = kv, kv.Key != ""
			kv = KV{Key: q.Key, Value: append([]byte(nil), q.Value...), CreateRevision: kv.CreateRevision, ModRevision: h.rev, Version: kv.Version + 1}
			if kv.CreateRevision == 0 {
				kv.CreateRevision = h.rev
			}
			h.kvs[q.Key] = kv
		case OpGet:
			s.KV, s.Found = h.kvs[q.Key]
			if !s.Found {
				s.Err = ErrNotFound
			}
		default:
			s.Err, s.ErrMsg = ErrInvalid, "unsupported op "+q.Op.String()
		}
		s.Revision = h.rev
		h.mu.Unlock()
		c.Send(s)
	}
}

// TestPythonClient runs the Python sketch of docs/PROTOCOL.md against a
// server, when python3 and its msgpack module are installed.
func TestPythonClient(t *testing.T) {
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import msgpack").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("python3 with msgpack not installed")
	}
	doc, err := os.ReadFile(protoDoc)
	if err != nil {
		t.Fatal(err)
	}
	script, ok := between(string(doc), "```python\n", "```")
	if !ok {
		t.Fatal("no python sketch in the docs")
	}
	ln := mustListen(t)
	done := make(chan error)
	go func() { done <- Serve(ln, ServerConfig{Self: 1}, &kvHandler{kvs: map[string]KV{}}) }()
	defer func() { ln.Close(); <-done }()
	host, port, _ := strings.Cut(ln.Addr().String(), ":")
	script = strings.Replace(script, `("127.0.0.1", 7401)`, `("`+host+`", `+port+`)`, 1)
	out, err := exec.Command(python, "-c", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "greeting b'hello' revision 1") {
		t.Fatalf("python client: %v\n%s", err, out)
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
