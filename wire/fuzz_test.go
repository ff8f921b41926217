package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/paxosd/paxosd/paxos"
)

func fuzzSeeds(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, g := range goldens {
		f.Add(encodeAny(g.value))
	}
	for typ := paxos.MsgPreVote; typ.Valid(); typ++ {
		f.Add(EncodeMessage(nil, randMessage(rng, typ)))
	}
	f.Add(EncodeRequest(nil, randRequest(rng)))
	f.Add(EncodeResponse(nil, randResponse(rng)))
	f.Add([]byte{0x9c, 0x01, 0x05, 1, 2, 0, 0, 0, 0, 0xc2, 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
}

// FuzzReadFrame: any stream yields frames or an error, never more than the
// limit, and re-framing the frames read reproduces the stream's prefix.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(AppendFrame(nil, []byte("ab")), nil), 16)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0}, 1<<20)
	f.Add([]byte{0, 0, 0, 3, 1}, 0)
	f.Fuzz(func(t *testing.T, stream []byte, max int) {
		if max > 1<<20 || max < 0 {
			max = 1 << 20
		}
		fr := NewFrameReader(bytes.NewReader(stream), max)
		var again []byte
		for {
			body, err := fr.ReadFrame()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if max > 0 && len(body) > max {
				t.Fatalf("frame of %d bytes over limit %d", len(body), max)
			}
			again = AppendFrame(again, body)
		}
		if !bytes.HasPrefix(stream, again) {
			t.Fatalf("frames read do not re-frame to the stream")
		}
	})
}

// FuzzDecodeMessage: any body decodes or fails with ErrMalformed; what
// decodes re-encodes to something that decodes to the same message.
func FuzzDecodeMessage(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodeMessage(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !m.Type.Valid() {
			t.Fatalf("decoded invalid type %d", m.Type)
		}
		m2, err := DecodeMessage(EncodeMessage(nil, m))
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding: %v\n%v\n%v", err, m, m2)
		}
	})
}

// FuzzDecodeRequest: as FuzzDecodeMessage, for requests (and, on the same
// input, responses and hellos).
func FuzzDecodeRequest(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		DecodeResponse(body)
		DecodeHello(body)
		q, err := DecodeRequest(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		q2, err := DecodeRequest(EncodeRequest(nil, q))
		if err != nil || !reflect.DeepEqual(q, q2) {
			t.Fatalf("re-encoding: %v\n%#v\n%#v", err, q, q2)
		}
	})
}
