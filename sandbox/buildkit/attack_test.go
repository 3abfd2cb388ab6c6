package buildkit_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

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

// TestAttackImageLinkToJobDir: the image makes the build directory a
// symbolic link to the job directory (/build/src -> /.reprobox-job). The
// entry program binds the tree where the link leads, over the job
// directory, and its detach of the job directory then takes that bind
// away instead: the build would run in the job directory itself, beside
// the control files and where the status goes. The build must never see
// them: the job runs without, or fails as a sandbox failure.
func TestAttackImageLinkToJobDir(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "if [ -e ctl/config ] || [ -e ../ctl/config ]; then echo SAW-CONTROL; ls -a; fi; echo ran", nil)
	job.Image = withLayer(t, job.Image, []tarEntry{
		{name: "build/", typ: tar.TypeDir, mode: 0o755},
		{name: "build/src", typ: tar.TypeSymlink, link: "/.reprobox-job"},
	})
	var out, errb bytes.Buffer
	job.Stdout, job.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := b.Run(ctx, job)
	if strings.Contains(out.String(), "SAW-CONTROL") {
		t.Errorf("the build saw the control directory: %q", out.String())
	}
	if err == nil && !strings.Contains(out.String(), "ran") {
		t.Errorf("exit %d, output %q", res.ExitCode, out.String())
	}
	t.Logf("result %v, error %v, stderr %q", res, err, errb.String())
	assertClean(t)
}

type tarEntry struct {
	name, link   string
	typ          byte
	mode         int64
	major, minor int64
}

// withLayer is img with one more layer holding entries, in a new OCI
// layout whose other blobs are hard links to img's.
func withLayer(t *testing.T, img sandbox.Image, entries []tarEntry) sandbox.Image {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) digest.Digest {
		d := digest.FromBytes(data)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	read := func(d string) []byte {
		data, err := os.ReadFile(filepath.Join(img.Layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	link := func(d string) {
		h := strings.TrimPrefix(d, "sha256:")
		if err := os.Link(filepath.Join(img.Layout, "blobs", "sha256", h), filepath.Join(blobs, h)); err != nil {
			t.Fatal(err)
		}
	}
	var man map[string]any
	if err := json.Unmarshal(read(img.Digest), &man); err != nil {
		t.Fatal(err)
	}
	cfgDesc := man["config"].(map[string]any)
	var cfg map[string]any
	if err := json.Unmarshal(read(cfgDesc["digest"].(string)), &cfg); err != nil {
		t.Fatal(err)
	}
	layers := man["layers"].([]any)
	for _, l := range layers {
		link(l.(map[string]any)["digest"].(string))
	}
	ld := put(layer.Bytes())
	man["layers"] = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.String(), "size": layer.Len()})
	rootfs := cfg["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), ld.String())
	cfgData, _ := json.Marshal(cfg)
	cfgDesc["digest"], cfgDesc["size"] = put(cfgData).String(), len(cfgData)
	manData, _ := json.Marshal(man)
	md := put(manData)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.String(), "size": len(manData)}}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return sandbox.Image{Digest: md.String(), Layout: dir, Rootfs: img.Rootfs}
}

// TestAttackImageDeviceNode: the image carries a block device node for the
// host's own disk, world-readable. BuildKit runs the entry program with
// security.insecure, whose spec allows every device in the device cgroup,
// and unpacks the node into the container's root: the build (an ordinary
// user with no capability) would read the host's disk through it wherever
// the daemon's device cgroup lets it (on this machine it answers EPERM).
// reprobox's unpacker refuses such an image, but the backend must not rely
// on it: the entry program remounts the root nodev (EACCES).
func TestAttackImageDeviceNode(t *testing.T) {
	b := newBackend(t)
	var st syscall.Stat_t
	if err := syscall.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	job := shellJob(t, "if head -c 512 /hostdisk > /dev/null; then echo READ-HOST-DISK; fi; echo ran", nil)
	job.Image = withLayer(t, job.Image, []tarEntry{{name: "hostdisk", typ: tar.TypeBlock, mode: 0o666,
		major: int64(unix.Major(st.Dev)), minor: int64(unix.Minor(st.Dev))}})
	var out, errb bytes.Buffer
	job.Stdout, job.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := b.Run(ctx, job)
	if strings.Contains(out.String(), "READ-HOST-DISK") {
		t.Errorf("the build read the host's disk through the image's device node")
	}
	if err != nil || !strings.Contains(out.String(), "ran") {
		t.Errorf("result %v, error %v, output %q", res, err, out.String())
	}
	t.Logf("stderr %q", errb.String())
	assertClean(t)
}
