// Package images stores pinned OCI images: it builds the default Rust image
// reproducibly from Debian packages, imports OCI layouts, OCI archives and
// `docker save` archives, and unpacks verified root filesystems.
//
// A Store keeps an OCI image layout at DIR/oci and unpacked root filesystems
// at DIR/rootfs/<manifest hex>. Every blob is checked against its digest when
// it is written and when it is read. Blobs are written to DIR/tmp and renamed
// into place, and index.json is rewritten (temp file and rename) only while
// an exclusive flock(2) on DIR/oci/index.lock is held, so several processes
// may share one store, and a crash or a refused import leaves it as it was.
package images

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

var (
	// ErrNotFound means the store holds no image of that name or digest.
	ErrNotFound = errors.New("image not found")
	// ErrNotPinned means a reference lacks the @sha256: digest it needs.
	ErrNotPinned = errors.New("image reference not pinned by digest")
	// ErrInvalid means a malformed reference, layout, archive or blob, or a
	// hostile layer. Errors wrapping it carry the detail.
	ErrInvalid = errors.New("invalid image")
)

// maxJSONBlob bounds manifests, configs and indexes read into memory.
const maxJSONBlob = 16 << 20

// Image is an image in the store.
type Image struct {
	// Name is the name the image is stored under, "" if it has none.
	Name string
	// Digest is the digest of the image manifest.
	Digest digest.Digest
	// Manifest is the OCI image manifest.
	Manifest v1.Manifest
	// Config is the image configuration the manifest points at.
	Config v1.Image
	// Size is the sum of the sizes of the manifest, the config and the
	// (compressed) layer blobs.
	Size int64
}

// Reference returns Name@Digest.
func (i Image) Reference() Reference { return Reference{Name: i.Name, Digest: i.Digest} }

// Store is an OCI image layout plus a cache of unpacked root filesystems.
type Store struct {
	dir    string
	limits Limits
	log    *slog.Logger
}

// Option configures a Store.
type Option func(*Store)

// WithLimits sets the limits Rootfs applies to layers. Zero fields keep
// their defaults.
func WithLimits(l Limits) Option {
	return func(s *Store) {
		if l.MaxBytes > 0 {
			s.limits.MaxBytes = l.MaxBytes
		}
		if l.MaxEntries > 0 {
			s.limits.MaxEntries = l.MaxEntries
		}
		if l.MaxRatio > 0 {
			s.limits.MaxRatio = l.MaxRatio
		}
		if l.RatioFloor > 0 {
			s.limits.RatioFloor = l.RatioFloor
		}
	}
}

// WithLogger sets where the store logs what it removes and unpacks; nil
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// Open opens the store in the data directory dir, creating its layout if
// needed.
func Open(dir string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("images: open %s: %w", dir, err)
	}
	s := &Store{dir: abs, limits: DefaultLimits(), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	for _, d := range []struct {
		path string
		perm fs.FileMode
	}{
		{s.dir, 0o755},
		{s.ociDir(), 0o755},
		{filepath.Join(s.ociDir(), "blobs", "sha256"), 0o755},
		{s.rootfsDir(), 0o755},
		{s.tmpDir(), 0o700},
		{s.lockDir(), 0o700},
	} {
		if err := os.MkdirAll(d.path, d.perm); err != nil {
			return nil, fmt.Errorf("images: open %s: %w", dir, err)
		}
	}
	s.removeStaleTemps()
	unlock, err := s.lockIndex()
	if err != nil {
		return nil, err
	}
	defer unlock()
	layout := filepath.Join(s.ociDir(), v1.ImageLayoutFile)
	if _, err := os.Stat(layout); errors.Is(err, fs.ErrNotExist) {
		b, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
		if err := s.writeFileAtomic(layout, b); err != nil {
			return nil, fmt.Errorf("images: open %s: %w", dir, err)
		}
	}
	if _, err := os.Stat(s.indexPath()); errors.Is(err, fs.ErrNotExist) {
		if err := s.writeIndex(nil); err != nil {
			return nil, fmt.Errorf("images: open %s: %w", dir, err)
		}
	}
	return s, nil
}

