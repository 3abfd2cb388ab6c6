package images

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
)

// validateLayers walks the staged layers of an image being imported, in
// order, through the unpacker that Rootfs uses, with a memTree in place of
// the root directory: one set of rules, checked at import, and nothing
// written. A hostile layer (see Rootfs), a layer beyond the Limits, or one
// whose uncompressed digest is not the config's diff_id is refused here, so
// that it never enters the store. Rootfs checks again when it unpacks: the
// store is not trusted on re-read.
func (s *Store) validateLayers(ctx context.Context, f foundImage, staged map[digest.Digest]string) error {
	if len(f.config.RootFS.DiffIDs) != len(f.manifest.Layers) {
		return fmt.Errorf("%w: image %s: %d diff_ids for %d layers", ErrInvalid, f.digest, len(f.config.RootFS.DiffIDs), len(f.manifest.Layers))
	}
	u := &unpacker{fs: newMemTree(), limits: s.limits, rootMode: 0o755}
	for i, l := range f.manifest.Layers {
		if err := s.validateLayer(ctx, u, staged[l.Digest], i, f); err != nil {
			return err
		}
	}
	return u.finishRoot()
}

func (s *Store) validateLayer(ctx context.Context, u *unpacker, path string, i int, f foundImage) error {
	l := f.manifest.Layers[i]
	if path == "" {
		return fmt.Errorf("images: validate layer %s: not staged", l.Digest)
	}
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("images: validate layer %s: %w", l.Digest, err)
	}
	defer fh.Close()
	return applyLayerFile(ctx, u, fh, l, f.config.RootFS.DiffIDs[i])
}
