package images

// Push and Pull talk to OCI distribution registries through
// github.com/google/go-containerregistry (the library behind crane, ko and
// kaniko): its remote package speaks the distribution protocol, including
// token and basic auth, chunked uploads and retries; authn.DefaultKeychain
// reads docker's config.json ($DOCKER_CONFIG) and runs its credential
// helpers; name.Insecure and its loopback rule choose plain HTTP. We add
// only what a reproducibility tool needs on top: the stored manifest bytes
// are pushed as they are (so the digest stays), pulled manifests are capped
// in size, every pulled blob is checked against its digest, and a pulled
// image enters the store through Import, with the same validation as an
// imported archive.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrRegistry means a registry could not be reached, refused the request or
// the credentials, or answered outside the protocol. Errors wrapping it
// carry the registry's host and what to check.
var ErrRegistry = errors.New("registry error")

// DefaultMaxManifest is the largest manifest or index Pull accepts. Real
// image manifests are a few kilobytes.
const DefaultMaxManifest = 4 << 20

// RegistryOptions configures Push and Pull.
type RegistryOptions struct {
	// Insecure talks plain HTTP to the registry. Registries on localhost,
	// loopback addresses, private (RFC 1918) addresses and *.local use
	// plain HTTP anyway, as docker does.
	Insecure bool
	// MaxManifest bounds the manifests Pull reads, DefaultMaxManifest if
	// zero.
	MaxManifest int64
	// Name is the name Pull stores the image under; if empty, the name of
	// the reference as written (with its tag, without its digest).
	Name string
	// Progress receives human-readable progress lines; nil discards them.
	Progress io.Writer
}

func (o RegistryOptions) nameOptions() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o RegistryOptions) remoteOptions(ctx context.Context) []remote.Option {
	max := o.MaxManifest
	if max <= 0 {
		max = DefaultMaxManifest
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(manifestLimit{rt: remote.DefaultTransport, max: max}),
		remote.WithUserAgent("reprobox"),
	}
}

func (o RegistryOptions) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

// Push copies the stored image ref to the registry repository dest
// ("registry/repo" or "registry/repo:tag"). The manifest, config and layer
// blobs are sent byte for byte as stored, so the image keeps its digest;
// the registry is asked for the digest afterwards and must agree. Push
// returns the remote reference, dest's repository @ the digest.
func Push(ctx context.Context, s *Store, ref, dest string, opts RegistryOptions) (string, error) {
	img, err := s.Resolve(ref)
	if err != nil {
		return "", err
	}
	if strings.Contains(dest, "@") {
		return "", fmt.Errorf("%w: push: destination %q: want registry/repository[:tag], without a digest", ErrInvalid, dest)
	}
	dref, err := name.ParseReference(dest, opts.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("%w: push: destination %q: %v", ErrInvalid, dest, err)
	}
	repo := dref.Context()
	var target name.Reference = repo.Digest(img.Digest.String())
	if t, ok := dref.(name.Tag); ok && hasTag(dest) {
		target = t
	}
	h, err := ggcrv1.NewHash(img.Digest.String())
	if err != nil {
		return "", fmt.Errorf("images: push: %w", err)
	}
	// The store is an OCI layout: go-containerregistry reads the blobs of
	// that manifest from it and pushes them unchanged.
	lp, err := layout.FromPath(s.ociDir())
	if err != nil {
		return "", fmt.Errorf("images: push: %w", err)
	}
	limg, err := lp.Image(h)
	if err != nil {
		return "", fmt.Errorf("images: push %s: %w", img.Reference(), err)
	}
	fmt.Fprintf(opts.progress(), "pushing %s (%d layers, %d bytes) to %s\n", img.Reference(), len(img.Manifest.Layers), img.Size, target)
	ropts := opts.remoteOptions(ctx)
	if err := remote.Write(target, limg, ropts...); err != nil {
		return "", registryError(ctx, "push", target, err)
	}
	got, err := remote.Head(repo.Digest(img.Digest.String()), ropts...)
	if err != nil {
		return "", registryError(ctx, "push: check", target, err)
	}
	if got.Digest.String() != img.Digest.String() {
		return "", fmt.Errorf("%w: push %s: the registry stored digest %s, not %s", ErrRegistry, target, got.Digest, img.Digest)
	}
	out := repo.Name() + "@" + img.Digest.String()
	fmt.Fprintf(opts.progress(), "pushed %s\n", out)
	return out, nil
}