// staleAfter is the age at which a file in DIR/tmp is taken for the
// left-over of a crashed process.
const staleAfter = 24 * time.Hour

// removeStaleTemps removes what crashed imports and builds left in DIR/tmp.
func (s *Store) removeStaleTemps() {
	des, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return
	}
	for _, de := range des {
		if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > staleAfter {
			s.log.Info("images: removing stale temp file", "path", filepath.Join(s.tmpDir(), de.Name()))
			os.RemoveAll(filepath.Join(s.tmpDir(), de.Name()))
		}
	}
}

// Dir returns the store's data directory.
func (s *Store) Dir() string { return s.dir }

// Layout returns the directory of the store's OCI image layout, which holds
// every stored image (for engines that import images by digest).
func (s *Store) Layout() string { return s.ociDir() }

func (s *Store) ociDir() string    { return filepath.Join(s.dir, "oci") }
func (s *Store) rootfsDir() string { return filepath.Join(s.dir, "rootfs") }
func (s *Store) tmpDir() string    { return filepath.Join(s.dir, "tmp") }
func (s *Store) lockDir() string   { return filepath.Join(s.dir, "locks") }
func (s *Store) indexPath() string { return filepath.Join(s.ociDir(), v1.ImageIndexFile) }

func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.ociDir(), "blobs", d.Algorithm().String(), d.Encoded())
}

// lockFile takes an exclusive flock on path and returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images: lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("images: lock %s: %w", path, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

func (s *Store) lockIndex() (func(), error) {
	return lockFile(filepath.Join(s.ociDir(), "index.lock"))
}

// writeFileAtomic writes b to path through a synced temp file and rename.
func (s *Store) writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(s.tmpDir(), "write-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// indexEntry is one descriptor of index.json with its name.
type indexEntry struct {
	Name string
	Desc v1.Descriptor
}

// readIndex reads and checks index.json. Only image manifests are allowed.
func (s *Store) readIndex() ([]indexEntry, error) {
	b, err := os.ReadFile(s.indexPath())
	if err != nil {
		return nil, fmt.Errorf("images: read index: %w", err)
	}
	idx, err := parseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("images: store %s: %w", s.indexPath(), err)
	}
	var out []indexEntry
	for _, d := range idx.Manifests {
		if d.MediaType != v1.MediaTypeImageManifest {
			return nil, fmt.Errorf("%w: store %s: descriptor %s: media type %q is not an image manifest", ErrInvalid, s.indexPath(), d.Digest, d.MediaType)
		}
		out = append(out, indexEntry{Name: d.Annotations[v1.AnnotationRefName], Desc: d})
	}
	return out, nil
}

// writeIndex replaces index.json with entries, sorted by name then digest.
// The caller holds the index lock.
func (s *Store) writeIndex(entries []indexEntry) error {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b indexEntry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Desc.Digest, b.Desc.Digest))
	})
	idx := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{},
	}
	for _, e := range entries {
		d := v1.Descriptor{MediaType: e.Desc.MediaType, Digest: e.Desc.Digest, Size: e.Desc.Size}
		if e.Name != "" {
			d.Annotations = map[string]string{v1.AnnotationRefName: e.Name}
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	b, err := json.MarshalIndent(idx, "", "\t")
	if err != nil {
		return err
	}
	return s.writeFileAtomic(s.indexPath(), append(b, '\n'))
}

// parseIndex parses an OCI image index and checks its descriptors.
func parseIndex(b []byte) (v1.Index, error) {
	var idx v1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return v1.Index{}, fmt.Errorf("%w: index: %v", ErrInvalid, err)
	}
	if idx.SchemaVersion != 2 {
		return v1.Index{}, fmt.Errorf("%w: index: schemaVersion %d, want 2", ErrInvalid, idx.SchemaVersion)
	}
	if idx.MediaType != "" && idx.MediaType != v1.MediaTypeImageIndex {
		return v1.Index{}, fmt.Errorf("%w: index: media type %q", ErrInvalid, idx.MediaType)
	}
	for _, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return v1.Index{}, fmt.Errorf("index: %w", err)
		}
	}
	return idx, nil
}

