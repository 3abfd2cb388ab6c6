// Package safefs opens, creates and lists files below a root directory on the
// host without ever following a symbolic link, so that a tree a build or an
// image controls cannot make reprobox read or write outside it.
//
// Every path is resolved by the kernel with openat2(2) and RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS relative to the root's
// descriptor: a symbolic link anywhere in the path (an absolute one, a relative
// one, /proc/self/root, ..) is an error wrapping ErrSymlink, and ".." cannot
// climb out. Files are first opened with O_PATH and their type checked on the
// descriptor before anything reads them, so a FIFO, a socket or a device is
// refused (ErrNotRegular) without being opened for reading: no hang and no
// side effect of opening a device.
package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrSymlink means a component of the path is a symbolic link.
	ErrSymlink = errors.New("the path goes through a symbolic link, which reprobox does not follow on the host")
	// ErrNotRegular means a file is not a regular file (a FIFO, a
	// socket, a device, a directory) where one is expected.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotDir means a directory was expected.
	ErrNotDir = errors.New("not a directory")
	// ErrEscapes means a path leaves the root ("..", absolute).
	ErrEscapes = errors.New("the path leaves its root")
	// ErrChanged means a file was replaced while it was being opened.
	ErrChanged = errors.New("the file changed while it was opened")
)

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// A Root is a directory whose descendants are opened without following links.
type Root struct {
	dir  *os.File
	name string
}

// OpenRoot opens the directory name as a root. name itself is trusted (it is
// reprobox's own work directory or the user's project): it is resolved
// normally.
func OpenRoot(name string) (*Root, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &Root{dir: os.NewFile(uintptr(fd), name), name: name}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return r.dir.Close() }

// Name is the path the root was opened with.
func (r *Root) Name() string { return r.name }

// clean checks that rel is a relative path inside the root and cleans it.
func clean(rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) {
		return "", ErrEscapes
	}
	c := filepath.Clean(rel)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", ErrEscapes
	}
	return c, nil
}

func (r *Root) openat2(op, rel string, flags uint64, mode uint64) (int, error) {
	c, err := clean(rel)
	if err != nil {
		return -1, &fs.PathError{Op: op, Path: rel, Err: err}
	}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(int(r.dir.Fd()), c, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolve})
		switch {
		case (err == unix.EINTR || err == unix.EAGAIN) && try < 100:
			continue // EAGAIN: a rename raced the lookup; retry
		case err == unix.ELOOP:
			err = ErrSymlink
		case err == unix.EXDEV:
			err = ErrEscapes
		case err == unix.ENXIO:
			err = ErrNotRegular // a socket opened for reading
		}
		if err != nil {
			return -1, &fs.PathError{Op: op, Path: rel, Err: err}
		}
		return fd, nil
	}
}

// Lstat describes rel without following it: a symbolic link as the last
// component is described, one before it is ErrSymlink.
func (r *Root) Lstat(rel string) (fs.FileMode, error) {
	fd, err := r.openat2("lstat", rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, &fs.PathError{Op: "lstat", Path: rel, Err: err}
	}
	return modeOf(&st), nil
}

func modeOf(st *unix.Stat_t) fs.FileMode { return ModeOf(st.Mode) }

// ModeOf turns a stat(2) st_mode into an fs.FileMode: the permission bits
// and the file type.
func ModeOf(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	return m
}

// TypeName names a file type for messages: "FIFO", "socket", ...
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "file of unknown type"
}

