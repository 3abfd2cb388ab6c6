package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types that Import converts to their OCI equivalents.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	dockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"

	// containerdImageName is the full name Docker and containerd write
	// next to a bare tag in org.opencontainers.image.ref.name.
	containerdImageName = "io.containerd.image.name"

	maxIndexDepth = 4
)

// Import adds the linux/amd64 images of path to the store: an OCI image
// layout directory, an OCI archive (a tar, possibly gzipped, of a layout), or
// a `docker save` archive (manifest.json format, also accepted unpacked in
// a directory). Every blob is verified against its digest, and nothing is
// added unless all of them are good. OCI manifests are kept byte for byte,
// so their digests stay the same; Docker manifests are converted to OCI
// manifests, which gives them new digests. Uncompressed layers are kept
// uncompressed.
//
// Names come from the source (io.containerd.image.name, else
// org.opencontainers.image.ref.name, or a Docker RepoTag); name, if not
// empty, replaces them, and then the source must hold exactly one image. An
// image without any name is stored unnamed, reachable by digest.
func (s *Store) Import(ctx context.Context, path string, name string) ([]Image, error) {
	if name != "" {
		n, err := parseName(name)
		if err != nil {
			return nil, fmt.Errorf("images: import: %w", err)
		}
		name = n
	}
	src, err := s.openSource(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var found []foundImage
	switch {
	case src.has(v1.ImageLayoutFile):
		found, err = readLayout(ctx, src)
	case src.has("manifest.json"):
		found, err = readDockerSave(ctx, src)
	default:
		err = fmt.Errorf("%w: %s: neither an OCI layout (oci-layout) nor a docker save archive (manifest.json)", ErrInvalid, path)
	}
	if err != nil {
		return nil, fmt.Errorf("images: import %s: %w", path, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%w: import %s: no linux/amd64 image", ErrInvalid, path)
	}
	if name != "" {
		digests := map[digest.Digest]bool{}
		for _, f := range found {
			digests[f.digest] = true
		}
		if len(digests) != 1 {
			return nil, fmt.Errorf("%w: import %s: %d images, but one name", ErrInvalid, path, len(digests))
		}
		found = found[:1]
		found[0].name = name
	}

	// Stage every blob, then commit them all with the names under one lock.
	var staged []stagedBlob
	stagedDigests := map[digest.Digest]string{} // to its staged file
	stage := func(r io.Reader, d v1.Descriptor) error {
		if stagedDigests[d.Digest] != "" {
			return nil
		}
		b, _, err := s.stageBlob(r, d)
		if err != nil {
			return err
		}
		staged = append(staged, b)
		stagedDigests[d.Digest] = b.path
		return nil
	}
	fail := func(err error) ([]Image, error) {
		discardStaged(staged)
		return nil, fmt.Errorf("images: import %s: %w", path, err)
	}
	for _, f := range found {
		for _, l := range f.layers {
			if err := ctx.Err(); err != nil {
				return fail(context.Cause(ctx))
			}
			rc, err := src.open(l.file)
			if err != nil {
				return fail(err)
			}
			err = stage(ctxReader{ctx, rc}, l.desc)
			rc.Close()
			if err != nil {
				return fail(err)
			}
		}
		if err := s.validateLayers(ctx, f, stagedDigests); err != nil {
			return fail(err)
		}
		if err := stage(bytes.NewReader(f.configBytes), f.manifest.Config); err != nil {
			return fail(err)
		}
		if err := stage(bytes.NewReader(f.manifestBytes), v1.Descriptor{Digest: f.digest, Size: int64(len(f.manifestBytes))}); err != nil {
			return fail(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fail(context.Cause(ctx))
	}
	unlock, err := s.lockIndex()
	if err != nil {
		return fail(err)
	}
	defer unlock()
	entries, err := s.readIndex()
	if err != nil {
		return fail(err)
	}
	if err := s.commitBlobs(staged); err != nil {
		return fail(err)
	}
	var out []Image
	for _, f := range found {
		entries = pointName(entries, f.name, f.digest, int64(len(f.manifestBytes)))
		size := int64(len(f.manifestBytes)) + f.manifest.Config.Size
		for _, l := range f.manifest.Layers {
			size += l.Size
		}
		out = append(out, Image{Name: f.name, Digest: f.digest, Manifest: f.manifest, Config: f.config, Size: size})
	}
	if err := s.writeIndex(entries); err != nil {
		return nil, fmt.Errorf("images: import %s: write index: %w", path, err)
	}
	slices.SortFunc(out, func(a, b Image) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Digest, b.Digest))
	})
	return slices.CompactFunc(out, func(a, b Image) bool { return a.Name == b.Name && a.Digest == b.Digest }), nil
}

// foundImage is an image read from an import source, not yet stored.
type foundImage struct {
	name          string
	digest        digest.Digest // of manifestBytes
	manifestBytes []byte
	manifest      v1.Manifest
	configBytes   []byte
	config        v1.Image
	layers        []sourceLayer
}

type sourceLayer struct {
	file string // in the source
	desc v1.Descriptor
}

// source is a directory or an indexed tar archive.
type source interface {
	has(name string) bool
	// open opens a regular file; name is slash-separated and relative.
	open(name string) (io.ReadCloser, error)
	Close() error
}

// readSmall reads a metadata file of at most maxJSONBlob bytes.
func readSmall(src source, name string) ([]byte, error) {
	rc, err := src.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxJSONBlob+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxJSONBlob {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalid, name, maxJSONBlob)
	}
	return b, nil
}