// parseManifest parses an OCI image manifest and checks its descriptors.
func parseManifest(b []byte) (v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return v1.Manifest{}, fmt.Errorf("%w: manifest: %v", ErrInvalid, err)
	}
	if m.SchemaVersion != 2 {
		return v1.Manifest{}, fmt.Errorf("%w: manifest: schemaVersion %d, want 2", ErrInvalid, m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != v1.MediaTypeImageManifest {
		return v1.Manifest{}, fmt.Errorf("%w: manifest: media type %q", ErrInvalid, m.MediaType)
	}
	if m.Config.MediaType != v1.MediaTypeImageConfig {
		return v1.Manifest{}, fmt.Errorf("%w: manifest: config media type %q", ErrInvalid, m.Config.MediaType)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return v1.Manifest{}, fmt.Errorf("manifest: config: %w", err)
	}
	for i, l := range m.Layers {
		if !isLayerMediaType(l.MediaType) {
			return v1.Manifest{}, fmt.Errorf("%w: manifest: layer %d: media type %q", ErrInvalid, i, l.MediaType)
		}
		if err := checkDescriptor(l); err != nil {
			return v1.Manifest{}, fmt.Errorf("manifest: layer %d: %w", i, err)
		}
	}
	return m, nil
}

// parseConfig parses an image configuration for a manifest with nlayers
// layers.
func parseConfig(b []byte, nlayers int) (v1.Image, error) {
	var c v1.Image
	if err := json.Unmarshal(b, &c); err != nil {
		return v1.Image{}, fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	if c.RootFS.Type != "layers" {
		return v1.Image{}, fmt.Errorf("%w: config: rootfs type %q, want layers", ErrInvalid, c.RootFS.Type)
	}
	if len(c.RootFS.DiffIDs) != nlayers {
		return v1.Image{}, fmt.Errorf("%w: config: %d diff_ids for %d layers", ErrInvalid, len(c.RootFS.DiffIDs), nlayers)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := checkDigest(d); err != nil {
			return v1.Image{}, fmt.Errorf("config: diff_id %d: %w", i, err)
		}
	}
	return c, nil
}

func isLayerMediaType(mt string) bool {
	switch mt {
	case v1.MediaTypeImageLayer, v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerZstd,
		// Non-distributable layers are deprecated but still found.
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}

// checkDigest accepts only sha256 digests in canonical form, so a digest can
// safely become a file name.
func checkDigest(d digest.Digest) error {
	if !digestRE.MatchString(string(d)) {
		return fmt.Errorf("%w: digest %q: want sha256 and 64 lowercase hex digits", ErrInvalid, d)
	}
	return nil
}

func checkDescriptor(d v1.Descriptor) error {
	if err := checkDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: descriptor %s: negative size %d", ErrInvalid, d.Digest, d.Size)
	}
	return nil
}

// openBlob opens a blob of the store for reading. The blob is not trusted on
// re-read: it must be a regular file, not a link (or a FIFO, which would
// block); the store's own directories may be links.
func (s *Store) openBlob(d digest.Digest) (*os.File, error) {
	f, err := openRegular(filepath.Dir(s.blobPath(d)), d.Encoded())
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// readBlob reads a small blob and verifies its size and digest.
func (s *Store) readBlob(d v1.Descriptor) ([]byte, error) {
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	if d.Size > maxJSONBlob {
		return nil, fmt.Errorf("%w: blob %s: %d bytes is too large for metadata", ErrInvalid, d.Digest, d.Size)
	}
	f, err := s.openBlob(d.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s is missing from the store", ErrNotFound, d.Digest)
	} else if err != nil {
		return nil, fmt.Errorf("images: read blob %s: %w", d.Digest, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("images: read blob %s: %w", d.Digest, err)
	}
	if err := verifyBytes(b, d); err != nil {
		return nil, fmt.Errorf("images: store: %w", err)
	}
	return b, nil
}

// verifyBytes checks b against the size and digest of d.
func verifyBytes(b []byte, d v1.Descriptor) error {
	if int64(len(b)) != d.Size {
		return fmt.Errorf("%w: blob %s: size %d, want %d", ErrInvalid, d.Digest, len(b), d.Size)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return fmt.Errorf("%w: blob %s: content has digest %s", ErrInvalid, d.Digest, got)
	}
	return nil
}

// stagedBlob is a verified blob in the store's tmp directory, waiting to be
// committed under the index lock.
type stagedBlob struct {
	path   string
	digest digest.Digest
}

// stageBlob copies r into a temp file and verifies it against want when
// want.Digest is set. It returns the descriptor it measured.
func (s *Store) stageBlob(r io.Reader, want v1.Descriptor) (stagedBlob, v1.Descriptor, error) {
	f, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("images: stage blob: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	src := r
	if want.Digest != "" {
		src = io.LimitReader(r, want.Size+1)
	}
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("images: stage blob %s: %w", want.Digest, err)
	}
	got := digest.NewDigest(digest.SHA256, h)
	if want.Digest != "" {
		if n != want.Size {
			return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("%w: blob %s: size %d, want %d", ErrInvalid, want.Digest, n, want.Size)
		}
		if got != want.Digest {
			return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("%w: blob %s: content has digest %s", ErrInvalid, want.Digest, got)
		}
	}
	if err := f.Chmod(0o644); err != nil {
		return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("images: stage blob: %w", err)
	}
	if err := f.Sync(); err != nil {
		return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("images: stage blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return stagedBlob{}, v1.Descriptor{}, fmt.Errorf("images: stage blob: %w", err)
	}
	ok = true
	d := want
	d.Digest, d.Size = got, n
	return stagedBlob{path: f.Name(), digest: got}, d, nil
}

// stageBytes stages a small blob held in memory.
func (s *Store) stageBytes(b []byte, mediaType string) (stagedBlob, v1.Descriptor, error) {
	return s.stageBlob(bytes.NewReader(b), v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))})
}

// commitBlobs renames staged blobs into place. The caller holds the index
// lock. A blob already present is kept.
func (s *Store) commitBlobs(blobs []stagedBlob) error {
	for _, b := range blobs {
		dst := s.blobPath(b.digest)
		if _, err := os.Lstat(dst); err == nil {
			os.Remove(b.path)
			continue
		}
		if err := os.Rename(b.path, dst); err != nil {
			return fmt.Errorf("images: commit blob %s: %w", b.digest, err)
		}
	}
	return syncDir(filepath.Join(s.ociDir(), "blobs", "sha256"))
}

func discardStaged(blobs []stagedBlob) {
	for _, b := range blobs {
		os.Remove(b.path)
	}
}

// addImage commits staged blobs and points name at manifest. The manifest the
// name pointed at before stays in the store, untagged, unless another entry
// still holds it: a config pinned to it (name@sha256:…) must keep building
// after the name moves on; `image rm sha256:…` removes it. The caller must not
// hold the index lock.
func (s *Store) addImage(name string, manifest v1.Descriptor, blobs []stagedBlob) error {
	unlock, err := s.lockIndex()
	if err != nil {
		discardStaged(blobs)
		return err
	}
	defer unlock()
	entries, err := s.readIndex()
	if err != nil {
		discardStaged(blobs)
		return err
	}
	if err := s.commitBlobs(blobs); err != nil {
		discardStaged(blobs)
		return err
	}
	entries = pointName(entries, name, manifest.Digest, manifest.Size)
	if err := s.writeIndex(entries); err != nil {
		return fmt.Errorf("images: write index: %w", err)
	}
	return nil
}

// pointName returns entries with name ("" for an untagged entry) pointing at
// the manifest d. The manifest the name pointed at before stays, untagged,
// unless another entry holds it; there is at most one untagged entry per
// manifest and none for a manifest that has a name.
func pointName(entries []indexEntry, name string, d digest.Digest, size int64) []indexEntry {
	if name != "" {
		for i, e := range entries {
			if e.Name == name && e.Desc.Digest != d {
				entries[i].Name = ""
			}
		}
	}
	entries = slices.DeleteFunc(entries, func(e indexEntry) bool { return e.Name == name && e.Desc.Digest == d })
	entries = append(entries, indexEntry{Name: name, Desc: v1.Descriptor{
		MediaType: v1.MediaTypeImageManifest, Digest: d, Size: size,
	}})
	held := map[digest.Digest]bool{}
	for _, e := range entries {
		if e.Name != "" {
			held[e.Desc.Digest] = true
		}
	}
	untagged := map[digest.Digest]bool{}
	return slices.DeleteFunc(entries, func(e indexEntry) bool {
		if e.Name != "" {
			return false
		}
		if held[e.Desc.Digest] || untagged[e.Desc.Digest] {
			return true
		}
		untagged[e.Desc.Digest] = true
		return false
	})
}

// loadImage reads and verifies the manifest and config of an index entry.
func (s *Store) loadImage(e indexEntry) (Image, error) {
	mb, err := s.readBlob(e.Desc)
	if err != nil {
		return Image{}, err
	}
	m, err := parseManifest(mb)
	if err != nil {
		return Image{}, fmt.Errorf("images: %s: %w", e.Desc.Digest, err)
	}
	cb, err := s.readBlob(m.Config)
	if err != nil {
		return Image{}, err
	}
	c, err := parseConfig(cb, len(m.Layers))
	if err != nil {
		return Image{}, fmt.Errorf("images: %s: %w", e.Desc.Digest, err)
	}
	size := e.Desc.Size + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return Image{Name: e.Name, Digest: e.Desc.Digest, Manifest: m, Config: c, Size: size}, nil
}

// Resolve finds an image. A pinned reference must name a manifest in the
// store (its name, if any, is only a label: the digest decides); an unpinned
// one names a stored image, where "name" also finds "name:latest". The
// manifest and config blobs are verified.
func (s *Store) Resolve(ref string) (Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	entries, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	e, ok := findEntry(entries, r)
	if !ok {
		return Image{}, fmt.Errorf("images: %w: %s", ErrNotFound, r)
	}
	img, err := s.loadImage(e)
	if err != nil {
		return Image{}, err
	}
	if r.Name != "" {
		img.Name = r.Name
	}
	return img, nil
}

func findEntry(entries []indexEntry, r Reference) (indexEntry, bool) {
	slices.SortFunc(entries, func(a, b indexEntry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Desc.Digest, b.Desc.Digest))
	})
	if r.Pinned() {
		var found *indexEntry
		for i, e := range entries {
			if e.Desc.Digest != r.Digest {
				continue
			}
			if e.Name == r.Name {
				return e, true
			}
			if found == nil {
				found = &entries[i]
			}
		}
		if found != nil {
			return *found, true
		}
		return indexEntry{}, false
	}
	names := []string{r.Name}
	if !hasTag(r.Name) {
		names = append(names, r.Name+":latest")
	}
	for _, n := range names {
		for _, e := range entries {
			if e.Name == n {
				return e, true
			}
		}
	}
	return indexEntry{}, false
}

