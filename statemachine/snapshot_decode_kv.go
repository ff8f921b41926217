package statemachine

import (
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Decoding a snapshot's keys without reflection: a snapshot of a million
// keys spends most of its restore here (the rest is snapshot_restore.go).

// decodeSnapKV reads what encodeSnapKV wrote, without reflection, and
// accepts what msgpack's reflection accepts for a SnapKV (any integer
// encoding, nil for the value). With values set, the value is read into
// *values (grown as needed) instead of a new slice; without, the key and
// the value are read into scratch and copied into one allocation, as the
// store holds a put's pair (joinKeyValue).
func decodeSnapKV(dec *msgpack.Decoder, values, scratch *[]byte) (SnapKV, error) {
	var kv SnapKV
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return kv, err
	}
	if n != 5 {
		return kv, fmt.Errorf("a key of %d fields, want 5", n)
	}
	if values != nil {
		if kv.Key, err = dec.DecodeString(); err != nil {
			return kv, err
		}
		kv.Value, err = decodeBytesInto(dec, values)
	} else {
		kv.Key, kv.Value, err = decodeKeyValue(dec, scratch)
	}
	if err != nil {
		return kv, err
	}
	for _, f := range []*uint64{&kv.CreateRevision, &kv.ModRevision, &kv.Version} {
		if *f, err = dec.DecodeUint64(); err != nil {
			return kv, err
		}
	}
	return kv, nil
}

// decodeKeyValue reads a key (a str, or whatever DecodeString accepts)
// and a value (a bin or nil) into scratch, grown as needed, and returns
// them copied into one allocation.
func decodeKeyValue(dec *msgpack.Decoder, scratch *[]byte) (string, []byte, error) {
	code, err := dec.PeekCode()
	if err != nil {
		return "", nil, err
	}
	if code == msgpcode.Nil {
		if err := dec.DecodeNil(); err != nil {
			return "", nil, err
		}
	} else if *scratch, err = readInto(dec, (*scratch)[:0]); err != nil {
		return "", nil, err
	}
	klen := len(*scratch)
	if code, err = dec.PeekCode(); err != nil {
		return "", nil, err
	}
	if code == msgpcode.Nil {
		err = dec.DecodeNil()
	} else {
		*scratch, err = readInto(dec, *scratch)
	}
	if err != nil {
		return "", nil, err
	}
	key, value := joinKeyValue((*scratch)[:klen], (*scratch)[klen:])
	return key, value, nil
}

// readInto reads a str or bin through dec and appends its payload to b.
func readInto(dec *msgpack.Decoder, b []byte) ([]byte, error) {
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return b, err
	}
	if n < 0 {
		return b, nil
	}
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	return b, dec.ReadFull(b[start:])
}
