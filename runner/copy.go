package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
// It returns how many files and bytes it copied and the digest of the copy
// (treeDigest), and stops when ctx is done.
func copyTree(ctx context.Context, src, dst string, exclude []string, sde int64, uid, gid int) (files, bytes int64, digest string, err error) {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return 0, 0, "", fmt.Errorf("runner: copy the source: %w", err)
	}
	from, err := safefs.OpenRoot(src)
	if err != nil {
		return 0, 0, "", fmt.Errorf("runner: copy the source: %w", err)
	}
	defer from.Close()
	to, err := safefs.OpenRoot(dst)
	if err != nil {
		return 0, 0, "", fmt.Errorf("runner: copy the source: %w", err)
	}
	defer to.Close()
	listing := newTreeDigest(uid, gid)
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
			listing.add(rel, "dir", mode.Perm()|0o700, mtime, "")
		case mode.IsRegular():
			n, sum, err := copyIn(from, to, rel, mode.Perm())
			if err != nil {
				return err
			}
			files, bytes = files+1, bytes+n
			listing.add(rel, "file", mode.Perm(), mtime, fmt.Sprintf("%d sha256:%s", n, sum))
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := to.Symlink(link, rel); err != nil {
				return err
			}
			listing.add(rel, "symlink", 0o777, mtime, strconv.Quote(link))
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
		return 0, 0, "", fmt.Errorf("runner: copy the source: %w", err)
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
			return 0, 0, "", fmt.Errorf("runner: copy the source: %w", err)
		}
	}
	return files, bytes, listing.sum(), nil
}

// A treeDigest hashes the canonical listing of a source snapshot: one line
// per entry, in the lexical order of its path, with its type, mode, owner,
// modification time and content (size and SHA-256 of a file, target of a
// link). Two snapshots with one digest are the same tree to a build.
type treeDigest struct {
	h        hash.Hash
	uid, gid int
}

func newTreeDigest(uid, gid int) *treeDigest {
	d := &treeDigest{h: sha256.New(), uid: uid, gid: gid}
	d.h.Write([]byte("reprobox source snapshot v1\n"))
	return d
}

func (d *treeDigest) add(rel, kind string, perm fs.FileMode, mtime time.Time, content string) {
	fmt.Fprintf(d.h, "%s %s %04o %d:%d %d %s\n", strconv.Quote(filepath.ToSlash(rel)), kind, perm, d.uid, d.gid, mtime.Unix(), content)
}

func (d *treeDigest) sum() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

// copyIn copies the regular file rel of from to a new file rel of to and
// returns its size and hex SHA-256.
func copyIn(from, to *safefs.Root, rel string, perm fs.FileMode) (n int64, sum string, err error) {
	in, _, err := from.Open(rel)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := to.Create(rel, perm)
	if err != nil {
		return 0, "", err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(out, h), in)
	return n, hex.EncodeToString(h.Sum(nil)), err
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
