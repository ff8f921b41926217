package statemachine

import "github.com/vmihailenco/msgpack/v5"

// The duplicate-detection table's part of a snapshot, encoded without
// reflection, as encodeSnapKV does for the keys. After the keys it is the
// largest part of a snapshot (up to ClientsMax clients with up to
// ResultsPerClientMax stored results each), and msgpack's reflection walks
// every field of every result: the node simulation, which hashes every
// replica's state after every slot (hash.go), spent most of its hashing
// time there.
//
// The bytes are exactly those of msgpack's reflection with
// UseCompactInts (each struct an array of its fields in declaration
// order; a nil slice or pointer as nil; []byte and []uint8 as bin; other
// integers in their shortest form): TestSnapshotRoundTrip compares the
// streamed encoding with msgpack's of the whole state, and
// TestLevelZeroAsBefore pins a snapshot's bytes. A change to one of these
// structs must change both.

// encodeSnapClients writes cs as msgpack's reflection would.
func encodeSnapClients(enc *msgpack.Encoder, cs []SnapClient) error {
	if cs == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(len(cs)); err != nil {
		return err
	}
	for i := range cs {
		c := &cs[i]
		if err := encodeArrayOf(enc, 4, c.ID, c.Floor, c.LastSlot); err != nil {
			return err
		}
		if c.Results == nil {
			if err := enc.EncodeNil(); err != nil {
				return err
			}
			continue
		}
		if err := enc.EncodeArrayLen(len(c.Results)); err != nil {
			return err
		}
		for j := range c.Results {
			sr := &c.Results[j]
			if err := encodeArrayOf(enc, 2, sr.Seq); err != nil {
				return err
			}
			if err := encodeSnapResult(enc, &sr.Result); err != nil {
				return err
			}
		}
	}
	return nil
}

// encodeArrayOf writes the header of an array of n elements and its first
// ones, the unsigned integers us.
func encodeArrayOf(enc *msgpack.Encoder, n int, us ...uint64) error {
	if err := enc.EncodeArrayLen(n); err != nil {
		return err
	}
	for _, u := range us {
		if err := enc.EncodeUint(u); err != nil {
			return err
		}
	}
	return nil
}

func encodeSnapResult(enc *msgpack.Encoder, r *SnapResult) error {
	if err := enc.EncodeArrayLen(13); err != nil {
		return err
	}
	if r.Err == nil {
		if err := enc.EncodeNil(); err != nil {
			return err
		}
	} else {
		if err := enc.EncodeArrayLen(2); err != nil {
			return err
		}
		if err := enc.EncodeString(r.Err.Msg); err != nil {
			return err
		}
		if err := enc.EncodeBytes(r.Err.Is); err != nil {
			return err
		}
	}
	if err := enc.EncodeUint(r.Revision); err != nil {
		return err
	}
	if err := enc.EncodeBool(r.Found); err != nil {
		return err
	}
	if err := encodeSnapKV(enc, &r.KV); err != nil {
		return err
	}
	if r.KVs == nil {
		if err := enc.EncodeNil(); err != nil {
			return err
		}
	} else {
		if err := enc.EncodeArrayLen(len(r.KVs)); err != nil {
			return err
		}
		for i := range r.KVs {
			if err := encodeSnapKV(enc, &r.KVs[i]); err != nil {
				return err
			}
		}
	}
	for _, b := range []bool{r.More, r.Succeeded} {
		if err := enc.EncodeBool(b); err != nil {
			return err
		}
	}
	s := &r.Session
	if err := encodeArrayOf(enc, 6, s.ID, s.TTLMs, s.RemainingMs); err != nil {
		return err
	}
	for _, ss := range [][]string{s.Locks, s.Waiting, s.Elections} {
		if err := encodeStrings(enc, ss); err != nil {
			return err
		}
	}
	if err := enc.EncodeUint(r.Token); err != nil {
		return err
	}
	for _, b := range []bool{r.Pending, r.Held} {
		if err := enc.EncodeBool(b); err != nil {
			return err
		}
	}
	l := &r.Lock
	if err := enc.EncodeArrayLen(5); err != nil {
		return err
	}
	if err := enc.EncodeString(l.Name); err != nil {
		return err
	}
	for _, u := range []uint64{l.Holder, l.Token} {
		if err := enc.EncodeUint(u); err != nil {
			return err
		}
	}
	if err := encodeUints(enc, l.Waiters); err != nil {
		return err
	}
	if err := enc.EncodeUint(l.DelayUntil); err != nil {
		return err
	}
	ld := &r.Leader
	if err := enc.EncodeArrayLen(6); err != nil {
		return err
	}
	if err := enc.EncodeString(ld.Name); err != nil {
		return err
	}
	if err := enc.EncodeUint(ld.Session); err != nil {
		return err
	}
	if err := enc.EncodeBytes(ld.Value); err != nil {
		return err
	}
	for _, u := range []uint64{ld.Term, ld.Seq, ld.Revision} {
		if err := enc.EncodeUint(u); err != nil {
			return err
		}
	}
	return nil
}

func encodeStrings(enc *msgpack.Encoder, ss []string) error {
	return encodeList(enc, ss, enc.EncodeString)
}

func encodeUints(enc *msgpack.Encoder, us []uint64) error {
	return encodeList(enc, us, enc.EncodeUint)
}

// encodeList writes xs as reflection would: nil as nil, else an array of
// its elements, each written by put.
func encodeList[T any](enc *msgpack.Encoder, xs []T, put func(T) error) error {
	if xs == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(len(xs)); err != nil {
		return err
	}
	for _, x := range xs {
		if err := put(x); err != nil {
			return err
		}
	}
	return nil
}
