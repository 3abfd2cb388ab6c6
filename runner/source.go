package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reprobox/reprobox/internal/human"
	"github.com/reprobox/reprobox/sandbox"
)

// snapshots holds pristine copies of a plan's source, one per owner and source
// date, each named by its digest (sandbox.Source): every build of the plan
// gets a private overlay over one from its backend, so a check copies the tree
// once per build user rather than once per build, and no build sees another's
// writes. Two copies with the same digest are one.
type snapshots struct {
	mu   sync.Mutex
	dir  string
	byID map[string]sandbox.Source
}

// snapshot returns the pristine copy of the source owned by uid:gid with
// mtimes clamped to sde, making it on first use and saying so on progress
// (nil: silently).
func (p *Plan) snapshot(ctx context.Context, workDir string, sde int64, uid, gid uint32, progress io.Writer) (sandbox.Source, error) {
	p.snaps.mu.Lock()
	defer p.snaps.mu.Unlock()
	if p.snaps.byID == nil {
		if err := os.MkdirAll(workDir, 0o711); err != nil {
			return sandbox.Source{}, fmt.Errorf("runner: %w", err)
		}
		dir, err := os.MkdirTemp(workDir, "source-")
		if err != nil {
			return sandbox.Source{}, fmt.Errorf("runner: %w", err)
		}
		// The backend's overlay reaches the copies as any user may.
		if err := os.Chmod(dir, 0o711); err != nil {
			os.RemoveAll(dir)
			return sandbox.Source{}, fmt.Errorf("runner: %w", err)
		}
		if err := markOwned(dir); err != nil {
			os.RemoveAll(dir)
			return sandbox.Source{}, fmt.Errorf("runner: %w", err)
		}
		p.snaps.dir, p.snaps.byID = dir, map[string]sandbox.Source{}
	}
	key := fmt.Sprintf("%d-%d-%d", uid, gid, sde)
	if src, ok := p.snaps.byID[key]; ok {
		return src, nil
	}
	tmp := filepath.Join(p.snaps.dir, ".copy-"+key)
	if progress != nil {
		fmt.Fprintf(progress, "reprobox: copying the source into a pristine snapshot owned by %d:%d\n", uid, gid)
	}
	start := time.Now()
	files, bytes, digest, err := copyTree(ctx, p.Project, tmp, p.Config.excludes(p.outRel), sde, int(uid), int(gid))
	if err == nil && p.vendor != nil {
		// The fetched crates, vendored (fetch.go); the lock's checksums pin
		// them, and the snapshot's digest covers them through it.
		err = p.vendor.install(ctx, tmp, sde, int(uid), int(gid))
		digest = vendoredDigest(digest, p.vendor, sde)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return sandbox.Source{}, err
	}
	src := sandbox.Source{Digest: digest, Dir: filepath.Join(p.snaps.dir, strings.TrimPrefix(digest, "sha256:"))}
	if _, err := os.Lstat(src.Dir); err == nil {
		os.RemoveAll(tmp) // the same tree already
	} else if err := os.Rename(tmp, src.Dir); err != nil {
		os.RemoveAll(tmp)
		return sandbox.Source{}, fmt.Errorf("runner: %w", err)
	}
	if progress != nil {
		fmt.Fprintf(progress, "reprobox: snapshot of %d files, %s, in %s\n", files, human.Bytes(bytes), time.Since(start).Round(100*time.Millisecond))
	}
	p.snaps.byID[key] = src
	return src, nil
}

// Close removes the plan's source snapshots.
func (p *Plan) Close() error {
	p.snaps.mu.Lock()
	defer p.snaps.mu.Unlock()
	if p.snaps.dir == "" {
		return nil
	}
	err := os.RemoveAll(p.snaps.dir)
	p.snaps.dir, p.snaps.byID = "", nil
	return err
}

// vendoredDigest is the digest of a snapshot of the tree with digest tree and
// the crates of v vendored into it with file times sde.
func vendoredDigest(tree string, v *vendorSet, sde int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nlock %s\ntime %d\n", tree, v.lockSum, sde)
	for _, c := range v.crates {
		fmt.Fprintf(h, "%s %s %s %s\n", c.Name, c.Version, c.Checksum, c.dir)
		if c.git != nil {
			fmt.Fprintf(h, "git %s %s %s\n", c.Source, c.Commit, c.gitPath)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