func blobFile(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

// readBlobFrom reads and verifies a small blob of a layout.
func readBlobFrom(src source, d v1.Descriptor) ([]byte, error) {
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	if d.Size > maxJSONBlob {
		return nil, fmt.Errorf("%w: blob %s: %d bytes is too large for metadata", ErrInvalid, d.Digest, d.Size)
	}
	b, err := readSmall(src, blobFile(d.Digest))
	if err != nil {
		return nil, err
	}
	if err := verifyBytes(b, d); err != nil {
		return nil, err
	}
	return b, nil
}

// readLayout finds the linux/amd64 images of an OCI layout.
func readLayout(ctx context.Context, src source) ([]foundImage, error) {
	lb, err := readSmall(src, v1.ImageLayoutFile)
	if err != nil {
		return nil, err
	}
	if err := parseLayoutFile(lb); err != nil {
		return nil, err
	}
	ib, err := readSmall(src, v1.ImageIndexFile)
	if err != nil {
		return nil, err
	}
	idx, err := parseAnyIndex(ib)
	if err != nil {
		return nil, err
	}
	var out []foundImage
	for _, d := range idx.Manifests {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if !platformOK(d.Platform) {
			continue
		}
		name := d.Annotations[containerdImageName]
		if name == "" {
			name = d.Annotations[v1.AnnotationRefName]
		}
		if name != "" {
			if name, err = parseName(name); err != nil {
				return nil, fmt.Errorf("descriptor %s: %w", d.Digest, err)
			}
		}
		f, ok, err := resolveLayoutManifest(src, d, 0)
		if err != nil {
			return nil, err
		}
		if ok {
			f.name = name
			out = append(out, f)
		}
	}
	return out, nil
}

func parseLayoutFile(b []byte) error {
	var l v1.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("%w: oci-layout: %v", ErrInvalid, err)
	}
	if l.Version != v1.ImageLayoutVersion {
		return fmt.Errorf("%w: oci-layout: version %q, want %q", ErrInvalid, l.Version, v1.ImageLayoutVersion)
	}
	return nil
}

// parseAnyIndex parses an OCI index or a Docker manifest list.
func parseAnyIndex(b []byte) (v1.Index, error) {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &probe); err == nil && probe.MediaType == dockerManifestList {
		b = bytes.Replace(b, []byte(`"`+dockerManifestList+`"`), []byte(`"`+v1.MediaTypeImageIndex+`"`), 1)
	}
	return parseIndex(b)
}

func platformOK(p *v1.Platform) bool {
	return p == nil || (p.OS == "linux" && p.Architecture == "amd64")
}

