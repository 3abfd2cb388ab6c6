package buildkit_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/reprobox/reprobox/sandbox"
)

// TestAttackSparseExport: a build leaves a sparse file far larger than its
// disk bound in its tree. It holds almost no blocks in the container, but
// BuildKit's export writes every byte of it into reprobox's state directory
// on the host: the build would fill the host's disk past its bound. The job
// must say the disk bound was exceeded, and what reaches the host must stay
// within the bound.
func TestAttackSparseExport(t *testing.T) {
	b := newBackend(t)
	const bound = 10 << 20
	job := shellJob(t, "truncate -s 1G big && echo made", nil)
	job.DiskBytes = bound
	var hostBytes int64
	job.Collect = func(ctx context.Context, res *sandbox.Result, tree string) error {
		return filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hostBytes += fi.Sys().(*syscall.Stat_t).Blocks * 512
			return nil
		})
	}
	res, out, _ := run(t, b, job)
	if out != "made" {
		t.Fatalf("the build did not make its file: output %q", out)
	}
	if !res.DiskExceeded {
		t.Errorf("a 1 GiB sparse file under a 10 MiB bound: disk exceeded %v", res.DiskExceeded)
	}
	if hostBytes > bound {
		t.Errorf("the export wrote %d bytes on the host for a build bounded to %d", hostBytes, bound)
	}
	assertClean(t)
}
