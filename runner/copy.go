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
)

// copyTree copies the project src into dst (which must not exist) for one build:
// regular files, directories and symlinks, in sorted order, with modes kept,
// modification times clamped to sde, and everything owned by uid:gid so that the
// build user can write it. Top-level entries named in exclude are skipped. Other
// file types (sockets, devices, fifos) are errors: a build source has none.
// It returns how many files and bytes it copied, and stops when ctx is done.
func copyTree(ctx context.Context, src, dst string, exclude []string, sde int64, uid, gid int) (files, bytes int64, err error) {
	clamp := time.Unix(sde, 0)
	var dirs []string // directories whose mtimes are set after their contents
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
		target := filepath.Join(dst, rel)
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
			if err := os.Mkdir(target, mode.Perm()|0o700); err != nil {
				return err
			}
			if err := os.Chmod(target, mode.Perm()|0o700); err != nil {
				return err
			}
			dirs = append(dirs, target)
		case mode.IsRegular():
			if err := copyFile(path, target, mode.Perm()); err != nil {
				return err
			}
			files, bytes = files+1, bytes+info.Size()
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			if err := os.Lchown(target, uid, gid); err != nil {
				return err
			}
			return lutimes(target, mtime)
		default:
			return fmt.Errorf("%s is a %s, which a build source cannot hold", path, mode.Type())
		}
		if err := os.Lchown(target, uid, gid); err != nil {
			return err
		}
		return os.Chtimes(target, mtime, mtime)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
	}
	// Directory mtimes changed as their entries were created: set them again,
	// deepest first.
	for i := len(dirs) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(dst, dirs[i])
		info, err := os.Lstat(filepath.Join(src, rel))
		if err != nil {
			return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
		}
		mtime := info.ModTime()
		if mtime.After(clamp) {
			mtime = clamp
		}
		if err := os.Chtimes(dirs[i], mtime, mtime); err != nil {
			return 0, 0, fmt.Errorf("runner: copy the source: %w", err)
		}
	}
	return files, bytes, nil
}

func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Chmod(perm)
}