// resolveLayoutManifest follows d, an index or a manifest, to one linux/amd64
// image. ok is false when d holds none.
func resolveLayoutManifest(src source, d v1.Descriptor, depth int) (foundImage, bool, error) {
	switch d.MediaType {
	case v1.MediaTypeImageIndex, dockerManifestList:
		if depth >= maxIndexDepth {
			return foundImage{}, false, fmt.Errorf("%w: index %s: nested more than %d deep", ErrInvalid, d.Digest, maxIndexDepth)
		}
		b, err := readBlobFrom(src, d)
		if err != nil {
			return foundImage{}, false, err
		}
		idx, err := parseAnyIndex(b)
		if err != nil {
			return foundImage{}, false, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		var picked []v1.Descriptor
		for _, c := range idx.Manifests {
			if c.Platform != nil && platformOK(c.Platform) {
				picked = append(picked, c)
			}
		}
		if len(picked) == 0 && len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil {
			picked = idx.Manifests
		}
		if len(picked) == 0 {
			return foundImage{}, false, nil
		}
		if len(picked) > 1 {
			// Prefer the plain amd64 variant (v1 or none) if several.
			slices.SortStableFunc(picked, func(a, b v1.Descriptor) int {
				return cmp.Compare(a.Platform.Variant, b.Platform.Variant)
			})
		}
		return resolveLayoutManifest(src, picked[0], depth+1)
	case v1.MediaTypeImageManifest, dockerManifest, "":
	default:
		return foundImage{}, false, fmt.Errorf("%w: descriptor %s: media type %q is not an image manifest or index", ErrInvalid, d.Digest, d.MediaType)
	}
	b, err := readBlobFrom(src, d)
	if err != nil {
		return foundImage{}, false, err
	}
	f, err := convertManifest(b, d.Digest)
	if err != nil {
		return foundImage{}, false, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	if f.configBytes, err = readBlobFrom(src, f.manifest.Config); err != nil {
		return foundImage{}, false, err
	}
	if f.config, err = parseConfig(f.configBytes, len(f.manifest.Layers)); err != nil {
		return foundImage{}, false, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	if !platformOK(&v1.Platform{OS: cmp.Or(f.config.OS, "linux"), Architecture: cmp.Or(f.config.Architecture, "amd64")}) {
		return foundImage{}, false, nil
	}
	for _, l := range f.manifest.Layers {
		f.layers = append(f.layers, sourceLayer{file: blobFile(l.Digest), desc: l})
	}
	return f, true, nil
}

// convertManifest parses an OCI manifest, kept byte for byte, or a Docker
// schema 2 manifest, converted to OCI.
func convertManifest(b []byte, d digest.Digest) (foundImage, error) {
	var probe struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return foundImage{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if probe.MediaType != dockerManifest && probe.Config.MediaType != dockerConfig {
		m, err := parseManifest(b)
		if err != nil {
			return foundImage{}, err
		}
		return foundImage{digest: d, manifestBytes: b, manifest: m}, nil
	}
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return foundImage{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m.MediaType = v1.MediaTypeImageManifest
	if m.Config.MediaType != dockerConfig && m.Config.MediaType != v1.MediaTypeImageConfig {
		return foundImage{}, fmt.Errorf("%w: config media type %q", ErrInvalid, m.Config.MediaType)
	}
	m.Config.MediaType = v1.MediaTypeImageConfig
	for i := range m.Layers {
		switch m.Layers[i].MediaType {
		case dockerLayerGzip:
			m.Layers[i].MediaType = v1.MediaTypeImageLayerGzip
		case dockerLayer:
			m.Layers[i].MediaType = v1.MediaTypeImageLayer
		case dockerLayerZstd:
			m.Layers[i].MediaType = v1.MediaTypeImageLayerZstd
		}
	}
	return newFoundImage(m)
}

// newFoundImage marshals a converted manifest.
func newFoundImage(m v1.Manifest) (foundImage, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return foundImage{}, err
	}
	if m, err = parseManifest(b); err != nil {
		return foundImage{}, err
	}
	return foundImage{digest: digest.FromBytes(b), manifestBytes: b, manifest: m}, nil
}

// dockerSaveEntry is one image of a docker save manifest.json.
type dockerSaveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func parseDockerSave(b []byte) ([]dockerSaveEntry, error) {
	var entries []dockerSaveEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrInvalid, err)
	}
	for i, e := range entries {
		if e.Config == "" {
			return nil, fmt.Errorf("%w: manifest.json: image %d has no Config", ErrInvalid, i)
		}
		for _, t := range e.RepoTags {
			if _, err := parseName(t); err != nil {
				return nil, fmt.Errorf("manifest.json: image %d: %w", i, err)
			}
		}
		for _, f := range append([]string{e.Config}, e.Layers...) {
			if _, err := cleanArchivePath(f); err != nil {
				return nil, fmt.Errorf("manifest.json: image %d: %w", i, err)
			}
		}
	}
	return entries, nil
}

// readDockerSave converts the linux/amd64 images of a docker save archive.
// Layers are measured (and their diff_ids checked when uncompressed) while
// reading them, and read again when staged.
func readDockerSave(ctx context.Context, src source) ([]foundImage, error) {
	mb, err := readSmall(src, "manifest.json")
	if err != nil {
		return nil, err
	}
	entries, err := parseDockerSave(mb)
	if err != nil {
		return nil, err
	}
	var out []foundImage
	for i, e := range entries {
		cb, err := readSmall(src, e.Config)
		if err != nil {
			return nil, err
		}
		cfg, err := parseConfig(cb, len(e.Layers))
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		if !platformOK(&v1.Platform{OS: cmp.Or(cfg.OS, "linux"), Architecture: cmp.Or(cfg.Architecture, "amd64")}) {
			continue
		}
		m := v1.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: v1.MediaTypeImageManifest,
			Config:    v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))},
		}
		var layers []sourceLayer
		for j, lf := range e.Layers {
			if err := ctx.Err(); err != nil {
				return nil, context.Cause(ctx)
			}
			d, err := measureLayer(src, lf)
			if err != nil {
				return nil, fmt.Errorf("image %d: layer %s: %w", i, lf, err)
			}
			if d.MediaType == v1.MediaTypeImageLayer && d.Digest != cfg.RootFS.DiffIDs[j] {
				return nil, fmt.Errorf("%w: image %d: layer %s has digest %s, config diff_id %d is %s", ErrInvalid, i, lf, d.Digest, j, cfg.RootFS.DiffIDs[j])
			}
			m.Layers = append(m.Layers, d)
			layers = append(layers, sourceLayer{file: lf, desc: d})
		}
		f, err := newFoundImage(m)
		if err != nil {
			return nil, err
		}
		f.configBytes, f.config, f.layers = cb, cfg, layers
		if len(e.RepoTags) == 0 {
			out = append(out, f)
		}
		for _, t := range e.RepoTags {
			f.name, _ = parseName(t)
			out = append(out, f)
		}
	}
	return out, nil
}

