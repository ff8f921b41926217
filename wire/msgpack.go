package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// This file is the small subset of msgpack (https://msgpack.org/) the wire
// format uses, written by hand so that the hot path neither reflects nor
// allocates beyond the decoded values themselves.
//
// Encoders always pick the shortest form. Decoders are lenient where other
// implementations differ: an unsigned field accepts any non-negative integer
// format, a byte field accepts bin or str (and a string field accepts str or
// bin), and nil means the zero value of any field.

// msgpack format bytes.
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return append(b, p...)
}

// reader decodes msgpack values from a byte slice. Every length it reads is
// checked against the bytes that remain before anything is allocated, so a
// hostile length prefix produces an error, never a large allocation.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, r.off, fmt.Sprintf(format, args...))
}

func (r *reader) next() (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.errorf("unexpected end of body")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// take returns the next n bytes, aliasing the input.
func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, r.errorf("length %d exceeds the %d bytes left", n, r.remaining())
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) be(n int) (uint64, error) {
	p, err := r.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// uint reads a non-negative integer no larger than max.
func (r *reader) uint(max uint64) (uint64, error) {
	start := r.off
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var v uint64
	switch {
	case c <= 0x7f:
		v = uint64(c)
	case c == mpNil:
		return 0, nil
	case c >= mpUint8 && c <= mpUint64:
		v, err = r.be(1 << (c - mpUint8))
	case c >= mpInt8 && c <= mpInt64:
		n := 1 << (c - mpInt8)
		v, err = r.be(n)
		if err == nil && v>>(uint(n)*8-1) != 0 {
			r.off = start
			return 0, r.errorf("negative integer where an unsigned one is expected")
		}
	default:
		r.off = start
		return 0, r.errorf("found 0x%02x where an unsigned integer is expected", c)
	}
	if err != nil {
		return 0, err
	}
	if v > max {
		r.off = start
		return 0, r.errorf("integer %d out of range (max %d)", v, max)
	}
	return v, nil
}

func (r *reader) bool() (bool, error) {
	c, err := r.next()
	if err != nil {
		return false, err
	}
	switch c {
	case mpTrue:
		return true, nil
	case mpFalse, mpNil:
		return false, nil
	}
	r.off--
	return false, r.errorf("found 0x%02x where a bool is expected", c)
}

// raw reads a str or bin (or nil) and returns its bytes, aliasing the input.
// An empty or nil value reads as nil.
func (r *reader) raw() ([]byte, error) {
	start := r.off
	c, err := r.next()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = uint64(c & 0x1f)
	case c == mpNil:
		return nil, nil
	case c == mpStr8 || c == mpBin8:
		n, err = r.be(1)
	case c == mpStr16 || c == mpBin16:
		n, err = r.be(2)
	case c == mpStr32 || c == mpBin32:
		n, err = r.be(4)
	default:
		r.off = start
		return nil, r.errorf("found 0x%02x where bin or str is expected", c)
	}
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return r.take(int(n))
}

func (r *reader) str() (string, error) {
	p, err := r.raw()
	return string(p), err
}

// arrayLen reads an array header (nil reads as an empty array). The length
// is at most the bytes left, since every element takes at least one byte.
func (r *reader) arrayLen() (int, error) {
	start := r.off
	c, err := r.next()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c >= 0x90 && c <= 0x9f:
		n = uint64(c & 0x0f)
	case c == mpNil:
		return 0, nil
	case c == mpArray16:
		n, err = r.be(2)
	case c == mpArray32:
		n, err = r.be(4)
	default:
		r.off = start
		return 0, r.errorf("found 0x%02x where an array is expected", c)
	}
	if err != nil {
		return 0, err
	}
	if n > uint64(r.remaining()) {
		r.off = start
		return 0, r.errorf("array of %d elements in %d bytes", n, r.remaining())
	}
	return int(n), nil
}

// skip steps over one value of any type. It does not recurse: it counts the
// values still to skip, which nested arrays and maps add to, so a deeply
// nested input cannot exhaust the stack.
func (r *reader) skip() error {
	for pending := 1; pending > 0; pending-- {
		start := r.off
		c, err := r.next()
		if err != nil {
			return err
		}
		var n uint64 // payload bytes to step over
		var elems uint64
		switch {
		case c <= 0x7f || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue:
		case c >= 0x80 && c <= 0x8f:
			elems = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			elems = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			n = uint64(c & 0x1f)
		case c == mpBin8 || c == mpStr8:
			n, err = r.be(1)
		case c == mpBin16 || c == mpStr16:
			n, err = r.be(2)
		case c == mpBin32 || c == mpStr32:
			n, err = r.be(4)
		case c == mpExt8:
			n, err = r.be(1)
			n++
		case c == mpExt16:
			n, err = r.be(2)
			n++
		case c == mpExt32:
			n, err = r.be(4)
			n++
		case c == mpFloat32:
			n = 4
		case c == mpFloat64:
			n = 8
		case c >= mpUint8 && c <= mpUint64:
			n = 1 << (c - mpUint8)
		case c >= mpInt8 && c <= mpInt64:
			n = 1 << (c - mpInt8)
		case c >= mpFixExt1 && c <= mpFixExt16:
			n = 1 + 1<<(c-mpFixExt1)
		case c == mpArray16:
			elems, err = r.be(2)
		case c == mpArray32:
			elems, err = r.be(4)
		case c == mpMap16:
			elems, err = r.be(2)
			elems *= 2
		case c == mpMap32:
			elems, err = r.be(4)
			elems *= 2
		default: // 0xc1 is never used
			r.off = start
			return r.errorf("invalid msgpack byte 0x%02x", c)
		}
		if err != nil {
			return err
		}
		if n > uint64(r.remaining()) || elems > uint64(r.remaining()) {
			r.off = start
			return r.errorf("value of %d bytes / %d elements in %d bytes", n, elems, r.remaining())
		}
		r.off += int(n)
		pending += int(elems)
	}
	return nil
}

// end fails unless the whole input has been read: a body is exactly one value.
func (r *reader) end() error {
	if r.remaining() != 0 {
		return r.errorf("%d bytes after the end of the value", r.remaining())
	}
	return nil
}