// Open opens the regular file rel for reading. Anything else is refused
// without being opened for reading: a symbolic link anywhere in the path
// (ErrSymlink), or a FIFO, socket, device or directory (ErrNotRegular, the
// message naming the type).
func (r *Root) Open(rel string) (*os.File, fs.FileInfo, error) {
	pfd, err := r.openat2("open", rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, err
	}
	var pst unix.Stat_t
	err = unix.Fstat(pfd, &pst)
	unix.Close(pfd)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	if m := modeOf(&pst); m&fs.ModeSymlink != 0 {
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: ErrSymlink}
	} else if !m.IsRegular() {
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: fmt.Errorf("%w: it is a %s", ErrNotRegular, TypeName(m))}
	}
	// O_NONBLOCK: should a FIFO have replaced the file since, opening it
	// does not wait for a writer.
	fd, err := r.openat2("open", rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(r.name, rel))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	if st.Dev != pst.Dev || st.Ino != pst.Ino || st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: ErrChanged}
	}
	// Reads of a regular file never block; clear the flag for clarity.
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// ReadDir lists the directory rel (sorted by name); "." is the root.
func (r *Root) ReadDir(rel string) ([]fs.DirEntry, error) {
	fd, err := r.openat2("readdir", rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return nil, &fs.PathError{Op: "readdir", Path: rel, Err: ErrNotDir}
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(r.name, rel))
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// parent opens the directory holding rel and returns it with rel's last
// component.
func (r *Root) parent(op, rel string) (int, string, error) {
	c, err := clean(rel)
	if err != nil || c == "." {
		return -1, "", &fs.PathError{Op: op, Path: rel, Err: ErrEscapes}
	}
	fd, err := r.openat2(op, filepath.Dir(c), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", err
	}
	return fd, filepath.Base(c), nil
}

// Mkdir creates the directory rel with mode perm (umask ignored).
func (r *Root) Mkdir(rel string, perm fs.FileMode) error {
	pfd, base, err := r.parent("mkdir", rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: rel, Err: err}
	}
	return r.chmodDir(rel, perm)
}

// MkdirAll creates rel and its missing parents, each with mode perm. An
// existing component must be a directory, not a link.
func (r *Root) MkdirAll(rel string, perm fs.FileMode) error {
	c, err := clean(rel)
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: rel, Err: err}
	}
	if c == "." {
		return nil
	}
	dir := ""
	for _, part := range strings.Split(c, "/") {
		dir = path.Join(dir, part)
		m, err := r.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if err := r.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !m.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: fmt.Errorf("%w: it is a %s", ErrNotDir, TypeName(m))}
		}
	}
	return nil
}

// chmodDir sets a directory's mode through a descriptor.
func (r *Root) chmodDir(rel string, perm fs.FileMode) error {
	fd, err := r.openat2("chmod", rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "chmod", Path: rel, Err: err}
	}
	return nil
}

// ChmodDir sets the mode of the directory rel.
func (r *Root) ChmodDir(rel string, perm fs.FileMode) error { return r.chmodDir(rel, perm) }

// Create creates the regular file rel, which must not exist, with mode perm
// (umask ignored), for writing.
func (r *Root) Create(rel string, perm fs.FileMode) (*os.File, error) {
	fd, err := r.openat2("create", rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, uint64(perm.Perm()))
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(r.name, rel))
	if err := f.Chmod(perm.Perm()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Symlink creates the symbolic link rel pointing at target (never followed).
func (r *Root) Symlink(target, rel string) error {
	pfd, base, err := r.parent("symlink", rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Symlinkat(target, pfd, base); err != nil {
		return &fs.PathError{Op: "symlink", Path: rel, Err: err}
	}
	return nil
}

// Lchown sets the owner of rel itself (a link is not followed).
func (r *Root) Lchown(rel string, uid, gid int) error {
	pfd, base, err := r.parent("chown", rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chown", Path: rel, Err: err}
	}
	return nil
}

// Lchtimes sets the access and modification times of rel itself.
func (r *Root) Lchtimes(rel string, atime, mtime time.Time) error {
	pfd, base, err := r.parent("chtimes", rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chtimes", Path: rel, Err: err}
	}
	return nil
}

// OpenFile opens the regular file at the host path name for reading, without
// following a link as its last component and refusing anything else than a
// regular file, as Root.Open does. The directories leading to it are trusted.
func OpenFile(name string) (*os.File, fs.FileInfo, error) {
	r, err := OpenRoot(filepath.Dir(name))
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	f, info, err := r.Open(filepath.Base(name))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = name
		}
		return nil, nil, err
	}
	return f, info, nil
}

// CreateFile creates the regular file at the host path name, which must not
// exist (O_EXCL, a link in its place is not followed), with mode perm.
func CreateFile(name string, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm.Perm()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
