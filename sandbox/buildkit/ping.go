package buildkit

import (
	"context"
	"fmt"

	"github.com/reprobox/reprobox/sandbox"
)

var _ sandbox.Pinger = (*Backend)(nil)

// Ping reports whether the daemon answers and has a worker
// ([sandbox.Pinger]).
func (b *Backend) Ping(ctx context.Context) error {
	ws, err := b.client.ListWorkers(ctx)
	if err != nil {
		return fmt.Errorf("buildkit: ping %s: %w", b.address, err)
	}
	if len(ws) == 0 {
		return fmt.Errorf("buildkit: ping %s: the daemon has no worker", b.address)
	}
	return nil
}
