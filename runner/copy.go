package runner

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/reprobox/reprobox/internal/safefs"
)

// copyTree copies the project src into dst (which must not exist) for one build:
// regular files, directories and symlinks, in sorted order, with modes kept,
// modification times clamped to sde, and everything owned by uid:gid so that the
// build user can write it. Top-level entries named in exclude are skipped. Other
// file types (sockets, devices, fifos) are errors: a build source has none.
// Both trees are reached through package safefs: no link in the project is
// followed on the host (links are copied as links), a file replaced by a FIFO
// while copied is refused, and every write lands inside dst.
// It returns how many files and bytes it copied, and stops when ctx is done.
func copyTree(ctx context.Context, src, dst string, exclude []string, sde int64, uid, gid int) (files, bytes int64, err error) {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
	}
	from, err := safefs.OpenRoot(src)
	if err != nil {
		return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
	}
	defer from.Close()
	to, err := safefs.OpenRoot(dst)
	if err != nil {
		return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
	}
	defer to.Close()
	clamp := time.Unix(sde, 0)
	type dirTime struct {
		rel   string
		mtime time.Time
	}
	var dirs []dirTime // directories whose mtimes are set after their contents
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel != "." && filepath.Dir(rel) == "." && slices.Contains(exclude, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mtime := info.ModTime()
		if mtime.After(clamp) {
			mtime = clamp
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if rel == "." {
				err = to.ChmodDir(".", mode.Perm()|0o700)
			} else {
				err = to.Mkdir(rel, mode.Perm()|0o700)
			}
			if err != nil {
				return err
			}
			dirs = append(dirs, dirTime{rel, mtime})
		case mode.IsRegular():
			n, err := copyIn(from, to, rel, mode.Perm())
			if err != nil {
				return err
			}
			files, bytes = files+1, bytes+n
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := to.Symlink(link, rel); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a %s, which a build source cannot hold", path, safefs.TypeName(mode))
		}
		if rel == "." {
			return os.Lchown(dst, uid, gid)
		}
		if err := to.Lchown(rel, uid, gid); err != nil {
			return err
		}
		return to.Lchtimes(rel, mtime, mtime)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
	}
	// Directory mtimes changed as their entries were created: set them again,
	// deepest first.
	for i := len(dirs) - 1; i >= 0; i-- {
		if dirs[i].rel == "." {
			err = os.Chtimes(dst, dirs[i].mtime, dirs[i].mtime)
		} else {
			err = to.Lchtimes(dirs[i].rel, dirs[i].mtime, dirs[i].mtime)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
		}
	}
	return files, bytes, nil
}

// copyIn copies the regular file rel of from to a new file rel of to.
func copyIn(from, to *safefs.Root, rel string, perm fs.FileMode) (n int64, err error) {
	in, _, err := from.Open(rel)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := to.Create(rel, perm)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	return io.Copy(out, in)
}

// copyFile copies the regular file src (a link in its place is not followed,
// a FIFO or device is refused) to the new file dst (O_EXCL, not through a
// link) with mode perm.
func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, _, err := safefs.OpenFile(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := safefs.CreateFile(dst, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}
