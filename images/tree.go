package images

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// tree is what the unpacker does to a root filesystem. Paths are clean,
// slash-separated and relative to the root ("" is the root), and the
// unpacker has already resolved every parent to a real directory; the last
// component is never followed.
//
// hostTree writes a real directory (Rootfs); memTree only models the tree's
// names, types and link targets, so that Import can walk a layer through the
// very same rules without writing anything.
type tree interface {
	// lstat returns the type bits of p (fs.ModeDir, fs.ModeSymlink, 0 for a
	// regular file, …), or an error wrapping fs.ErrNotExist.
	lstat(p string) (fs.FileMode, error)
	readlink(p string) (string, error)
	// mkdir fails with an error wrapping fs.ErrExist if p exists.
	mkdir(p string, perm fs.FileMode) error
	removeAll(p string) error
	// readDir returns the sorted names in p.
	readDir(p string) ([]string, error)
	// create makes the regular file p (which must not exist) from r.
	create(p string, r io.Reader, buf []byte) (int64, error)
	symlink(target, p string) error
	link(target, p string) error
	mkfifo(p string) error
	lchown(p string, uid, gid int) error
	chmod(p string, mode fs.FileMode) error
	setTimes(p string, mtime time.Time) error
}

// hostTree is a directory on the host.
type hostTree string

func (h hostTree) path(p string) string { return filepath.Join(string(h), filepath.FromSlash(p)) }

func (h hostTree) lstat(p string) (fs.FileMode, error) {
	fi, err := os.Lstat(h.path(p))
	if err != nil {
		return 0, err
	}
	return fi.Mode().Type(), nil
}

func (h hostTree) readlink(p string) (string, error) { return os.Readlink(h.path(p)) }

func (h hostTree) mkdir(p string, perm fs.FileMode) error { return os.Mkdir(h.path(p), perm) }

func (h hostTree) removeAll(p string) error { return os.RemoveAll(h.path(p)) }

func (h hostTree) readDir(p string) ([]string, error) {
	des, err := os.ReadDir(h.path(p))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(des))
	for i, de := range des {
		names[i] = de.Name()
	}
	return names, nil
}

func (h hostTree) create(p string, r io.Reader, buf []byte) (int64, error) {
	f, err := os.OpenFile(h.path(p), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(f, r, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func (h hostTree) symlink(target, p string) error { return os.Symlink(target, h.path(p)) }

func (h hostTree) link(target, p string) error { return os.Link(h.path(target), h.path(p)) }

func (h hostTree) mkfifo(p string) error { return unix.Mkfifo(h.path(p), 0o600) }

func (h hostTree) lchown(p string, uid, gid int) error { return os.Lchown(h.path(p), uid, gid) }

func (h hostTree) chmod(p string, mode fs.FileMode) error { return os.Chmod(h.path(p), mode) }

func (h hostTree) setTimes(p string, mtime time.Time) error { return setTimes(h.path(p), mtime) }

// memTree models a root filesystem in memory: names, types and symbolic link
// targets, no contents.
type memTree struct{ root *memNode }

type memNode struct {
	typ    fs.FileMode
	target string              // of a symbolic link
	kids   map[string]*memNode // of a directory
}

func newMemTree() *memTree {
	return &memTree{root: &memNode{typ: fs.ModeDir, kids: map[string]*memNode{}}}
}

func notExist(op, p string) error { return &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist} }

// node finds p without following its last component; every parent must be
// a directory.
func (m *memTree) node(op, p string) (*memNode, error) {
	n := m.root
	if p == "" {
		return n, nil
	}
	for _, c := range strings.Split(p, "/") {
		if n.typ != fs.ModeDir {
			return nil, &fs.PathError{Op: op, Path: p, Err: syscall.ENOTDIR}
		}
		k, ok := n.kids[c]
		if !ok {
			return nil, notExist(op, p)
		}
		n = k
	}
	return n, nil
}

// add puts a new node at p, whose parent must be a directory.
func (m *memTree) add(op, p string, n *memNode) error {
	parent, err := m.node(op, parentOf(p))
	if err != nil {
		return err
	}
	if parent.typ != fs.ModeDir {
		return &fs.PathError{Op: op, Path: p, Err: syscall.ENOTDIR}
	}
	base := p[strings.LastIndex(p, "/")+1:]
	if _, ok := parent.kids[base]; ok {
		return &fs.PathError{Op: op, Path: p, Err: fs.ErrExist}
	}
	parent.kids[base] = n
	return nil
}

func (m *memTree) lstat(p string) (fs.FileMode, error) {
	n, err := m.node("lstat", p)
	if err != nil {
		return 0, err
	}
	return n.typ, nil
}

func (m *memTree) readlink(p string) (string, error) {
	n, err := m.node("readlink", p)
	if err != nil {
		return "", err
	}
	if n.typ != fs.ModeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: p, Err: syscall.EINVAL}
	}
	return n.target, nil
}