// Pull fetches the linux/amd64 image ref ("registry/repo@sha256:…" or
// "registry/repo:tag", which is resolved to a digest) and stores it. The
// manifest must be at most opts.MaxManifest bytes and match the digest
// asked for; every blob is checked against its digest while it is
// downloaded into a private OCI layout in the store's tmp directory, which
// is then imported with Import (the same checks as `image import`). Nothing
// is stored unless every blob is good. The returned image's Digest is the
// manifest digest; for a tag naming a multi-platform index it is the
// digest of the linux/amd64 manifest.
func Pull(ctx context.Context, s *Store, ref string, opts RegistryOptions) (Image, error) {
	local, err := ParseReference(ref)
	if err != nil {
		return Image{}, fmt.Errorf("images: pull: %w", err)
	}
	if local.Name == "" {
		return Image{}, fmt.Errorf("%w: pull: %q: want registry/repository@sha256:… or registry/repository:tag", ErrInvalid, ref)
	}
	rref, err := name.ParseReference(ref, opts.nameOptions()...)
	if err != nil {
		return Image{}, fmt.Errorf("%w: pull: %q: %v", ErrInvalid, ref, err)
	}
	if local.Pinned() && hasTag(local.Name) {
		// name:tag@digest: the digest decides, as everywhere in reprobox.
		rref = rref.Context().Digest(local.Digest.String())
	}
	storeName := opts.Name
	if storeName == "" {
		storeName = local.Name
	}
	if storeName, err = parseName(storeName); err != nil {
		return Image{}, fmt.Errorf("images: pull: %w", err)
	}
	ropts := opts.remoteOptions(ctx)
	desc, err := remote.Get(rref, ropts...)
	if err != nil {
		return Image{}, registryError(ctx, "pull", rref, err)
	}
	if local.Pinned() && desc.Digest.String() != local.Digest.String() {
		return Image{}, fmt.Errorf("%w: pull %s: the registry served manifest %s", ErrInvalid, rref, desc.Digest)
	}
	var rimg ggcrv1.Image
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		rimg, err = desc.Image() // picks linux/amd64
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		rimg, err = desc.Image()
	default:
		return Image{}, fmt.Errorf("%w: pull %s: media type %q is not an image manifest or index", ErrInvalid, rref, desc.MediaType)
	}
	if err != nil {
		return Image{}, registryError(ctx, "pull", rref, err)
	}
	if !local.Pinned() {
		d, err := rimg.Digest()
		if err != nil {
			return Image{}, registryError(ctx, "pull", rref, err)
		}
		fmt.Fprintf(opts.progress(), "%s resolves to %s\n", ref, d)
	}
	dir, err := os.MkdirTemp(s.tmpDir(), "pull-")
	if err != nil {
		return Image{}, fmt.Errorf("images: pull: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writePulledLayout(ctx, dir, rref, rimg, ropts, opts.progress()); err != nil {
		return Image{}, err
	}
	imgs, err := s.Import(ctx, dir, storeName)
	if err != nil {
		return Image{}, fmt.Errorf("images: pull %s: %w", rref, err)
	}
	if d, err := rimg.Digest(); err == nil && d.String() != imgs[0].Digest.String() {
		fmt.Fprintf(opts.progress(), "%s is a Docker manifest; stored converted to OCI as %s\n", d, imgs[0].Digest)
	}
	return imgs[0], nil
}

// writePulledLayout downloads img into a one-image OCI layout at dir,
// verifying every blob.
func writePulledLayout(ctx context.Context, dir string, ref name.Reference, img ggcrv1.Image, ropts []remote.Option, progress io.Writer) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
		return fmt.Errorf("images: pull: %w", err)
	}
	mb, err := img.RawManifest()
	if err != nil {
		return registryError(ctx, "pull", ref, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return registryError(ctx, "pull", ref, err)
	}
	var m struct {
		Config v1.Descriptor   `json:"config"`
		Layers []v1.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return fmt.Errorf("%w: pull %s: manifest: %v", ErrInvalid, ref, err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := checkDescriptor(d); err != nil {
			return fmt.Errorf("images: pull %s: %w", ref, err)
		}
	}
	blob := func(d v1.Descriptor) error {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		l, err := remote.Layer(ref.Context().Digest(d.Digest.String()), ropts...)
		if err != nil {
			return registryError(ctx, "pull", ref, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return registryError(ctx, "pull: blob "+d.Digest.String(), ref, err)
		}
		defer rc.Close()
		fmt.Fprintf(progress, "fetching %s (%d bytes)\n", d.Digest, d.Size)
		return writeVerified(ctx, filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded()), rc, d, ref)
	}
	if err := blob(m.Config); err != nil {
		return err
	}
	for _, l := range m.Layers {
		if err := blob(l); err != nil {
			return err
		}
	}
	md := digest.FromBytes(mb)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", md.Encoded()), mb, 0o600); err != nil {
		return fmt.Errorf("images: pull: %w", err)
	}
	idx := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{{MediaType: string(mt), Digest: md, Size: int64(len(mb))}},
	}
	ib, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, v1.ImageIndexFile), ib, 0o600); err != nil {
		return fmt.Errorf("images: pull: %w", err)
	}
	lb, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), lb, 0o600); err != nil {
		return fmt.Errorf("images: pull: %w", err)
	}
	return nil
}