// measureLayer digests a layer file and sniffs its compression.
func measureLayer(src source, name string) (v1.Descriptor, error) {
	rc, err := src.open(name)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	magic, _ := br.Peek(4)
	mt := v1.MediaTypeImageLayer
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		mt = v1.MediaTypeImageLayerGzip
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		mt = v1.MediaTypeImageLayerZstd
	}
	dg := digest.SHA256.Digester()
	n, err := io.Copy(dg.Hash(), br)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: dg.Digest(), Size: n}, nil
}

// cleanArchivePath cleans a relative path inside an import source.
func cleanArchivePath(name string) (string, error) {
	c := path.Clean(strings.TrimPrefix(name, "./"))
	if name == "" || path.IsAbs(name) || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: path %q outside the archive", ErrInvalid, name)
	}
	return c, nil
}

// openSource opens a directory, or indexes a tar archive (decompressing a
// gzipped one into the store's tmp directory first).
func (s *Store) openSource(p string) (source, error) {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("images: import: %w: %s", ErrNotFound, p)
		}
		return nil, fmt.Errorf("images: import: %w", err)
	}
	if fi.IsDir() {
		return dirSource(p), nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: import %s: a %s, not an archive or a layout directory", ErrInvalid, p, fileType(uint32(fi.Sys().(*syscall.Stat_t).Mode)))
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("images: import: %w", err)
	}
	if err := checkRegular(f, p); err != nil { // replaced since the stat
		f.Close()
		return nil, fmt.Errorf("images: import: %w", err)
	}
	var magic [2]byte
	if _, err := io.ReadFull(f, magic[:]); err == nil && magic == [2]byte{0x1f, 0x8b} {
		f.Seek(0, io.SeekStart)
		tmp, err := s.gunzipToTemp(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("images: import %s: %w", p, err)
		}
		f = tmp
	}
	ts, err := indexTar(f)
	if err != nil {
		ts.Close()
		return nil, fmt.Errorf("images: import %s: %w", p, err)
	}
	return ts, nil
}

