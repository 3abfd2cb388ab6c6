package containerd_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// TestCargoBuild builds examples/leaky-path (a real cargo build, offline,
// with the time shim) on containerd: two normalized builds give the same
// binary, and a perturbed build path gives another (the crate records its
// build directory in its line tables), as reprobox check finds with
// libcontainer.
func TestCargoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("a real cargo build: not with -short")
	}
	b := newBackend(t)
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	src := crateSource(t, "../../examples/leaky-path", base.UID, base.GID)
	build := func(s policies.Settings) string {
		t.Helper()
		job := renderJob(t, s, shim, src, "cargo", "build", "--release", "--offline")
		var sum string
		job.Collect = func(ctx context.Context, res *sandbox.Result, tree string) error {
			data, err := os.ReadFile(filepath.Join(tree, "target/release/leaky-path"))
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			sum = hex.EncodeToString(h[:])
			return nil
		}
		var errb strings.Builder
		job.Stderr = &errb
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		res, err := b.Run(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Success() {
			t.Fatalf("cargo build exited %d: %s", res.ExitCode, errb.String())
		}
		return sum
	}
	a, c := build(base), build(base)
	if a == "" || a != c {
		t.Errorf("two normalized builds: %s and %s", a, c)
	}
	moved := build(policies.Perturb(base, []string{"build_path"}, 7))
	if moved == a {
		t.Errorf("the build path moved and the binary did not change (%s): the crate should record it", a)
	}
	// Source.Dir is untouched by the builds.
	if _, err := os.Stat(filepath.Join(src.Dir, "target")); err == nil {
		t.Error("the build's target directory reached Source.Dir")
	}
}

// crateSource copies the crate at dir into a source owned by uid:gid.
func crateSource(t *testing.T, dir string, uid, gid uint32) sandbox.Source {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "target") {
			return nil
		}
		data, err := os.ReadFile(p)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return source(t, uid, gid, files)
}
