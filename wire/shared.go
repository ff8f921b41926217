package wire

import "fmt"

// SharedResponse is one response that many streams get alike, encoded
// once: a watch push, which every watcher of a prefix at the same position
// is sent with only its stream's id differing. A node with thousands of
// watchers would otherwise encode the same events thousands of times.
type SharedResponse struct {
	// Response is what is sent; its ID is each stream's own.
	Response Response
	tail     []byte // every field after the id, encoded
}

// NewSharedResponse encodes r, but for its id, once. r must not change
// afterwards.
func NewSharedResponse(r *Response) *SharedResponse {
	s := &SharedResponse{Response: *r}
	for _, f := range responseFields[1:] {
		s.tail = f.enc(s.tail, &s.Response)
	}
	return s
}

// CorkShared is Cork for s's response with the id id: the frame is the
// one Cork would make, at the cost of a copy.
func (c *ClientConn) CorkShared(id uint64, s *SharedResponse) (first bool, err error) {
	select {
	case <-c.fc.writerDone:
		return false, c.fc.closedErr()
	case <-c.fc.stop:
		return false, ErrClosed
	default:
	}
	before := len(c.cork)
	if c.cork == nil {
		c.cork = getFrameBuf()
	}
	c.cork = appendFramed(c.cork, func(b []byte) []byte {
		b = appendArrayLen(b, 1+len(responseFields))
		b = appendUint(b, uint64(FrameResponse))
		b = appendUint(b, id)
		return append(b, s.tail...)
	})
	if n := len(c.cork) - before - frameHeaderBytes; n > c.fc.frameMax {
		c.cork = c.cork[:before]
		return false, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, c.fc.frameMax)
	}
	return before == 0, nil
}
