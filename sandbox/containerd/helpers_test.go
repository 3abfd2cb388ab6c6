package containerd_test

import (
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

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/containerd"
	"github.com/reprobox/reprobox/sandbox/containerd/ctrtest"
)

// The daemon the package's tests share (importing the image costs seconds
// per daemon), started by TestMain when the machine can run one.
var (
	shared        *ctrtest.Daemon
	sharedMissing string
)

func TestMain(m *testing.M) {
	if maybeChild() {
		return
	}
	sharedMissing = ctrtest.Missing()
	if sharedMissing == "" {
		d, err := ctrtest.New()
		if err != nil {
			sharedMissing = err.Error()
		} else {
			shared = d
		}
	}
	code := m.Run()
	if stateRoot != "" {
		// Never through a mount a failed test left behind.
		if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && !strings.Contains(string(b), " "+stateRoot+"/") {
			_ = os.RemoveAll(stateRoot)
		}
	}
	if shared != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "containerd log (%s):\n%s\n", shared.LogPath, shared.Log(40))
		}
		shared.Stop()
	}
	os.Exit(code)
}

// daemon returns the shared daemon, or skips t.
func daemon(t testing.TB) *ctrtest.Daemon {
	t.Helper()
	if shared == nil {
		testenv.Skip(t, "no containerd daemon: %s", sharedMissing)
	}
	return shared
}

// newBackend connects a Backend to the shared daemon, with its state in a
// directory of the test.
func newBackend(t testing.TB) *containerd.Backend {
	t.Helper()
	d := daemon(t)
	b, err := containerd.New(context.Background(), containerd.Config{
		Address:  d.Address,
		StateDir: stateDir(t),
		DiskPoll: 100_000_000, // 100 ms
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var (
	stateOnce sync.Once
	stateRoot string
)

// stateDir is one state directory for the whole test binary: the compiled
// personality program is kept there.
func stateDir(t testing.TB) string {
	stateOnce.Do(func() {
		stateRoot, _ = os.MkdirTemp("", "ctrd-state-")
	})
	return stateRoot
}

// testImage is the default image of the tests, as a job names it.
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
	return sandbox.Image{Digest: img.Digest.String(), Layout: filepath.Join(store.Dir(), "oci")}, rootfs
}

// source makes a source directory owned by uid:gid holding files, with a
// digest of its content.
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
	fmt.Fprintf(h, "%s\n", t.Name())
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
	spec, files, pers, err := render(s, rootfs, shim, args)
	if err != nil {
		t.Fatal(err)
	}
	return &sandbox.Job{
		Image: img, Source: src, BuildPath: s.BuildPath, FileOrdering: s.FileOrdering,
		Spec: spec, Files: files, Personality: pers,
	}
}

// render is the only call of policies.Render in these tests.
func render(s policies.Settings, rootfs, shim string, args []string) (*specs.Spec, []sandbox.File, uint32, error) {
	var shimData []byte
	if shim != "" {
		var err error
		if shimData, err = os.ReadFile(shim); err != nil {
			return nil, nil, 0, err
		}
	}
	spec, pfiles, pers, err := policies.Render(s, policies.Host{Rootfs: rootfs, TimeShim: shimData, Args: args})
	if err != nil {
		return nil, nil, 0, err
	}
	files := make([]sandbox.File, len(pfiles))
	for i, f := range pfiles {
		files[i] = sandbox.File{Path: f.Path, Mode: f.Mode, Data: f.Data}
	}
	return spec, files, pers, nil
}

// shellJob is a normalized job (no time shim) running script with sh -c.
func shellJob(t testing.TB, script string, files map[string]string) *sandbox.Job {
	t.Helper()
	s := policies.Normalized(policies.DefaultSourceDateEpoch)
	s.Clock = 0
	return renderJob(t, s, "", source(t, s.UID, s.GID, files), "/bin/sh", "-c", script)
}

func specsBind(src, dst string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"bind", "ro"}}
}

// lines is the output as trimmed text.
func lines(b []byte) string { return strings.TrimSpace(string(b)) }
