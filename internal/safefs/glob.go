package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Glob returns the paths below the root matching pattern (filepath.Match
// syntax per component, "/"-separated, relative), in walk order (each directory sorted), without following a
// link. A component without wildcards that is a symbolic link is an error
// wrapping ErrSymlink (the pattern names a path through a link); a wildcard
// does not descend into links (they are skipped, never followed). The last
// component's matches are returned whatever their type: the caller opens them
// with Open, which refuses what is not a regular file.
func (r *Root) Glob(pattern string) ([]string, error) {
	c, err := clean(filepath.FromSlash(pattern))
	if err != nil {
		return nil, &fs.PathError{Op: "glob", Path: pattern, Err: err}
	}
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	parts := strings.Split(filepath.ToSlash(c), "/")
	var out []string
	err = r.glob(".", parts, &out)
	return out, err
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func (r *Root) glob(dir string, parts []string, out *[]string) error {
	part, last := parts[0], len(parts) == 1
	if !hasMeta(part) {
		p := path.Join(dir, part)
		m, err := r.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotDir) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		if err != nil {
			return err
		}
		if last {
			*out = append(*out, p)
			return nil
		}
		switch {
		case m&fs.ModeSymlink != 0:
			return &fs.PathError{Op: "glob", Path: p, Err: ErrSymlink}
		case !m.IsDir():
			return nil
		}
		return r.glob(p, parts[1:], out)
	}
	entries, err := r.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotDir) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		ok, err := path.Match(part, e.Name())
		if err != nil {
			return fmt.Errorf("glob %s: %w", part, err)
		}
		if !ok {
			continue
		}
		p := path.Join(dir, e.Name())
		if last {
			*out = append(*out, p)
			continue
		}
		if e.Type().IsDir() { // d_type: a link is never a directory here
			if err := r.glob(p, parts[1:], out); err != nil {
				return err
			}
		}
	}
	return nil
}
