package diff

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// diffDirs compares two directory trees.
func (e *engine) diffDirs(ctx context.Context, path, a, b string, depth int) *Node {
	n := e.node(path, "directory", Changed)
	ma, err := e.walkDir(ctx, a)
	if err != nil {
		e.setFatal(err)
		return nil
	}
	mb, err := e.walkDir(ctx, b)
	if err != nil {
		e.setFatal(err)
		return nil
	}
	st := e.compareMembers(ctx, n, path, ma, mb, pairMembers(ma, mb), false, depth)
	if st.empty() && len(n.n.Details) == 0 {
		return nil
	}
	n.n.Summary = st.summary("file")
	return n.done()
}

// walkDir lists a tree in lexical order, without its root.
func (e *engine) walkDir(ctx context.Context, root string) ([]member, error) {
	var out []member
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("diff: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if len(out) >= e.opts.MaxMembers {
			return fmt.Errorf("diff: %s: more than %d files", root, e.opts.MaxMembers)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("diff: %w", err)
		}
		m := member{name: filepath.ToSlash(rel), size: info.Size()}
		mode := info.Mode()
		switch {
		case mode.IsRegular():
			m.kind = "file"
			full := p
			m.content = func(context.Context) (blob, func(), error) {
				f, err := os.Open(full)
				if err != nil {
					return blob{}, nil, err
				}
				st, err := f.Stat()
				if err != nil {
					f.Close()
					return blob{}, nil, err
				}
				return blob{f, st.Size()}, func() { f.Close() }, nil
			}
		case mode.IsDir():
			m.kind, m.size = "dir", 0
		case mode&fs.ModeSymlink != 0:
			m.kind, m.size = "symlink", 0
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("diff: %w", err)
			}
			m.meta = append(m.meta, kv{key: "target", val: target})
		case mode&fs.ModeNamedPipe != 0:
			m.kind = "fifo"
		case mode&fs.ModeDevice != 0:
			m.kind = "device"
		default:
			m.kind = "other"
		}
		if !e.opts.IgnoreDirMetadata {
			m.meta = append(m.meta, kv{key: "mode", val: fmt.Sprintf("%04o", unixMode(mode))})
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				m.meta = append(m.meta, kv{key: "owner", val: fmt.Sprintf("%d:%d", st.Uid, st.Gid)})
				if m.kind == "device" {
					m.meta = append(m.meta, kv{key: "device", val: fmt.Sprintf("%d", st.Rdev)})
				}
			}
			if m.kind != "dir" {
				// A directory's mtime changes with its entries, which are
				// compared themselves.
				m.meta = append(m.meta, timeKV("mtime", info.ModTime()))
			}
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// unixMode returns permission and setuid/setgid/sticky bits in Unix octal form.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