// hasTag reports whether a parsed name ends in ":tag" (a colon after the last
// slash; a registry port comes before a slash).
func hasTag(name string) bool {
	return strings.Contains(name[strings.LastIndex(name, "/")+1:], ":")
}

// List returns every image, sorted by name then digest.
func (s *Store) List() ([]Image, error) {
	entries, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, e := range entries {
		img, err := s.loadImage(e)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b Image) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Digest, b.Digest))
	})
	return out, nil
}

// Remove removes an image name: "name" removes that name, "name@sha256:…"
// removes the name only if it points at that digest, and "sha256:…" removes
// every name of that manifest. Blobs and cached root filesystems that no
// remaining image uses are deleted. If a build holds a Lease on an image
// whose root filesystem would go, Remove changes nothing and returns an error
// wrapping ErrInUse that names the build and its pid.
func (s *Store) Remove(ref string) error {
	r, err := ParseReference(ref)
	if err != nil {
		return err
	}
	unlock, err := s.lockIndex()
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := s.readIndex()
	if err != nil {
		return err
	}
	kept := slices.DeleteFunc(slices.Clone(entries), func(e indexEntry) bool {
		switch {
		case r.Pinned() && r.Name == "":
			return e.Desc.Digest == r.Digest
		case r.Pinned():
			return e.Name == r.Name && e.Desc.Digest == r.Digest
		default:
			return e.Name == r.Name
		}
	})
	if len(kept) == len(entries) {
		return fmt.Errorf("images: remove: %w: %s", ErrNotFound, r)
	}
	// The manifests no entry keeps lose their root filesystems: refuse,
	// before changing anything, if a build holds a lease on one.
	held := map[string]bool{}
	var releases []func()
	defer func() {
		for _, release := range releases {
			release()
		}
	}()
	for _, e := range entries {
		hex := e.Desc.Digest.Encoded()
		if held[hex] || slices.ContainsFunc(kept, func(k indexEntry) bool { return k.Desc.Digest == e.Desc.Digest }) {
			continue
		}
		release, err := s.acquireRemoval(hex, r.String())
		if err != nil {
			return err
		}
		held[hex] = true
		releases = append(releases, release)
	}
	if err := s.writeIndex(kept); err != nil {
		return fmt.Errorf("images: write index: %w", err)
	}
	return s.gc(kept, held)
}

