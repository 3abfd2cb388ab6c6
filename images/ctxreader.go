package images

import (
	"context"
	"io"
)

// ctxReader reads from r until ctx is done, so that copying a large blob
// stops soon after a cancellation (Ctrl-C during an import).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
