package rootless

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DataHome is an ordinary user's default data directory:
// $XDG_DATA_HOME/reprobox, else ~/.local/share/reprobox (the XDG base
// directory specification; a relative XDG_DATA_HOME is ignored, as it says).
func DataHome() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "reprobox")
	}
	home := os.Getenv("HOME")
	if !filepath.IsAbs(home) {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		}
	}
	return filepath.Join(home, ".local", "share", "reprobox")
}

// SecureDir makes sure dir is a private directory of the calling user,
// creating it (and its missing parents) with mode 0700. Another local user
// must not be able to put anything in its way: dir itself must be a directory
// owned by the caller, not a symbolic link (one placed in advance under /tmp
// would send reprobox's data elsewhere), and every directory above it must be
// owned by the caller or root and not writable by others unless it is sticky
// (/tmp: others cannot rename or remove what is ours there). A symbolic link
// above dir is followed only when the caller or root owns it. An existing dir
// with group or other permissions is made 0700.
//
// Call it with the host's view of owners, outside the namespace.
func SecureDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := secureDir(abs, os.Getuid(), 0, true); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	return nil
}

const maxLinks = 16

// secureDir checks (and creates) each component of abs; the last one is the
// data directory itself when final, else one more directory above it.
func secureDir(abs string, uid, links int, final bool) error {
	parts := strings.Split(strings.Trim(abs, "/"), "/")
	cur := "/"
	for i, name := range parts {
		if name == "" {
			continue
		}
		next := filepath.Join(cur, name)
		last := final && i == len(parts)-1
		st, err := lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(next, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			st, err = lstat(next)
		}
		if err != nil {
			return err
		}
		mode := st.Mode & syscall.S_IFMT
		switch {
		case mode == syscall.S_IFLNK && last:
			return fmt.Errorf("%s is a symbolic link: refusing to follow it (another user may have placed it); remove it or choose another --data-dir", next)
		case mode == syscall.S_IFLNK:
			if int(st.Uid) != uid && st.Uid != 0 {
				return fmt.Errorf("%s is a symbolic link owned by uid %d, neither you nor root: refusing to follow it", next, st.Uid)
			}
			if links++; links > maxLinks {
				return fmt.Errorf("%s: too many symbolic links", next)
			}
			// One link at a time: every link of a chain must be the
			// caller's or root's (resolving the whole chain at once would
			// accept another user's link on where it points today).
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			target = filepath.Clean(target)
			if err := secureDir(target, uid, links, false); err != nil {
				return err
			}
			cur = target
			continue
		case mode != syscall.S_IFDIR:
			return fmt.Errorf("%s is not a directory", next)
		}
		if last {
			if int(st.Uid) != uid {
				return fmt.Errorf("%s is owned by uid %d, not by you (uid %d): another user may have created it; remove it or choose another --data-dir", next, st.Uid, uid)
			}
			if st.Mode&0o777 != 0o700 {
				if err := os.Chmod(next, 0o700); err != nil {
					return err
				}
			}
			return nil
		}
		if int(st.Uid) != uid && st.Uid != 0 {
			return fmt.Errorf("%s is owned by uid %d, neither you nor root: another user could replace what is beneath it", next, st.Uid)
		}
		if st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0 {
			return fmt.Errorf("%s is writable by other users (mode %#o) and not sticky: another user could replace what is beneath it", next, st.Mode&0o7777)
		}
		cur = next
	}
	return nil
}

func lstat(p string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return &st, nil
}
