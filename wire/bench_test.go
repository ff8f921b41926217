package wire

import (
	"bytes"
	"encoding/binary"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/paxosd/paxosd/paxos"
	"github.com/vmihailenco/msgpack/v5"
)

// benchAccept is an Accept of 16 entries, each one 256-byte command.
func benchAccept() paxos.Message {
	m := paxos.Message{Type: paxos.MsgAccept, From: 1, To: 2, Ballot: paxos.Ballot{Round: 12, Node: 1}, Commit: 100000}
	for i := range 16 {
		m.Entries = append(m.Entries, paxos.Entry{
			Slot: paxos.Slot(100001 + i), Ballot: m.Ballot,
			Value: paxos.Value{Kind: paxos.ValueBatch, Cmds: [][]byte{bytes.Repeat([]byte{byte(i)}, 256)}},
		})
	}
	return m
}

func BenchmarkEncodeAccept(b *testing.B) {
	m := benchAccept()
	buf := EncodeMessage(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = EncodeMessage(buf[:0], m)
	}
}

func BenchmarkDecodeAccept(b *testing.B) {
	body := EncodeMessage(nil, benchAccept())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeAcceptReflect is the reflection-based msgpack encoding of
// the same message, for comparison.
func BenchmarkEncodeAcceptReflect(b *testing.B) {
	m := benchAccept()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := msgpack.Marshal(&m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAcceptReflect: reflection-based decoding, for comparison.
func BenchmarkDecodeAcceptReflect(b *testing.B) {
	m := benchAccept()
	body, _ := msgpack.Marshal(&m)
	b.ReportAllocs()
	for b.Loop() {
		var out paxos.Message
		if err := msgpack.Unmarshal(body, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRequest() *Request {
	return &Request{ID: 12345, Op: OpPut, ClientID: 0xdeadbeef, Seq: 77, AckedBelow: 70, Key: "/service/config/primary", Value: bytes.Repeat([]byte("v"), 100), TimeoutMs: 5000}
}

func BenchmarkEncodeRequest(b *testing.B) {
	q := benchRequest()
	buf := EncodeRequest(nil, q)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = EncodeRequest(buf[:0], q)
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := EncodeRequest(nil, benchRequest())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) HandlePeer(paxos.Message) { h.n.Add(1) }
func (h *countingHandler) HandleClient(*ClientConn) {}

// BenchmarkTransport sends Accepts (16 x 256 B) through a Transport to a
// server on loopback, as fast as they are delivered (the sender keeps at
// most 2048 in the queue, since Send drops rather than waits), and reports
// how many frames each write system call carried.
func BenchmarkTransport(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &countingHandler{}
	done := make(chan error)
	go func() { done <- Serve(ln, ServerConfig{Self: 2}, h) }()
	tr, err := NewTransport(TransportConfig{Self: 1, Peers: map[paxos.NodeID]string{2: ln.Addr().String()}, QueueMax: 1 << 12})
	if err != nil {
		b.Fatal(err)
	}
	m := benchAccept()
	b.SetBytes(int64(len(EncodeMessage(nil, m))))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for uint64(i) > tr.Stats(2).Sent+2048 {
			runtime.Gosched()
		}
		tr.Send(m)
	}
	for h.n.Load() < int64(b.N) && tr.Stats(2).Dropped == 0 {
		runtime.Gosched()
	}
	b.StopTimer()
	tr.Close()
	ln.Close()
	<-done
	st := tr.Stats(2)
	b.ReportMetric(float64(st.Sent)/float64(max(st.Writes, 1)), "frames/write")
	b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkReadFrameChunk reads frames the size of a snapshot chunk (1 MiB
// and its framing): what a rejoining node allocates per chunk it copies
// (-benchmem), garbage on a heap that holds the node's whole state.
func BenchmarkReadFrameChunk(b *testing.B) {
	body := bytes.Repeat([]byte{7}, 1<<20+64)
	var framed []byte
	framed = binary.BigEndian.AppendUint32(framed, uint32(len(body)))
	framed = append(framed, body...)
	r := bytes.NewReader(framed)
	fr := NewFrameReader(r, DefaultFrameBytesMax)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for range b.N {
		r.Reset(framed)
		if _, err := fr.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
