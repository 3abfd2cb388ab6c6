package buildkit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/buildkit"
	"github.com/reprobox/reprobox/sandbox/buildkit/bktest"
)

// The daemon the package's tests share, started by TestMain when the
// machine can run one.
var (
	shared        *bktest.Daemon
	sharedMissing string
)

func TestMain(m *testing.M) {
	sharedMissing = bktest.Missing()
	if sharedMissing == "" {
		d, err := bktest.New()
		if err != nil {
			sharedMissing = err.Error()
		} else {
			shared = d
		}
	}
	code := m.Run()
	if stateRoot != "" {
		_ = os.RemoveAll(stateRoot)
	}
	if shared != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "buildkitd log (%s):\n%s\n", shared.LogPath, shared.Log(40))
		}
		shared.Stop()
	}
	os.Exit(code)
}

// daemon returns the shared daemon, or skips t.
func daemon(t testing.TB) *bktest.Daemon {
	t.Helper()
	if shared == nil {
		testenv.Skip(t, "no buildkitd: %s", sharedMissing)
	}
	return shared
}

var (
	stateOnce sync.Once
	stateRoot string
)

// stateDir is one state directory for the whole test binary: the compiled
// entry program is kept there.
func stateDir() string {
	stateOnce.Do(func() { stateRoot, _ = os.MkdirTemp("", "bk-state-") })
	return stateRoot
}

// newBackend connects a Backend to the shared daemon.
func newBackend(t testing.TB) *buildkit.Backend {
	t.Helper()
	d := daemon(t)
	b, err := buildkit.New(context.Background(), buildkit.Config{Address: d.Address, StateDir: stateDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testImage is the default image of the tests, as a job names it, and its
// unpacked root.
func testImage(t testing.TB) (sandbox.Image, string) {
	t.Helper()
	testenv.NeedRoot(t)
	store, err := images.Open(testenv.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := store.Resolve(testenv.Image())
	if err != nil {
		testenv.Skip(t, "image %s is not in %s (make image builds it): %v", testenv.Image(), testenv.DataDir(), err)
	}
	rootfs, err := store.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return sandbox.Image{Digest: img.Digest.String(), Layout: store.Layout(), Rootfs: rootfs}, rootfs
}

// source makes a source directory owned by uid:gid holding files.
func source(t testing.TB, uid, gid uint32, files map[string]string) sandbox.Source {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:%d\n", uid, gid)
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s=%s\n", name, data)
	}
	if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(uid), int(gid))
	}); err != nil {
		t.Fatal(err)
	}
	return sandbox.Source{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Dir: dir}
}

// renderJob is the job of a build with settings s running args on src.
func renderJob(t testing.TB, s policies.Settings, shim string, src sandbox.Source, args ...string) *sandbox.Job {
	t.Helper()
	img, rootfs := testImage(t)
	var shimData []byte
	if shim != "" {
		var err error
		if shimData, err = os.ReadFile(shim); err != nil {
			t.Fatal(err)
		}
	}
	spec, pfiles, pers, err := policies.Render(s, policies.Host{Rootfs: rootfs, TimeShim: shimData, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	job := &sandbox.Job{
		Image: img, Source: src, BuildPath: s.BuildPath, FileOrdering: s.FileOrdering,
		Spec: spec, Personality: pers,
	}
	for _, f := range pfiles {
		job.Files = append(job.Files, sandbox.File{Path: f.Path, Mode: f.Mode, Data: f.Data})
	}
	return job
}

// shellJob is a normalized job (no time shim) running script with sh -c.
func shellJob(t testing.TB, script string, files map[string]string) *sandbox.Job {
	t.Helper()
	s := policies.Normalized(policies.DefaultSourceDateEpoch)
	s.Clock = 0
	return renderJob(t, s, "", source(t, s.UID, s.GID, files), "/bin/sh", "-c", script)
}

// run runs job and returns its result, standard output and error.
func run(t *testing.T, b sandbox.Backend, job *sandbox.Job) (*sandbox.Result, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	job.Stdout, job.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := b.Run(ctx, job)
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errb.String())
	}
	return res, strings.TrimSpace(out.String()), strings.TrimSpace(errb.String())
}