func (s *Store) gunzipToTemp(r io.Reader) (*os.File, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	tmp, err := os.CreateTemp(s.tmpDir(), "import-")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name()) // gone when closed
	if _, err := io.Copy(tmp, io.LimitReader(zr, s.limits.MaxBytes+1)); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if off, _ := tmp.Seek(0, io.SeekCurrent); off > s.limits.MaxBytes {
		tmp.Close()
		return nil, fmt.Errorf("%w: archive larger than %d bytes uncompressed", ErrInvalid, s.limits.MaxBytes)
	}
	return tmp, nil
}

type dirSource string

// has reports whether name exists, whatever it is: open says what is wrong
// with it.
func (d dirSource) has(name string) bool {
	_, err := os.Lstat(filepath.Join(string(d), filepath.FromSlash(name)))
	return err == nil
}

// open opens a regular file of the directory. No symbolic link is followed
// (a layout has no need of them, and one could point anywhere on the host),
// and a FIFO, device or socket is refused by name, never opened.
func (d dirSource) open(name string) (io.ReadCloser, error) {
	c, err := cleanArchivePath(name)
	if err != nil {
		return nil, err
	}
	f, err := openRegular(string(d), c)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing", ErrInvalid, name)
	} else if err != nil {
		return nil, err
	}
	return f, nil
}

func (d dirSource) Close() error { return nil }

// tarSource serves the members of an uncompressed tar file by offset.
type tarSource struct {
	f       *os.File
	members map[string]tarMember
}

type tarMember struct {
	off, size int64
	link      string // symbolic or hard link target, cleaned
}

const maxArchiveMembers = 1 << 20

func indexTar(f *os.File) (*tarSource, error) {
	ts := &tarSource{f: f, members: map[string]tarMember{}}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ts, err
	}
	pr := &posReader{f: f}
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ts, fmt.Errorf("%w: archive: %v", ErrInvalid, err)
		}
		if len(ts.members) >= maxArchiveMembers {
			return ts, fmt.Errorf("%w: archive: more than %d members", ErrInvalid, maxArchiveMembers)
		}
		name, err := cleanArchivePath(hdr.Name)
		if err != nil {
			return ts, fmt.Errorf("archive: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if hdr.PAXRecords != nil && (hdr.PAXRecords["GNU.sparse.major"] != "" || hdr.PAXRecords["GNU.sparse.name"] != "") {
				return ts, fmt.Errorf("%w: archive: sparse member %q", ErrInvalid, hdr.Name)
			}
			ts.members[name] = tarMember{off: pr.pos, size: hdr.Size}
		case tar.TypeSymlink:
			t := hdr.Linkname
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(name), t)
			}
			if t, err = cleanArchivePath(t); err != nil {
				return ts, fmt.Errorf("archive: link %q: %w", hdr.Name, err)
			}
			ts.members[name] = tarMember{link: t}
		case tar.TypeLink:
			t, err := cleanArchivePath(hdr.Linkname)
			if err != nil {
				return ts, fmt.Errorf("archive: link %q: %w", hdr.Name, err)
			}
			ts.members[name] = tarMember{link: t}
		case tar.TypeDir, tar.TypeXGlobalHeader:
		default:
			return ts, fmt.Errorf("%w: archive: member %q of type %q", ErrInvalid, hdr.Name, hdr.Typeflag)
		}
	}
	return ts, nil
}

func (t *tarSource) lookup(name string) (tarMember, bool) {
	for range 16 {
		m, ok := t.members[name]
		if !ok || m.link == "" {
			return m, ok
		}
		name = m.link
	}
	return tarMember{}, false
}

func (t *tarSource) has(name string) bool {
	_, ok := t.lookup(name)
	return ok
}

func (t *tarSource) open(name string) (io.ReadCloser, error) {
	c, err := cleanArchivePath(name)
	if err != nil {
		return nil, err
	}
	m, ok := t.lookup(c)
	if !ok {
		return nil, fmt.Errorf("%w: %s is missing from the archive", ErrInvalid, name)
	}
	return io.NopCloser(io.NewSectionReader(t.f, m.off, m.size)), nil
}

func (t *tarSource) Close() error { return t.f.Close() }

// posReader tracks the offset of an *os.File read by archive/tar, and lets
// it seek over member data.
type posReader struct {
	f   *os.File
	pos int64
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	p.pos += int64(n)
	return n, err
}

func (p *posReader) Seek(off int64, whence int) (int64, error) {
	n, err := p.f.Seek(off, whence)
	if err == nil {
		p.pos = n
	}
	return n, err
}