// writeVerified copies r to path and checks its size and sha256 against d.
// go-containerregistry verifies too; measuring here names the blob and the
// digest it really had.
func writeVerified(ctx context.Context, path string, r io.Reader, d v1.Descriptor, ref name.Reference) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("images: pull: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, cerr := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, d.Size+1))
	got := digest.NewDigest(digest.SHA256, h)
	switch {
	case n > d.Size:
		return fmt.Errorf("%w: pull %s: blob %s: the registry sent more than its %d bytes", ErrInvalid, ref, d.Digest, d.Size)
	case n == d.Size && got != d.Digest:
		return fmt.Errorf("%w: pull %s: blob %s: the registry sent content with digest %s; nothing was stored", ErrInvalid, ref, d.Digest, got)
	case cerr != nil:
		return registryError(ctx, "pull: blob "+d.Digest.String(), ref, cerr)
	case n != d.Size:
		return fmt.Errorf("%w: pull %s: blob %s: the registry sent %d bytes, want %d", ErrInvalid, ref, d.Digest, n, d.Size)
	}
	return f.Close()
}

// registryError turns a go-containerregistry error into one that says what
// went wrong and what to check.
func registryError(ctx context.Context, op string, ref name.Reference, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("images: %s %s: %w", op, ref, context.Cause(ctx))
	}
	host := ref.Context().RegistryStr()
	var tooLarge *manifestTooLargeError
	if errors.As(err, &tooLarge) {
		return fmt.Errorf("%w: %s %s: %v", ErrInvalid, op, ref, tooLarge)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %s %s: %s refused the credentials (HTTP %d); log in with `docker login %s` or check the auths and credHelpers of $DOCKER_CONFIG/config.json (default ~/.docker/config.json)",
				ErrRegistry, op, ref, host, te.StatusCode, host)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return fmt.Errorf("images: %s %s: %w: %s has no such manifest or repository (HTTP %d)", op, ref, ErrNotFound, host, te.StatusCode)
		}
		return fmt.Errorf("%w: %s %s: %v", ErrRegistry, op, ref, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return fmt.Errorf("%w: %s %s: cannot reach %s (%v); check the address, or pass --insecure for a registry that speaks plain HTTP", ErrRegistry, op, ref, host, err)
	}
	return fmt.Errorf("%w: %s %s: %v", ErrRegistry, op, ref, err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// manifestTooLargeError is a manifest response over the limit.
type manifestTooLargeError struct {
	url string
	max int64
}

func (e *manifestTooLargeError) Error() string {
	return fmt.Sprintf("manifest %s is larger than %d bytes; refused", e.url, e.max)
}

// manifestLimit is a RoundTripper that refuses manifest responses larger
// than max, by their Content-Length or by what they send.
type manifestLimit struct {
	rt  http.RoundTripper
	max int64
}

func (m manifestLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.rt.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, err
	}
	if resp.ContentLength > m.max {
		resp.Body.Close()
		return nil, &manifestTooLargeError{url: req.URL.Redacted(), max: m.max}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: m.max, err: &manifestTooLargeError{url: req.URL.Redacted(), max: m.max}}
	return resp, nil
}

// limitedBody fails with err once more than left bytes were read.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, l.err
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

// WhereFrom says how an image missing from the store could be had: pulled
// from a registry, imported from an archive, or rebuilt from its lock.
func WhereFrom(r Reference) string {
	pull := "reprobox image pull REGISTRY/REPOSITORY@" + r.Digest.String()
	if r.Name != "" && strings.Contains(r.Name, "/") && strings.ContainsAny(r.Name[:strings.Index(r.Name, "/")], ".:") {
		// The name starts with a registry host.
		pull = "reprobox image pull " + r.String()
	}
	if !r.Pinned() {
		return "build it with `reprobox image build`, import it with `reprobox image import FILE`, or pull it with `reprobox image pull REGISTRY/REPOSITORY:TAG`"
	}
	return fmt.Sprintf("pull it from a registry it was pushed to (`%s`), import an archive made by `reprobox image export` (`reprobox image import FILE`), or rebuild it from the lock written when it was built (`reprobox image build --lock FILE`, which must give %s)", pull, r.Digest)
}