func (m *memTree) mkdir(p string, _ fs.FileMode) error {
	return m.add("mkdir", p, &memNode{typ: fs.ModeDir, kids: map[string]*memNode{}})
}

func (m *memTree) removeAll(p string) error {
	if p == "" {
		return errors.New("images: remove the root")
	}
	parent, err := m.node("remove", parentOf(p))
	if err != nil || parent.typ != fs.ModeDir {
		return nil // nothing there, as os.RemoveAll
	}
	delete(parent.kids, p[strings.LastIndex(p, "/")+1:])
	return nil
}

func (m *memTree) readDir(p string) ([]string, error) {
	n, err := m.node("readdir", p)
	if err != nil {
		return nil, err
	}
	if n.typ != fs.ModeDir {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: syscall.ENOTDIR}
	}
	names := make([]string, 0, len(n.kids))
	for k := range n.kids {
		names = append(names, k)
	}
	slices.Sort(names)
	return names, nil
}

func (m *memTree) create(p string, r io.Reader, buf []byte) (int64, error) {
	if err := m.add("open", p, &memNode{}); err != nil {
		return 0, err
	}
	return io.CopyBuffer(io.Discard, r, buf)
}

func (m *memTree) symlink(target, p string) error {
	return m.add("symlink", p, &memNode{typ: fs.ModeSymlink, target: target})
}

func (m *memTree) link(target, p string) error {
	t, err := m.node("link", target)
	if err != nil {
		return err
	}
	if t.typ == fs.ModeDir {
		return &fs.PathError{Op: "link", Path: target, Err: syscall.EPERM}
	}
	return m.add("link", p, t)
}

func (m *memTree) mkfifo(p string) error {
	return m.add("mkfifo", p, &memNode{typ: fs.ModeNamedPipe})
}

func (m *memTree) exists(op, p string) error {
	_, err := m.node(op, p)
	return err
}

func (m *memTree) lchown(p string, _, _ int) error      { return m.exists("lchown", p) }
func (m *memTree) chmod(p string, _ fs.FileMode) error  { return m.exists("chmod", p) }
func (m *memTree) setTimes(p string, _ time.Time) error { return m.exists("utimes", p) }

var _, _ tree = hostTree(""), (*memTree)(nil)

// openRegular opens rel, a slash-separated path inside the directory root,
// for reading, and only if it is a regular file: no component may be a
// symbolic link (openat2 RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH), and the file
// is first opened as an O_PATH handle and checked with fstat, so a FIFO,
// device or socket is refused by name and never opened (it could block, or
// do something on open). Used for the files of an OCI layout being imported
// and for the store's own blobs, which are not trusted on re-read either.
func openRegular(root, rel string) (*os.File, error) {
	dir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	var h *os.File
	switch {
	case errors.Is(err, unix.ENOSYS):
		// Before Linux 5.6: resolve inside the root with securejoin's
		// checked emulation instead.
		if h, err = pathrs.OpenatInRoot(dir, rel); err != nil {
			return nil, err
		}
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("%w: %s: a symbolic link, or a path through one; refused", ErrInvalid, rel)
	case err != nil:
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	default:
		h = os.NewFile(uintptr(fd), filepath.Join(root, rel))
	}
	defer h.Close()
	if err := checkRegular(h, rel); err != nil {
		return nil, err
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	if err := checkRegular(f, rel); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkRegular refuses anything but a regular file, naming what it is.
func checkRegular(f *os.File, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: %s is a %s, not a regular file", ErrInvalid, rel, fileType(st.Mode))
	}
	return nil
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFLNK:
		return "symbolic link"
	}
	return "special file"
}