// gc deletes blobs and root filesystems that no entry uses. The caller holds
// the index lock, and the removal locks of the manifest hexes in held; any
// other root filesystem a build holds a lease on is kept. Blobs it cannot
// read are kept.
func (s *Store) gc(entries []indexEntry, held map[string]bool) error {
	used := map[digest.Digest]bool{}
	manifests := map[string]bool{}
	for _, e := range entries {
		used[e.Desc.Digest] = true
		manifests[e.Desc.Digest.Encoded()] = true
		b, err := s.readBlob(e.Desc)
		if err != nil {
			return fmt.Errorf("images: gc: %w", err)
		}
		m, err := parseManifest(b)
		if err != nil {
			return fmt.Errorf("images: gc: %s: %w", e.Desc.Digest, err)
		}
		used[m.Config.Digest] = true
		for _, l := range m.Layers {
			used[l.Digest] = true
		}
	}
	blobDir := filepath.Join(s.ociDir(), "blobs", "sha256")
	des, err := os.ReadDir(blobDir)
	if err != nil {
		return fmt.Errorf("images: gc: %w", err)
	}
	for _, de := range des {
		if used[digest.NewDigestFromEncoded(digest.SHA256, de.Name())] {
			continue
		}
		s.log.Info("images: removing unused blob", "digest", "sha256:"+de.Name())
		if err := os.Remove(filepath.Join(blobDir, de.Name())); err != nil {
			return fmt.Errorf("images: gc: %w", err)
		}
	}
	des, err = os.ReadDir(s.rootfsDir())
	if err != nil {
		return fmt.Errorf("images: gc: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".rm-") { // a removal that crashed
			os.RemoveAll(filepath.Join(s.rootfsDir(), name))
			continue
		}
		if strings.HasPrefix(name, ".") || manifests[name] {
			continue
		}
		if !held[name] {
			release, err := s.acquireRemoval(name, "sha256:"+name)
			if errors.Is(err, ErrInUse) {
				s.log.Info("images: keeping a root filesystem a build uses", "digest", "sha256:"+name, "err", err)
				continue
			} else if err != nil {
				return fmt.Errorf("images: gc: %w", err)
			}
			defer release()
		}
		if err := s.removeRootfs(name); err != nil {
			return err
		}
	}
	return nil
}

// removeRootfs deletes the cached root filesystem of a manifest hex, under
// that rootfs's lock.
func (s *Store) removeRootfs(hex string) error {
	unlock, err := lockFile(filepath.Join(s.lockDir(), "rootfs-"+hex+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	s.log.Info("images: removing root filesystem", "digest", "sha256:"+hex)
	// Rename first so that a half-removed tree is never mistaken for a
	// complete one.
	doomed := filepath.Join(s.rootfsDir(), ".rm-"+hex)
	if err := os.Rename(filepath.Join(s.rootfsDir(), hex), doomed); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("images: remove rootfs: %w", err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("images: remove rootfs: %w", err)
	}
	return nil
}
