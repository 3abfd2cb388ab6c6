package images

import (
	"archive/tar"
	"bufio"
	"bytes"

	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Limits bound what unpacking a layer may cost, against decompression bombs.
type Limits struct {
	// MaxBytes caps the uncompressed bytes of all layers of an image: the
	// tar streams, and separately the logical sizes of the files in them
	// (a sparse file counts at its full size).
	MaxBytes int64
	// MaxEntries caps the tar entries of all layers of an image.
	MaxEntries int64
	// MaxRatio caps a layer's uncompressed size at MaxRatio times its
	// compressed size, once it is larger than RatioFloor.
	MaxRatio   int64
	RatioFloor int64
}

// DefaultLimits returns the limits a Store uses unless told otherwise: 64 GiB,
// 16 million entries, and 1000:1 beyond 256 MiB per layer (gzip cannot
// compress better than about 1030:1).
func DefaultLimits() Limits {
	return Limits{MaxBytes: 64 << 30, MaxEntries: 16 << 20, MaxRatio: 1000, RatioFloor: 256 << 20}
}

// Rootfs returns the path of the image's unpacked root filesystem,
// DIR/rootfs/<manifest hex>, unpacking it on first use. Layers are applied in
// order into a temp directory, with whiteouts (.wh.NAME) and opaque
// directories (.wh..wh..opq), which is then renamed into place; an flock per
// manifest makes concurrent callers, in this process or others, wait for one
// unpack. Every layer blob is verified against its digest and the config's
// diff_id.
//
// A hostile layer is refused with an error wrapping ErrInvalid that names the
// entry and the layer, and nothing is left behind: entries with absolute
// paths or ".." components, symbolic links whose relative target climbs out
// of the root, hard links to paths outside the layer's root, character and
// block devices, entry types other than files, directories, links and fifos,
// truncated or malformed tar data, and layers beyond the Limits. Paths are
// resolved one component at a time inside the root, following symbolic links
// as the container would (an absolute target is relative to the root), and
// the last component is never followed, so no write lands outside the root.
//
// Modes, ownership (numeric) and modification times are preserved, except
// that setuid and setgid bits are dropped: builds run as one user and never
// need them, and dropping them keeps a layer from planting a privileged
// binary. Extended attributes, including file capabilities, are ignored.
//
// The returned tree belongs to the store: callers mount it read-only or as the
// lower layer of an overlay and never write to it.
func (s *Store) Rootfs(ctx context.Context, img Image) (string, error) {
	if err := checkDigest(img.Digest); err != nil {
		return "", fmt.Errorf("images: rootfs: %w", err)
	}
	hex := img.Digest.Encoded()
	final := filepath.Join(s.rootfsDir(), hex)
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	if len(img.Config.RootFS.DiffIDs) != len(img.Manifest.Layers) {
		return "", fmt.Errorf("%w: image %s: %d diff_ids for %d layers", ErrInvalid, img.Digest, len(img.Config.RootFS.DiffIDs), len(img.Manifest.Layers))
	}
	unlock, err := lockFile(filepath.Join(s.lockDir(), "rootfs-"+hex+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	// Left-overs of a crashed unpack of this image: we hold its lock.
	if old, _ := filepath.Glob(filepath.Join(s.rootfsDir(), ".tmp-"+hex+"-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(s.rootfsDir(), ".tmp-"+hex+"-")
	if err != nil {
		return "", fmt.Errorf("images: rootfs: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	start := time.Now()
	u := &unpacker{root: tmp, limits: s.limits, rootMode: 0o755}
	for i, l := range img.Manifest.Layers {
		if err := s.applyLayer(ctx, u, l, img.Config.RootFS.DiffIDs[i]); err != nil {
			return "", err
		}
	}
	if err := u.finishRoot(); err != nil {
		return "", err
	}
	if err := syncfs(tmp); err != nil {
		return "", fmt.Errorf("images: rootfs: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("images: rootfs: %w", err)
	}
	ok = true
	if err := syncDir(s.rootfsDir()); err != nil {
		return "", fmt.Errorf("images: rootfs: %w", err)
	}
	s.log.Info("images: unpacked root filesystem", "image", img.Reference().String(), "entries", u.entries, "bytes", u.bytes, "duration", time.Since(start))
	return final, nil
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// applyLayer verifies and applies one layer blob.
func (s *Store) applyLayer(ctx context.Context, u *unpacker, l v1.Descriptor, diffID digest.Digest) error {
	if err := checkDescriptor(l); err != nil {
		return fmt.Errorf("images: layer: %w", err)
	}
	f, err := s.openBlob(l.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: layer blob %s is missing from the store", ErrNotFound, l.Digest)
	} else if err != nil {
		return fmt.Errorf("images: layer %s: %w", l.Digest, err)
	}
	defer f.Close()
	return applyLayerFile(ctx, u, f, l, diffID)
}

// applyLayerFile verifies and applies the layer blob f, a regular file.
func applyLayerFile(ctx context.Context, u *unpacker, f *os.File, l v1.Descriptor, diffID digest.Digest) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("images: layer %s: %w", l.Digest, err)
	}
	if fi.Size() != l.Size {
		return fmt.Errorf("%w: blob %s: size %d, want %d", ErrInvalid, l.Digest, fi.Size(), l.Size)
	}
	blobHash := sha256.New()
	blob := io.TeeReader(f, blobHash)
	gotDiffID, err := u.applyStream(ctx, blob, l.Digest, l.Size)
	if err != nil {
		return err
	}
	// Bytes after the compressed stream still count for the digest.
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return fmt.Errorf("images: layer %s: %w", l.Digest, err)
	}
	if got := digest.NewDigest(digest.SHA256, blobHash); got != l.Digest {
		return fmt.Errorf("%w: blob %s: content has digest %s", ErrInvalid, l.Digest, got)
	}
	if gotDiffID != diffID {
		return fmt.Errorf("%w: layer %s: uncompressed digest %s, config says %s", ErrInvalid, l.Digest, gotDiffID, diffID)
	}
	return nil
}

// decompress sniffs gzip and zstd magic numbers; anything else is read as a
// plain tar stream. klauspost/compress's gzip, a drop-in for the standard
// library's (which containerd uses too), inflates with about a quarter less
// CPU, and every layer is inflated twice: at import and at unpack.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return newZstdReader(br)
	}
	return io.NopCloser(br), nil
}

// budget counts uncompressed bytes against a limit.
type budget struct {
	r     io.Reader
	n     int64
	limit int64
	err   error
}

func (b *budget) Read(p []byte) (int, error) {
	if b.n > b.limit {
		return 0, b.err
	}
	if int64(len(p)) > b.limit-b.n+1 {
		p = p[:b.limit-b.n+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		return n, b.err
	}
	return n, err
}

var errLimit = errors.New("layer exceeds the unpack limits")

// unpacker applies layers to one root directory.
type unpacker struct {
	root   string // Rootfs: the directory written, when fs is nil
	fs     tree   // where entries go: hostTree(root), or a memTree to validate
	limits Limits

	entries   int64 // across layers
	bytes     int64 // uncompressed tar bytes, across layers
	fileBytes int64 // logical sizes of regular files, across layers

	// Per layer:
	layer digest.Digest
	added map[string]bool // paths this layer created, and their parents
	dirs  []dirTime       // directory times to set once the layer is done

	rootMode   fs.FileMode
	rootUID    int
	rootGID    int
	rootMtime  time.Time
	rootHasHdr bool
}

type dirTime struct {
	path  string
	mtime time.Time
}

// hostileError is a refused layer entry.
type hostileError struct {
	layer digest.Digest
	entry string
	what  string
}

func (e *hostileError) Error() string {
	return fmt.Sprintf("%v: layer %s: entry %q: %s", ErrInvalid, e.layer, e.entry, e.what)
}

func (e *hostileError) Unwrap() error { return ErrInvalid }

func (u *unpacker) refuse(entry, format string, args ...any) error {
	return &hostileError{layer: u.layer, entry: entry, what: fmt.Sprintf(format, args...)}
}

// applyStream applies one (possibly compressed) layer stream of compressed
// size size and returns the digest of the uncompressed tar stream.
func (u *unpacker) applyStream(ctx context.Context, r io.Reader, layer digest.Digest, size int64) (digest.Digest, error) {
	if u.fs == nil {
		u.fs = hostTree(u.root)
	}
	u.layer = layer
	u.added = map[string]bool{}
	u.dirs = nil
	dec, err := decompress(r)
	if err != nil {
		return "", fmt.Errorf("%w: layer %s: %v", ErrInvalid, layer, err)
	}
	defer dec.Close()
	limit := u.limits.MaxBytes - u.bytes
	if u.limits.MaxRatio > 0 {
		if byRatio := max(u.limits.RatioFloor, size*u.limits.MaxRatio); byRatio < limit {
			limit = byRatio
		}
	}
	limitErr := fmt.Errorf("%w: layer %s: %w (more than %d uncompressed bytes)", ErrInvalid, layer, errLimit, limit)
	b := &budget{r: dec, limit: limit, err: limitErr}
	diffHash := sha256.New()
	tr := tar.NewReader(io.TeeReader(b, diffHash))
	buf := make([]byte, 1<<20)
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("images: unpack layer %s: %w", layer, context.Cause(ctx))
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, limitErr) {
				return "", limitErr
			}
			if last == "" {
				return "", fmt.Errorf("%w: layer %s: reading the first entry: %v", ErrInvalid, layer, err)
			}
			return "", fmt.Errorf("%w: layer %s: after entry %q: %v", ErrInvalid, layer, last, err)
		}
		last = hdr.Name
		u.entries++
		if u.entries > u.limits.MaxEntries {
			return "", fmt.Errorf("%w: layer %s: %w (more than %d entries)", ErrInvalid, layer, errLimit, u.limits.MaxEntries)
		}
		if err := u.apply(hdr, tr, buf); err != nil {
			if errors.Is(err, limitErr) {
				return "", limitErr
			}
			return "", err
		}
	}
	// The tar reader stops at the end-of-archive marker; the diff_id covers
	// the whole stream.
	if _, err := io.CopyBuffer(io.Discard, io.TeeReader(b, diffHash), buf); err != nil {
		if errors.Is(err, limitErr) {
			return "", limitErr
		}
		return "", fmt.Errorf("%w: layer %s: after the end of the archive: %v", ErrInvalid, layer, err)
	}
	u.bytes += b.n
	if u.bytes > u.limits.MaxBytes {
		return "", limitErr
	}
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := u.fs.setTimes(d.path, d.mtime); err != nil {
			return "", fmt.Errorf("images: layer %s: %s: %w", layer, d.path, err)
		}
	}
	return digest.NewDigest(digest.SHA256, diffHash), nil
}

// cleanName turns an entry name into a clean relative path ("" is the root),
// refusing absolute paths and "..".
func (u *unpacker) cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", u.refuse(name, "absolute path")
	}
	if strings.ContainsRune(name, 0) {
		return "", u.refuse(name, "NUL in path")
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", u.refuse(name, `".." in path`)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/"), nil
}

