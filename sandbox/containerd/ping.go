package containerd

import (
	"context"
	"errors"
	"fmt"

	"github.com/reprobox/reprobox/sandbox"
)

// Ping reports whether the daemon serves its API ([sandbox.Pinger]).
func (b *Backend) Ping(ctx context.Context) error {
	ok, err := b.client.IsServing(b.nsCtx(ctx))
	if err != nil {
		return fmt.Errorf("containerd: daemon does not answer: %w", err)
	}
	if !ok {
		return errors.New("containerd: daemon is not serving")
	}
	return nil
}

var _ sandbox.Pinger = (*Backend)(nil)
