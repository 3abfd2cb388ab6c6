package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrInUse means an image cannot be removed because a running build uses it.
var ErrInUse = errors.New("image in use")

// A Lease says that a build uses an image's root filesystem. While any lease
// on an image is held, Remove refuses to delete that root filesystem, naming
// the holders.
//
// A lease is a shared flock(2) on DIR/locks/lease-<manifest hex>.lock, so it
// ends when its process does, however it ends; Remove takes that lock
// exclusively without waiting. Each holder also writes DIR/locks/lease-<hex>.d/
// <holder>, holding its pid and an exclusive flock of its own, so that Remove
// can name who holds the image and tell them from files a killed process left.
type Lease struct {
	lock   *os.File
	holder *os.File
	rootfs string
	dev    uint64
	ino    uint64
}

var holderRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (s *Store) leaseLock(hex string) string {
	return filepath.Join(s.lockDir(), "lease-"+hex+".lock")
}

func (s *Store) leaseHolders(hex string) string {
	return filepath.Join(s.lockDir(), "lease-"+hex+".d")
}

// Lease takes a lease on img, whose root filesystem (Rootfs) must already be
// unpacked, for holder (a build's id: letters, digits, ".", "_" and "-").
// It fails with ErrNotFound if the image or its root filesystem was removed
// meanwhile. Release ends the lease; Check reports whether the root filesystem
// is still the one leased.
func (s *Store) Lease(img Image, holder string) (*Lease, error) {
	if err := checkDigest(img.Digest); err != nil {
		return nil, fmt.Errorf("images: lease: %w", err)
	}
	if !holderRE.MatchString(holder) {
		return nil, fmt.Errorf("images: lease: bad holder name %q", holder)
	}
	hex := img.Digest.Encoded()
	lock, err := os.OpenFile(s.leaseLock(hex), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images: lease %s: %w", img.Reference(), err)
	}
	// Shared, and waiting: Remove holds it exclusively only while it
	// removes, and then the image is gone, which is checked below.
	if err := flock(lock, unix.LOCK_SH); err != nil {
		lock.Close()
		return nil, fmt.Errorf("images: lease %s: %w", img.Reference(), err)
	}
	l := &Lease{lock: lock, rootfs: filepath.Join(s.rootfsDir(), hex)}
	fail := func(err error) (*Lease, error) {
		l.Release()
		return nil, err
	}
	entries, err := s.readIndex()
	if err != nil {
		return fail(err)
	}
	if !slices.ContainsFunc(entries, func(e indexEntry) bool { return e.Desc.Digest == img.Digest }) {
		return fail(fmt.Errorf("images: lease: %w: %s was removed", ErrNotFound, img.Reference()))
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.rootfs, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fail(fmt.Errorf("images: lease: %w: the root filesystem of %s is not unpacked (removed?)", ErrNotFound, img.Reference()))
	}
	l.dev, l.ino = st.Dev, st.Ino
	dir := s.leaseHolders(hex)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail(fmt.Errorf("images: lease %s: %w", img.Reference(), err))
	}
	h, err := os.OpenFile(filepath.Join(dir, holder), os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fail(fmt.Errorf("images: lease %s: %w", img.Reference(), err))
	}
	l.holder = h
	if err := flock(h, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(fmt.Errorf("images: lease %s: holder %s: %w", img.Reference(), holder, err))
	}
	if _, err := fmt.Fprintf(h, "%s %d\n", holder, os.Getpid()); err != nil {
		return fail(fmt.Errorf("images: lease %s: %w", img.Reference(), err))
	}
	return l, nil
}

// Release ends the lease. It may be called more than once.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	if l.holder != nil {
		os.Remove(l.holder.Name())
		l.holder.Close()
		l.holder = nil
	}
	if l.lock != nil {
		l.lock.Close() // drops the flock
		l.lock = nil
	}
}

// ErrRootfsChanged means an image's root filesystem was removed or replaced
// while a build that holds a lease on it ran.
var ErrRootfsChanged = errors.New("the image's root filesystem changed during the build")

// Check reports, as an error wrapping ErrRootfsChanged, a root filesystem
// that is no longer the directory that was leased: removed or replaced behind
// the store's back (the lease keeps Remove from doing it). A build that ran
// on it must not report success.
func (l *Lease) Check() error {
	var st unix.Stat_t
	if err := unix.Lstat(l.rootfs, &st); err != nil {
		return fmt.Errorf("images: %w: %s: %v", ErrRootfsChanged, l.rootfs, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != l.dev || st.Ino != l.ino {
		return fmt.Errorf("images: %w: %s was replaced", ErrRootfsChanged, l.rootfs)
	}
	return nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// acquireRemoval takes the lease lock of a manifest hex exclusively, without
// waiting. If a build holds a lease, it returns an error wrapping ErrInUse
// that names the holders and their pids.
func (s *Store) acquireRemoval(hex, ref string) (release func(), err error) {
	f, err := os.OpenFile(s.leaseLock(hex), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images: remove %s: %w", ref, err)
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		holders := s.liveHolders(hex)
		if len(holders) == 0 {
			holders = []string{"another reprobox process"}
		}
		return nil, fmt.Errorf("images: remove %s: %w: image %s is in use by build %s; wait for it to end, or stop it, and remove the image then",
			ref, ErrInUse, ref, strings.Join(holders, ", build "))
	} else if err != nil {
		f.Close()
		return nil, fmt.Errorf("images: remove %s: %w", ref, err)
	}
	// Nobody holds a lease: whatever is in the holders directory was left
	// by killed processes. The lock file itself stays: a Lease may be
	// waiting on it.
	os.RemoveAll(s.leaseHolders(hex))
	return func() { f.Close() }, nil
}

// liveHolders names the holders of a lease whose holder files are still
// locked, as "id (pid N)", sorted.
func (s *Store) liveHolders(hex string) []string {
	dir := s.leaseHolders(hex)
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, de := range des {
		f, err := os.OpenFile(filepath.Join(dir, de.Name()), os.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		if flock(f, unix.LOCK_SH|unix.LOCK_NB) == nil {
			f.Close() // stale: its process is gone
			continue
		}
		var b [256]byte
		n, _ := f.Read(b[:])
		f.Close()
		holder, pid, _ := strings.Cut(strings.TrimSpace(string(b[:n])), " ")
		if _, err := strconv.Atoi(pid); err != nil || holder != de.Name() {
			out = append(out, de.Name())
			continue
		}
		out = append(out, fmt.Sprintf("%s (pid %s)", holder, pid))
	}
	slices.Sort(out)
	return out
}