const maxSymlinkHops = 40

// resolveDir resolves the directory dir (a clean relative path) inside the
// root, following symbolic links as the kernel would with the root as "/",
// and returns its canonical path, whose components are all real directories.
// With create, missing directories are made (0755, root-owned, as other
// runtimes do).
func (u *unpacker) resolveDir(entry, dir string, create bool) (string, error) {
	var todo []string
	if dir != "" {
		todo = strings.Split(dir, "/")
	}
	cur := ""
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			// Only a symbolic link's target brings us here; at the root
			// ".." stays at the root, as in a chroot.
			cur = parentOf(cur)
			continue
		}
		next := join(cur, c)
		typ, err := u.fs.lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return "", fs.ErrNotExist
			}
			if err := u.fs.mkdir(next, 0o755); err != nil {
				return "", fmt.Errorf("images: layer %s: entry %q: %w", u.layer, entry, err)
			}
			u.markAdded(next)
			cur = next
		case err != nil:
			return "", fmt.Errorf("images: layer %s: entry %q: %w", u.layer, entry, err)
		case typ == fs.ModeDir:
			cur = next
		case typ == fs.ModeSymlink:
			hops++
			if hops > maxSymlinkHops {
				return "", u.refuse(entry, "too many levels of symbolic links")
			}
			target, err := u.fs.readlink(next)
			if err != nil {
				return "", fmt.Errorf("images: layer %s: entry %q: %w", u.layer, entry, err)
			}
			if strings.HasPrefix(target, "/") {
				cur = ""
			}
			todo = append(strings.Split(target, "/"), todo...)
		default:
			return "", u.refuse(entry, "parent %q is not a directory", "/"+next)
		}
	}
	return cur, nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func parentOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (u *unpacker) markAdded(p string) {
	for p != "" && !u.added[p] {
		u.added[p] = true
		p = parentOf(p)
	}
}

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// apply applies one tar entry.
func (u *unpacker) apply(hdr *tar.Header, r io.Reader, buf []byte) error {
	name, err := u.cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock:
		return u.refuse(hdr.Name, "device node")
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		return u.refuse(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid > 1<<32-2 || hdr.Gid > 1<<32-2 {
		return u.refuse(hdr.Name, "owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	if hdr.Size < 0 {
		return u.refuse(hdr.Name, "negative size")
	}
	if hdr.Typeflag == tar.TypeReg {
		u.fileBytes += hdr.Size
		if u.fileBytes > u.limits.MaxBytes {
			return fmt.Errorf("%w: layer %s: entry %q: %w (more than %d bytes in all)", ErrInvalid, u.layer, hdr.Name, errLimit, u.limits.MaxBytes)
		}
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return u.refuse(hdr.Name, "the root is not a directory")
		}
		u.rootMode = hdr.FileInfo().Mode()
		u.rootUID, u.rootGID, u.rootMtime, u.rootHasHdr = hdr.Uid, hdr.Gid, hdr.ModTime, true
		return nil
	}
	dir, base := parentOf(name), name[strings.LastIndex(name, "/")+1:]
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(hdr.Name, dir, base)
	}
	parent, err := u.resolveDir(hdr.Name, dir, true)
	if err != nil {
		return err
	}
	p := join(parent, base)

	// Replace what is there, unless a directory meets a directory.
	if typ, err := u.fs.lstat(p); err == nil {
		if !(typ == fs.ModeDir && hdr.Typeflag == tar.TypeDir) {
			if hdr.Typeflag == tar.TypeLink {
				// Linking a file onto itself would remove it first.
				if t, err := u.cleanName(hdr.Linkname); err == nil && t == name {
					return nil
				}
			}
			if err := u.fs.removeAll(p); err != nil {
				return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
	}
	u.markAdded(p)

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := u.fs.mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
		}
	case tar.TypeReg:
		src := &readErr{r: io.LimitReader(r, hdr.Size)}
		n, err := u.fs.create(p, src, buf)
		if src.err != nil {
			if errors.Is(src.err, ErrInvalid) {
				return src.err // over the limits
			}
			return u.refuse(hdr.Name, "truncated or corrupt data: %v", src.err)
		}
		if err != nil {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
		}
		if n != hdr.Size {
			return u.refuse(hdr.Name, "data is %d bytes, header says %d", n, hdr.Size)
		}
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
			return u.refuse(hdr.Name, "bad symbolic link target %q", hdr.Linkname)
		}
		if !strings.HasPrefix(hdr.Linkname, "/") {
			if t := path.Clean(join(parent, hdr.Linkname)); t == ".." || strings.HasPrefix(t, "../") {
				return u.refuse(hdr.Name, "symbolic link to %q leaves the root", hdr.Linkname)
			}
		}
		if err := u.fs.symlink(hdr.Linkname, p); err != nil {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
		}
	case tar.TypeLink:
		target, err := u.cleanName(hdr.Linkname)
		if err != nil {
			return u.refuse(hdr.Name, "hard link to %q: outside the root", hdr.Linkname)
		}
		if target == "" {
			return u.refuse(hdr.Name, "hard link to the root")
		}
		tparent, err := u.resolveDir(hdr.Name, parentOf(target), false)
		if errors.Is(err, fs.ErrNotExist) {
			return u.refuse(hdr.Name, "hard link to missing %q", hdr.Linkname)
		} else if err != nil {
			return err
		}
		tpath := join(tparent, target[strings.LastIndex(target, "/")+1:])
		typ, err := u.fs.lstat(tpath)
		if err != nil {
			return u.refuse(hdr.Name, "hard link to missing %q", hdr.Linkname)
		}
		if typ == fs.ModeDir {
			return u.refuse(hdr.Name, "hard link to directory %q", hdr.Linkname)
		}
		if err := u.fs.link(tpath, p); err != nil {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
		}
		return nil // a hard link shares its target's metadata
	case tar.TypeFifo:
		if err := u.fs.mkfifo(p); err != nil {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
		}
	}
	if err := u.fs.lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := u.fs.chmod(p, safeMode(hdr)); err != nil {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		u.dirs = append(u.dirs, dirTime{path: p, mtime: hdr.ModTime})
		return nil
	}
	if err := u.fs.setTimes(p, hdr.ModTime); err != nil {
		return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, hdr.Name, err)
	}
	return nil
}

