package buildkit_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// TestNondeterministicFixture builds testdata/crates/nondeterministic (its
// build script writes a HashSet's order, one of two at random per run) with
// identical jobs: a cache that answered a repeated job, or merged two, would
// give one output every time. Real runs give both orders (a run of six with
// one order happens with probability 1/32; the test runs up to eight).
func TestNondeterministicFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("real cargo builds: not with -short")
	}
	b := newBackend(t)
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	src := crateSource(t, "../../testdata/crates/nondeterministic", base.UID, base.GID)
	seen := map[string]int{}
	for i := 0; i < 8 && len(seen) < 2; i++ {
		job := renderJob(t, base, shim, src, "/bin/sh", "-c", "cargo build --release --offline -q && ./target/release/nondeterministic")
		var errb strings.Builder
		var out strings.Builder
		job.Stdout, job.Stderr = &out, &errb
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		res, err := b.Run(ctx, job)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Success() {
			t.Fatalf("cargo build exited %d: %s", res.ExitCode, errb.String())
		}
		seen[strings.TrimSpace(out.String())]++
	}
	if len(seen) < 2 {
		t.Errorf("eight identical builds all gave %v: answered from a cache, or merged", seen)
	}
	t.Logf("outputs: %v", seen)
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
