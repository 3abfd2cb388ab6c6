package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ExportFormat is the kind of archive Export writes.
type ExportFormat string

const (
	// FormatOCI is an OCI archive: a tar of an OCI image layout
	// (skopeo's oci-archive:, podman load, docker load since 25).
	FormatOCI ExportFormat = "oci"
	// FormatDocker is a `docker save` archive: manifest.json with the
	// layers and config beside it (skopeo's docker-archive:, every docker
	// load), which is also an OCI layout, as Docker 25 writes them.
	FormatDocker ExportFormat = "docker"
)

// Export writes the stored image ref to the file path as an archive of
// format. The archive is deterministic: members sorted by name, mode 0644
// or 0755, owner 0:0, mtime 0. The OCI layout in it holds the stored
// manifest byte for byte, so importing the archive (reprobox, skopeo,
// podman, docker) gives the same digest. Every blob is verified while it is
// copied; the file is written through a temp file and rename, so a failed
// export leaves no partial archive.
func Export(s *Store, ref, path string, format ExportFormat) (Image, error) {
	if format != FormatOCI && format != FormatDocker {
		return Image{}, fmt.Errorf("%w: export: format %q: want oci or docker", ErrInvalid, format)
	}
	img, err := s.Resolve(ref)
	if err != nil {
		return Image{}, err
	}
	mb, err := s.readBlob(v1.Descriptor{Digest: img.Digest, Size: manifestSize(s, img)})
	if err != nil {
		return Image{}, fmt.Errorf("images: export: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".export-*")
	if err != nil {
		return Image{}, fmt.Errorf("images: export: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := s.writeArchive(f, img, mb, format); err != nil {
		return Image{}, fmt.Errorf("images: export %s: %w", img.Reference(), err)
	}
	if err := f.Chmod(0o644); err != nil {
		return Image{}, fmt.Errorf("images: export: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Image{}, fmt.Errorf("images: export: %w", err)
	}
	if err := f.Close(); err != nil {
		return Image{}, fmt.Errorf("images: export: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return Image{}, fmt.Errorf("images: export: %w", err)
	}
	ok = true
	return img, nil
}

// manifestSize finds the size of img's manifest in the index.
func manifestSize(s *Store, img Image) int64 {
	entries, err := s.readIndex()
	if err != nil {
		return -1
	}
	for _, e := range entries {
		if e.Desc.Digest == img.Digest {
			return e.Desc.Size
		}
	}
	return -1
}

// archiveMember is a file of an export archive: bytes in memory, or a blob
// of the store.
type archiveMember struct {
	name string
	data []byte
	blob *v1.Descriptor
}

func (s *Store) writeArchive(w io.Writer, img Image, manifest []byte, format ExportFormat) error {
	name := img.Name
	tag := "latest"
	if name != "" && hasTag(name) {
		tag = name[strings.LastIndex(name, ":")+1:]
	}
	md := v1.Descriptor{
		MediaType: v1.MediaTypeImageManifest, Digest: img.Digest, Size: int64(len(manifest)),
		Platform: &v1.Platform{OS: "linux", Architecture: "amd64"},
	}
	if name != "" {
		// As docker save writes them: the full name for containerd and
		// docker, the tag for skopeo's oci-archive:FILE:TAG.
		md.Annotations = map[string]string{containerdImageName: name, v1.AnnotationRefName: tag}
	}
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{md}}
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	lb, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	members := []archiveMember{
		{name: v1.ImageLayoutFile, data: lb},
		{name: v1.ImageIndexFile, data: ib},
		{name: blobFile(img.Digest), data: manifest},
	}
	seen := map[digest.Digest]bool{img.Digest: true}
	for _, d := range append([]v1.Descriptor{img.Manifest.Config}, img.Manifest.Layers...) {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			members = append(members, archiveMember{name: blobFile(d.Digest), blob: &d})
		}
	}
	if format == FormatDocker {
		var tags []string
		if name != "" {
			t := name
			if !hasTag(t) {
				t += ":latest"
			}
			tags = []string{t}
		}
		var layers []string
		for _, l := range img.Manifest.Layers {
			layers = append(layers, blobFile(l.Digest))
		}
		dm, err := json.Marshal([]struct {
			Config   string
			RepoTags []string
			Layers   []string
		}{{Config: blobFile(img.Manifest.Config.Digest), RepoTags: tags, Layers: layers}})
		if err != nil {
			return err
		}
		members = append(members, archiveMember{name: "manifest.json", data: dm})
	}
	slices.SortFunc(members, func(a, b archiveMember) int { return strings.Compare(a.name, b.name) })

	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0).UTC()
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
	}
	for _, m := range members {
		size := int64(len(m.data))
		if m.blob != nil {
			size = m.blob.Size
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: size, Mode: 0o644, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		if m.blob == nil {
			if _, err := tw.Write(m.data); err != nil {
				return err
			}
			continue
		}
		if err := s.copyBlob(tw, *m.blob); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyBlob copies a stored blob to w and verifies its size and digest.
func (s *Store) copyBlob(w io.Writer, d v1.Descriptor) error {
	f, err := os.Open(s.blobPath(d.Digest))
	if err != nil {
		return fmt.Errorf("%w: blob %s is missing from the store", ErrNotFound, d.Digest)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(f, d.Size))
	if err != nil {
		return err
	}
	if got := digest.NewDigest(digest.SHA256, h); n != d.Size || got != d.Digest {
		return fmt.Errorf("%w: store: blob %s has %d bytes with digest %s", ErrInvalid, d.Digest, n, got)
	}
	return nil
}
