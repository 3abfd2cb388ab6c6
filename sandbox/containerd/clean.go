package containerd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
)

var ownerFilter = `labels."` + LabelOwner + `"`

// cleanStale removes what jobs of dead processes left: their tasks are
// killed, then their containers, host mounts and directories, snapshots and
// leases are removed.
func (b *Backend) cleanStale(ctx context.Context) error {
	var errs []error
	cs, err := b.client.Containers(ctx, ownerFilter)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			if !errdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if ownerAlive(labels[LabelOwner]) {
			continue
		}
		b.log.Warn("removing the container of a dead run", "id", c.ID(), "owner", labels[LabelOwner])
		if err := removeContainer(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.ID(), err))
		}
	}

	if err := b.cleanHost(); err != nil {
		errs = append(errs, err)
	}

	sn := b.client.SnapshotService(b.snapshotter)
	var dead []string
	err = sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if !ownerAlive(info.Labels[LabelOwner]) {
			dead = append(dead, info.Name)
		}
		return nil
	}, ownerFilter)
	if err != nil {
		errs = append(errs, fmt.Errorf("list snapshots: %w", err))
	}
	for _, key := range dead {
		b.log.Warn("removing the snapshot of a dead run", "key", key)
		if err := sn.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove snapshot %s: %w", key, err))
		}
	}

	ls := b.client.LeasesService()
	all, err := ls.List(ctx, ownerFilter)
	if err != nil {
		errs = append(errs, fmt.Errorf("list leases: %w", err))
	}
	for _, l := range all {
		if ownerAlive(l.Labels[LabelOwner]) {
			continue
		}
		if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete lease %s: %w", l.ID, err))
		}
	}
	return errors.Join(errs...)
}

// removeContainer kills the container's task and removes the task and the
// container with its root snapshot.
func removeContainer(ctx context.Context, c client.Container) error {
	t, err := c.Task(ctx, nil)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		defer cancel()
		if st, err := t.Wait(ctx); err == nil {
			if err := t.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
				return fmt.Errorf("kill task: %w", err)
			}
			select {
			case <-st:
			case <-ctx.Done():
				return fmt.Errorf("task did not end after SIGKILL: %w", ctx.Err())
			}
		}
		if _, err := t.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("task: %w", err)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// cleanHost unmounts and removes the job directories of dead owners in the
// state directory.
func (b *Backend) cleanHost() error {
	var errs []error
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	for _, dir := range []string{b.jobsDir()} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			owner, _, ok := strings.Cut(e.Name(), "_")
			if !ok {
				continue
			}
			if ownerAlive(strings.Replace(owner, ".", ":", 1)) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			b.log.Warn("removing the host state of a dead run", "dir", p)
			// Deepest first.
			var below []string
			for _, m := range mounts {
				if m == p || strings.HasPrefix(m, p+"/") {
					below = append(below, m)
				}
			}
			slices.SortFunc(below, func(a, b string) int { return len(b) - len(a) })
			failed := false
			for _, m := range below {
				if err := unmount(m); err != nil {
					errs = append(errs, err)
					failed = true
				}
			}
			if failed {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// mountPoints lists the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
