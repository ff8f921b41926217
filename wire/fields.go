package wire

import "fmt"

// Client frames (Request, Response and what they contain) are msgpack arrays
// whose element i is field i of a table below. The tables are the single
// source of the layout: the encoder writes every field in table order, and
// the decoder reads the elements present, leaves missing trailing fields
// zero and skips unknown trailing elements, so that a field can be added by
// appending one line to a table (and a row to docs/PROTOCOL.md, which a test
// checks). Never reorder, remove or reuse a field.

// field describes one array element of a client frame.
type field[T any] struct {
	name string // as in docs/PROTOCOL.md
	enc  func(dst []byte, v *T) []byte
	dec  func(r *reader, v *T) error
}

type unsigned interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

func uintField[T any, U unsigned](name string, p func(*T) *U) field[T] {
	return field[T]{
		name: name,
		enc:  func(b []byte, v *T) []byte { return appendUint(b, uint64(*p(v))) },
		dec: func(r *reader, v *T) error {
			x, err := r.uint(uint64(^U(0)))
			*p(v) = U(x)
			return err
		},
	}
}

func boolField[T any](name string, p func(*T) *bool) field[T] {
	return field[T]{
		name: name,
		enc:  func(b []byte, v *T) []byte { return appendBool(b, *p(v)) },
		dec: func(r *reader, v *T) (err error) {
			*p(v), err = r.bool()
			return err
		},
	}
}

func strField[T any](name string, p func(*T) *string) field[T] {
	return field[T]{
		name: name,
		enc:  func(b []byte, v *T) []byte { return appendStr(b, *p(v)) },
		dec: func(r *reader, v *T) (err error) {
			*p(v), err = r.str()
			return err
		},
	}
}

// binField decodes to a slice that aliases the frame body.
func binField[T any](name string, p func(*T) *[]byte) field[T] {
	return field[T]{
		name: name,
		enc:  func(b []byte, v *T) []byte { return appendBin(b, *p(v)) },
		dec: func(r *reader, v *T) (err error) {
			*p(v), err = r.raw()
			return err
		},
	}
}

// structField is a nested array laid out by fs.
func structField[T, S any](name string, p func(*T) *S, fs []field[S]) field[T] {
	return field[T]{
		name: name,
		enc:  func(b []byte, v *T) []byte { return appendFields(b, p(v), fs) },
		dec:  func(r *reader, v *T) error { return decodeFields(r, p(v), fs) },
	}
}

// listField is an array of nested arrays laid out by fs.
func listField[T, S any](name string, p func(*T) *[]S, fs []field[S]) field[T] {
	return field[T]{
		name: name,
		enc: func(b []byte, v *T) []byte {
			list := *p(v)
			b = appendArrayLen(b, len(list))
			for i := range list {
				b = appendFields(b, &list[i], fs)
			}
			return b
		},
		dec: func(r *reader, v *T) error {
			n, err := r.arrayLen()
			if err != nil || n == 0 {
				*p(v) = nil
				return err
			}
			list := make([]S, n)
			for i := range list {
				if err := decodeFields(r, &list[i], fs); err != nil {
					return err
				}
			}
			*p(v) = list
			return nil
		},
	}
}

// appendFields appends v as an array of its fields.
func appendFields[T any](b []byte, v *T, fs []field[T]) []byte {
	b = appendArrayLen(b, len(fs))
	for _, f := range fs {
		b = f.enc(b, v)
	}
	return b
}

// decodeFields reads an array into v.
func decodeFields[T any](r *reader, v *T, fs []field[T]) error {
	n, err := r.arrayLen()
	if err != nil {
		return err
	}
	return decodeElems(r, n, v, fs)
}

// decodeElems reads n array elements into v: fields beyond n stay zero,
// elements beyond the table are skipped.
func decodeElems[T any](r *reader, n int, v *T, fs []field[T]) error {
	for i := 0; i < n; i++ {
		var err error
		if i < len(fs) {
			err = fs[i].dec(r, v)
		} else {
			err = r.skip()
		}
		if err != nil {
			if i < len(fs) {
				return fmt.Errorf("%w (field %s)", err, fs[i].name)
			}
			return err
		}
	}
	return nil
}

// appendFrameBody appends a top-level frame body: [type, fields of v...].
func appendFrameBody[T any](b []byte, t FrameType, v *T, fs []field[T]) []byte {
	b = appendArrayLen(b, 1+len(fs))
	b = appendUint(b, uint64(t))
	for _, f := range fs {
		b = f.enc(b, v)
	}
	return b
}

// decodeFrameBody decodes a top-level frame body of type t into v.
func decodeFrameBody[T any](body []byte, t FrameType, v *T, fs []field[T]) error {
	r := reader{b: body}
	n, err := r.arrayLen()
	if err != nil {
		return err
	}
	if n < 1 {
		return r.errorf("empty frame body")
	}
	if err := expectFrameType(&r, t); err != nil {
		return err
	}
	if err := decodeElems(&r, n-1, v, fs); err != nil {
		return err
	}
	return r.end()
}

// strListField is an array of str.
func strListField[T any](name string, p func(*T) *[]string) field[T] {
	return field[T]{
		name: name,
		enc: func(b []byte, v *T) []byte {
			list := *p(v)
			b = appendArrayLen(b, len(list))
			for _, s := range list {
				b = appendStr(b, s)
			}
			return b
		},
		dec: func(r *reader, v *T) error {
			n, err := r.arrayLen()
			if err != nil || n == 0 {
				*p(v) = nil
				return err
			}
			list := make([]string, n)
			for i := range list {
				if list[i], err = r.str(); err != nil {
					return err
				}
			}
			*p(v) = list
			return nil
		},
	}
}

// uintListField is an array of uint (uint64).
func uintListField[T any](name string, p func(*T) *[]uint64) field[T] {
	return field[T]{
		name: name,
		enc: func(b []byte, v *T) []byte {
			list := *p(v)
			b = appendArrayLen(b, len(list))
			for _, x := range list {
				b = appendUint(b, x)
			}
			return b
		},
		dec: func(r *reader, v *T) error {
			n, err := r.arrayLen()
			if err != nil || n == 0 {
				*p(v) = nil
				return err
			}
			list := make([]uint64, n)
			for i := range list {
				if list[i], err = r.uint(^uint64(0)); err != nil {
					return err
				}
			}
			*p(v) = list
			return nil
		},
	}
}