// readErr remembers a read error, to tell bad layer data from a failed
// write.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// safeMode is the entry's permission bits and sticky bit, without setuid and
// setgid.
func safeMode(hdr *tar.Header) fs.FileMode {
	m := fs.FileMode(hdr.Mode & 0o777)
	if hdr.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func setTimes(host string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if mtime.IsZero() {
		ts = unix.Timespec{}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, host, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// whiteout applies a .wh. entry in dir: it hides NAME, or with .wh..wh..opq
// everything in dir, from lower layers. What this layer itself added stays.
func (u *unpacker) whiteout(entry, dir, base string) error {
	parent, err := u.resolveDir(entry, dir, base == opaqueWhiteout)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing below to hide
	} else if err != nil {
		return err
	}
	if base == opaqueWhiteout {
		names, err := u.fs.readDir(parent)
		if err != nil {
			return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, entry, err)
		}
		for _, n := range names {
			p := join(parent, n)
			if u.added[p] {
				continue
			}
			if err := u.fs.removeAll(p); err != nil {
				return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, entry, err)
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || strings.HasPrefix(name, whiteoutPrefix) {
		return u.refuse(entry, "bad whiteout")
	}
	p := join(parent, name)
	if u.added[p] {
		return nil
	}
	if err := u.fs.removeAll(p); err != nil {
		return fmt.Errorf("images: layer %s: entry %q: %w", u.layer, entry, err)
	}
	return nil
}

// finishRoot gives the root directory the metadata of its "./" entry, or
// 0755 root:root.
func (u *unpacker) finishRoot() error {
	mode := u.rootMode.Perm() | (u.rootMode & fs.ModeSticky)
	if u.fs == nil {
		u.fs = hostTree(u.root)
	}
	if err := u.fs.lchown("", u.rootUID, u.rootGID); err != nil {
		return fmt.Errorf("images: rootfs: %w", err)
	}
	if err := u.fs.chmod("", mode); err != nil {
		return fmt.Errorf("images: rootfs: %w", err)
	}
	if u.rootHasHdr {
		return u.fs.setTimes("", u.rootMtime)
	}
	return nil
}
