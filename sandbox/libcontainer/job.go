package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
)

// Features reports that this backend applies every feature a job may need,
// except reverse directory order when it runs rootless without a usable
// /dev/fuse.
func (b *Backend) Features() []sandbox.Feature {
	all := slices.Clone(Features)
	if b.noFUSE != "" {
		return rootlessFeatures(all)
	}
	return all
}

var _ sandbox.Features = (*Backend)(nil)

// overlayUnsafe are the characters overlayfs cannot take in a layer's path.
const overlayUnsafe = ",:\\"

// checkData checks the parts of a job beyond its spec: the image's root, the
// source and its build path, the directory order and the files.
func checkData(job *sandbox.Job) error {
	root := job.Image.Rootfs
	switch {
	case root == "":
		return errors.New("the job's image has no root filesystem on this host (Image.Rootfs)")
	case !filepath.IsAbs(root):
		return fmt.Errorf("image root filesystem %q is not absolute", root)
	case strings.ContainsAny(root, overlayUnsafe):
		return unsupported("image root filesystem %q (a comma, colon or backslash cannot be given to overlayfs)", root)
	}
	switch job.FileOrdering {
	case "", "native":
	case "reverse":
		if job.BuildPath == "" {
			return errors.New("file ordering reverse without a build path")
		}
		if _, err := exec.LookPath("disorderfs"); err != nil {
			return unsupported("file ordering reverse without disorderfs on this host (apt-get install disorderfs)")
		}
	default:
		return fmt.Errorf("unknown file ordering %q (native or reverse)", job.FileOrdering)
	}
	if job.BuildPath == "" {
		if job.Source.Dir != "" {
			return errors.New("a source without a build path")
		}
	} else {
		src := job.Source.Dir
		switch {
		case !filepath.IsAbs(job.BuildPath) || path.Clean(job.BuildPath) != job.BuildPath || job.BuildPath == "/":
			return fmt.Errorf("build path %q is not a clean absolute path below /", job.BuildPath)
		case src == "":
			return errors.New("a build path without a source (Source.Dir)")
		case !filepath.IsAbs(src):
			return fmt.Errorf("source directory %q is not absolute", src)
		case strings.ContainsAny(src, overlayUnsafe):
			return unsupported("source directory %q (a comma, colon or backslash cannot be given to overlayfs)", src)
		}
	}
	seen := map[string]bool{}
	for _, f := range job.Files {
		switch {
		case !filepath.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/":
			return fmt.Errorf("file path %q is not a clean absolute path below /", f.Path)
		case f.Mode&^fs.ModePerm != 0:
			return fmt.Errorf("file %s: mode %v is not permission bits", f.Path, f.Mode)
		case seen[f.Path]:
			return fmt.Errorf("file %s given twice", f.Path)
		}
		seen[f.Path] = true
	}
	return nil
}

// Run directory paths for a job's source and files.
func (r *run) srcUpper() string  { return filepath.Join(r.dir, "src", "upper") }
func (r *run) srcMerged() string { return filepath.Join(r.dir, "src", "merged") }
func (r *run) srcReverse() string {
	return filepath.Join(r.dir, "src", "reverse")
}

// mountSource mounts the job's private, writable overlay of its source and,
// for the reverse file ordering, disorderfs over it. It returns the directory
// to bind-mount at the build path.
func (r *run) mountSource(ctx context.Context, job *sandbox.Job) (string, error) {
	lower := job.Source.Dir
	st, err := os.Stat(lower)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("source %s is not a directory", lower)
	}
	work := filepath.Join(r.dir, "src", "work")
	if err := os.Mkdir(filepath.Join(r.dir, "src"), 0o711); err != nil {
		return "", err
	}
	for _, d := range []string{r.srcUpper(), work, r.srcMerged()} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	// The merged root takes its owner and mode from the upper directory:
	// make them the source's.
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Lchown(r.srcUpper(), int(sys.Uid), int(sys.Gid)); err != nil {
		return "", err
	}
	if err := os.Chmod(r.srcUpper(), st.Mode().Perm()); err != nil {
		return "", err
	}
	// volatile: the upper directory is thrown away, so skip syncing it.
	opts := "lowerdir=" + lower + ",upperdir=" + r.srcUpper() + ",workdir=" + work + ",volatile" + overlayUserxattr()
	if err := unix.Mount("overlay", r.srcMerged(), "overlay", unix.MS_NODEV|unix.MS_NOSUID, opts); err != nil {
		return "", fmt.Errorf("mount the source overlay on %s: %w", r.srcMerged(), &os.SyscallError{Syscall: "mount", Err: err})
	}
	if job.FileOrdering != "reverse" {
		return r.srcMerged(), nil
	}
	if err := os.Mkdir(r.srcReverse(), 0o755); err != nil {
		return "", err
	}
	src, err := r.fuseSource()
	if err != nil {
		return "", err
	}
	// disorderfs mounts, then runs in the background as the FUSE server
	// until the mount goes (removeRunDir unmounts it, also after a SIGKILL
	// of this process).
	cmd := exec.CommandContext(ctx, "disorderfs", "--multi-user=yes", "--reverse-dirents=yes", "--shuffle-dirents=no",
		"-o", "allow_other,default_permissions", src, r.srcReverse())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("disorderfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return r.srcReverse(), nil
}

// writeFiles writes the job's files into the run directory and returns the
// read-only bind mounts that put them at their paths.
func (r *run) writeFiles(files []sandbox.File) ([]specs.Mount, error) {
	if len(files) == 0 {
		return nil, nil
	}
	dir := filepath.Join(r.dir, "files")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	mounts := make([]specs.Mount, 0, len(files))
	for i, f := range files {
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Path, err)
		}
		if err := os.Chmod(p, f.Mode.Perm()); err != nil { // whatever the umask
			return nil, fmt.Errorf("file %s: %w", f.Path, err)
		}
		mounts = append(mounts, specs.Mount{Destination: f.Path, Type: "bind", Source: p, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	return mounts, nil
}
