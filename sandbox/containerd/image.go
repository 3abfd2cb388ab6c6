package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobox/reprobox/sandbox"
)

// imageOnce makes concurrent jobs of one image wait for a single import.
type imageOnce struct {
	mu      sync.Mutex
	chainID string
}

// imageName is the name of an imported image in the daemon's image store.
func imageName(d digest.Digest) string { return "reprobox.invalid/image@" + d.String() }

// maxManifest bounds the manifest read from the layout.
const maxManifest = 4 << 20

// ensureImage makes img present and unpacked in the daemon and returns the
// chain ID of its root filesystem (the parent of each job's root snapshot).
// An image already unpacked is not read again.
func (b *Backend) ensureImage(ctx context.Context, img sandbox.Image) (string, error) {
	d, err := digest.Parse(img.Digest)
	if err != nil {
		return "", fmt.Errorf("image digest %q: %w", img.Digest, err)
	}
	b.imageMu.Lock()
	o := b.images[d.String()]
	if o == nil {
		o = &imageOnce{}
		b.images[d.String()] = o
	}
	b.imageMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.chainID != "" {
		return o.chainID, nil
	}

	is := b.client.ImageService()
	if rec, err := is.Get(ctx, imageName(d)); err == nil {
		ci := client.NewImage(b.client, rec)
		if ok, err := ci.IsUnpacked(ctx, b.snapshotter); err == nil && ok {
			chain, err := chainID(ctx, ci)
			if err != nil {
				return "", err
			}
			o.chainID = chain
			return chain, nil
		}
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("image %s: %w", d, err)
	}
	if img.Layout == "" {
		return "", fmt.Errorf("image %s is not in containerd and the job names no OCI layout to import it from", d)
	}
	b.log.Debug("importing image", "digest", d, "layout", img.Layout)
	ctx, done, err := b.client.WithLease(ctx)
	if err != nil {
		return "", fmt.Errorf("lease: %w", err)
	}
	defer done(context.WithoutCancel(ctx))
	target, err := b.importLayout(ctx, img.Layout, d)
	if err != nil {
		return "", fmt.Errorf("import image %s from %s: %w", d, img.Layout, err)
	}
	rec := images.Image{Name: imageName(d), Target: target, Labels: map[string]string{LabelImage: d.String()}}
	if _, err := is.Create(ctx, rec); err != nil && !errdefs.IsAlreadyExists(err) {
		return "", fmt.Errorf("image %s: %w", d, err)
	}
	ci := client.NewImage(b.client, rec)
	if err := ci.Unpack(ctx, b.snapshotter); err != nil {
		return "", fmt.Errorf("unpack image %s into %s: %w", d, b.snapshotter, err)
	}
	chain, err := chainID(ctx, ci)
	if err != nil {
		return "", err
	}
	o.chainID = chain
	return chain, nil
}

func chainID(ctx context.Context, ci client.Image) (string, error) {
	diffIDs, err := ci.RootFS(ctx)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ci.Target().Digest, err)
	}
	return identity.ChainID(diffIDs).String(), nil
}

// importLayout writes the manifest d, its config and its layers from the OCI
// layout dir into the content store (each blob verified against its digest
// by the store) and returns the manifest's descriptor. Blobs already there
// are not sent again.
func (b *Backend) importLayout(ctx context.Context, dir string, d digest.Digest) (ocispec.Descriptor, error) {
	mb, err := readBlob(dir, d, maxManifest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != images.MediaTypeDockerSchema2Manifest {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s has media type %q, not an image manifest", d, m.MediaType)
	}
	mt := m.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	cs := b.client.ContentStore()
	for _, desc := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if err := writeBlob(ctx, cs, dir, desc, nil); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	target := ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(mb))}
	// The manifest's GC labels keep its config and layers.
	labels := map[string]string{"containerd.io/gc.ref.content.config": m.Config.Digest.String()}
	for i, l := range m.Layers {
		labels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = l.Digest.String()
	}
	if err := writeBlob(ctx, cs, dir, target, labels); err != nil {
		return ocispec.Descriptor{}, err
	}
	return target, nil
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func readBlob(dir string, d digest.Digest, max int64) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(blobPath(dir, d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d, max)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s has digest %s", d, got)
	}
	return b, nil
}

func writeBlob(ctx context.Context, cs content.Store, dir string, desc ocispec.Descriptor, labels map[string]string) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %q: %w", desc.Digest, err)
	}
	if info, err := cs.Info(ctx, desc.Digest); err == nil {
		if len(labels) > 0 {
			info.Labels = labels
			var fields []string
			for k := range labels {
				fields = append(fields, "labels."+k)
			}
			if _, err := cs.Update(ctx, info, fields...); err != nil {
				return fmt.Errorf("label blob %s: %w", desc.Digest, err)
			}
		}
		return nil
	}
	f, err := os.Open(blobPath(dir, desc.Digest))
	if err != nil {
		return err
	}
	defer f.Close()
	var opts []content.Opt
	if len(labels) > 0 {
		opts = append(opts, content.WithLabels(labels))
	}
	// The store checks the size and digest before it commits the blob.
	if err := content.WriteBlob(ctx, cs, "reprobox-"+desc.Digest.String(), f, desc, opts...); err != nil {
		return fmt.Errorf("write blob %s: %w", desc.Digest, err)
	}
	return nil
}
