package containerd

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"

	"github.com/reprobox/reprobox/sandbox"
)

// LabelSourceRoot is on a cached source snapshot: "<uid>:<gid>:<mode>" of
// the source's top directory, checked when the snapshot is reused.
const LabelSourceRoot = "io.reprobox.source-root"

// LabelLastUsed is on a cached source snapshot: when a job last used it
// (RFC 3339), for whoever prunes the cache.
const LabelLastUsed = "io.reprobox.last-used"

// A sourceLayer is the committed snapshot holding a job's source tree.
type sourceLayer struct {
	name string
}

// sourceName is the snapshot name of the source with digest d.
func sourceName(d string) string { return "reprobox/source/" + d }

// sourceLayer returns the committed snapshot holding src's tree, copying
// Source.Dir into a new one the first time a digest is seen. The copy keeps
// owners, modes, times, links and extended attributes (continuity's
// fs.CopyDir, containerd's own copier). Source snapshots are garbage
// collection roots, kept for later jobs with the same source.
func (b *Backend) sourceLayer(ctx context.Context, src sandbox.Source) (sourceLayer, error) {
	if src.Digest == "" {
		return sourceLayer{}, fmt.Errorf("source %s has no digest", src.Dir)
	}
	st, err := os.Stat(src.Dir)
	if err != nil {
		return sourceLayer{}, fmt.Errorf("source: %w", err)
	} else if !st.IsDir() {
		return sourceLayer{}, fmt.Errorf("source %s is not a directory", src.Dir)
	}
	root := fmt.Sprintf("%d:%d:%o", st.Sys().(*syscall.Stat_t).Uid, st.Sys().(*syscall.Stat_t).Gid, st.Mode().Perm())
	b.srcMu.Lock()
	mu := b.sources[src.Digest]
	if mu == nil {
		mu = &sync.Mutex{}
		b.sources[src.Digest] = mu
	}
	b.srcMu.Unlock()
	mu.Lock()
	defer mu.Unlock()

	sn := b.client.SnapshotService(b.snapshotter)
	name := sourceName(src.Digest)
	now := time.Now().UTC().Format(time.RFC3339)
	if info, err := sn.Stat(ctx, name); err == nil {
		// A digest covers ownership and modes: a reused snapshot whose
		// top directory differs means the caller's digest does not.
		if got := info.Labels[LabelSourceRoot]; got != root {
			return sourceLayer{}, fmt.Errorf("source digest %s was first given for a tree whose top directory is %s (uid:gid:mode), and now for %s (%s): a source digest must cover ownership and modes", src.Digest, got, src.Dir, root)
		}
		info.Labels[LabelLastUsed] = now
		if _, err := sn.Update(ctx, info, "labels."+LabelLastUsed); err != nil {
			b.log.Warn("cannot mark a source snapshot used", "name", name, "err", err)
		}
		return sourceLayer{name: name}, nil
	} else if !errdefs.IsNotFound(err) {
		return sourceLayer{}, fmt.Errorf("source snapshot: %w", err)
	}

	b.log.Debug("copying source into a snapshot", "dir", src.Dir, "digest", src.Digest)
	ctx, done, err := b.withLease(ctx, "reprobox/source-copy/"+sandbox.NewID(), b.labels("source"))
	if err != nil {
		return sourceLayer{}, err
	}
	defer func() { _ = done(context.WithoutCancel(ctx)) }()
	key := name + "/copy-" + sandbox.NewID()
	mounts, err := sn.Prepare(ctx, key, "", snapshots.WithLabels(b.labels("source")))
	if err != nil {
		return sourceLayer{}, fmt.Errorf("source snapshot: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	tmp, err := os.MkdirTemp(b.jobsDir(), jobDirPrefix(b.owner)+"source_")
	if err != nil {
		return sourceLayer{}, err
	}
	defer os.Remove(tmp)
	// Mounted beneath the state directory, so that New finds the mount
	// if this process dies during the copy.
	if err := mount.All(mounts, tmp); err != nil {
		return sourceLayer{}, fmt.Errorf("mount source snapshot: %w", err)
	}
	err = fs.CopyDir(tmp, src.Dir)
	if uerr := unmount(tmp); uerr != nil {
		return sourceLayer{}, uerr
	}
	if err != nil {
		return sourceLayer{}, fmt.Errorf("copy source %s: %w", src.Dir, err)
	}
	err = sn.Commit(ctx, name, key, snapshots.WithLabels(map[string]string{
		LabelSource:             src.Digest,
		LabelSourceRoot:         root,
		LabelLastUsed:           now,
		"containerd.io/gc.root": now,
	}))
	if errdefs.IsAlreadyExists(err) {
		// Another process committed the same source first.
		return sourceLayer{name: name}, nil
	} else if err != nil {
		return sourceLayer{}, fmt.Errorf("commit source snapshot: %w", err)
	}
	committed = true
	return sourceLayer{name: name}, nil
}

// SourceMaxAge is how long a cached source snapshot is kept after a job last
// used it: New removes older ones.
const SourceMaxAge = 7 * 24 * time.Hour

// pruneSources removes the cached source snapshots no job used since
// cutoff. One still in use (a running job's snapshot on top) is kept.
func (b *Backend) pruneSources(ctx context.Context, cutoff time.Time) error {
	sn := b.client.SnapshotService(b.snapshotter)
	var old []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		t, err := time.Parse(time.RFC3339, info.Labels[LabelLastUsed])
		if err != nil || t.Before(cutoff) {
			old = append(old, info.Name)
		}
		return nil
	}, `labels."`+LabelSource+`"`)
	if err != nil {
		return fmt.Errorf("list source snapshots: %w", err)
	}
	for _, name := range old {
		err := sn.Remove(ctx, name)
		switch {
		case err == nil:
			b.log.Debug("removed an unused source snapshot", "name", name)
		case errdefs.IsNotFound(err), errdefs.IsFailedPrecondition(err):
			// Gone already, or a job runs on it.
		default:
			return fmt.Errorf("remove source snapshot %s: %w", name, err)
		}
	}
	return nil
}
