package statemachine

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// checkMsgpackShape checks that the size bytes of r are exactly one
// MessagePack value whose every declared length fits in the bytes that
// follow it: an array or map header cannot declare more elements than
// bytes remain, so a short hostile input cannot make the decoder allocate
// much. Extension types (which the format never uses) are refused. It does
// not recurse, and reads r once, front to back.
func checkMsgpackShape(r *bufio.Reader, size int64) error {
	pos := uint64(0)
	total := uint64(max(size, 0))
	pending := uint64(1) // values still to read
	need := func(n uint64) error {
		if n > total-pos {
			return fmt.Errorf("truncated at byte %d: %d more bytes declared, %d left", pos, n, total-pos)
		}
		return nil
	}
	var lenBuf [4]byte
	length := func(size int) (uint64, error) {
		if err := need(uint64(size)); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(r, lenBuf[:size]); err != nil {
			return 0, fmt.Errorf("reading at byte %d: %w", pos, err)
		}
		var n uint64
		switch size {
		case 1:
			n = uint64(lenBuf[0])
		case 2:
			n = uint64(binary.BigEndian.Uint16(lenBuf[:]))
		case 4:
			n = uint64(binary.BigEndian.Uint32(lenBuf[:]))
		}
		pos += uint64(size)
		return n, nil
	}
	for pending > 0 {
		if pos >= total {
			return fmt.Errorf("truncated: %d values missing at the end", pending)
		}
		c, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("reading at byte %d: %w", pos, err)
		}
		pos++
		pending--
		var skip, elems uint64
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bool
		case c >= 0x80 && c <= 0x8f: // fixmap
			elems = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f: // fixarray
			elems = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			skip, err = length(1)
		case c == 0xc5 || c == 0xda: // bin16, str16
			skip, err = length(2)
		case c == 0xc6 || c == 0xdb: // bin32, str32
			skip, err = length(4)
		case c == 0xca: // float32
			skip = 4
		case c == 0xcb: // float64
			skip = 8
		case c >= 0xcc && c <= 0xd3: // uint8..64, int8..64
			skip = 1 << ((c - 0xcc) & 3)
		case c == 0xdc: // array16
			elems, err = length(2)
		case c == 0xdd: // array32
			elems, err = length(4)
		case c == 0xde: // map16
			elems, err = length(2)
			elems *= 2
		case c == 0xdf: // map32
			elems, err = length(4)
			elems *= 2
		default: // 0xc1 (never used), extensions
			return fmt.Errorf("unexpected MessagePack code %#x at byte %d", c, pos-1)
		}
		if err != nil {
			return err
		}
		if err := need(skip); err != nil {
			return err
		}
		if _, err := r.Discard(int(skip)); err != nil {
			return fmt.Errorf("reading at byte %d: %w", pos, err)
		}
		pos += skip
		// Every pending value takes at least one byte.
		if err := need(pending + elems); err != nil {
			return err
		}
		pending += elems
	}
	if pos != total {
		return fmt.Errorf("%d bytes after the snapshot", total-pos)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return fmt.Errorf("more than the %d bytes announced (%v)", total, err)
	}
	return nil
}
