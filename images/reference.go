package images

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Reference names an image: a name, a digest, or both.
type Reference struct {
	// Name is the image name as written, including any ":tag", such as
	// "reprobox/rust" or "docker.io/library/debian:bookworm". It is "" for a
	// bare digest.
	Name string
	// Digest is the digest of the image manifest, "" when unpinned.
	Digest digest.Digest
}

// Pinned reports whether r names a manifest digest.
func (r Reference) Pinned() bool { return r.Digest != "" }

// String returns "name@sha256:…", or the part that is set.
func (r Reference) String() string {
	switch {
	case r.Digest == "":
		return r.Name
	case r.Name == "":
		return r.Digest.String()
	}
	return r.Name + "@" + r.Digest.String()
}

// The grammar of github.com/distribution/reference, restricted to sha256
// digests in lowercase hex.
const (
	alnum        = `[a-z0-9]+`
	separator    = `(?:[._]|__|[-]+)`
	pathComp     = alnum + `(?:` + separator + alnum + `)*`
	domainComp   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domain       = domainComp + `(?:\.` + domainComp + `)*(?::[0-9]+)?`
	namePattern  = `(?:` + domain + `/)?` + pathComp + `(?:/` + pathComp + `)*`
	tagPattern   = `[\w][\w.-]{0,127}`
	sha256Hex    = `[a-f0-9]{64}`
	maxNameBytes = 255
)

var (
	referenceRE = regexp.MustCompile(`^(` + namePattern + `)(?::(` + tagPattern + `))?(?:@sha256:(` + sha256Hex + `))?$`)
	digestRE    = regexp.MustCompile(`^sha256:` + sha256Hex + `$`)
)

// ParseReference parses "name", "name:tag", "name@sha256:<hex>",
// "name:tag@sha256:<hex>" or a bare "sha256:<hex>". Only sha256 digests in
// lowercase hex are accepted. Errors wrap ErrInvalid.
func ParseReference(s string) (Reference, error) {
	if strings.HasPrefix(s, "sha256:") {
		if !digestRE.MatchString(s) {
			return Reference{}, fmt.Errorf("%w: reference %q: a digest is sha256: and 64 lowercase hex digits", ErrInvalid, s)
		}
		return Reference{Digest: digest.Digest(s)}, nil
	}
	m := referenceRE.FindStringSubmatch(s)
	if m == nil {
		return Reference{}, fmt.Errorf("%w: reference %q: want name, name:tag, name@sha256:<hex> or sha256:<hex>", ErrInvalid, s)
	}
	if len(m[1]) > maxNameBytes {
		return Reference{}, fmt.Errorf("%w: reference %q: name longer than %d bytes", ErrInvalid, s, maxNameBytes)
	}
	r := Reference{Name: m[1]}
	if m[2] != "" {
		r.Name += ":" + m[2]
	}
	if m[3] != "" {
		r.Digest = digest.NewDigestFromEncoded(digest.SHA256, m[3])
	}
	return r, nil
}

// parseName parses an image name that must not carry a digest.
func parseName(s string) (string, error) {
	r, err := ParseReference(s)
	if err != nil {
		return "", err
	}
	if r.Pinned() || r.Name == "" {
		return "", fmt.Errorf("%w: image name %q: want a name without a digest", ErrInvalid, s)
	}
	return r.Name, nil
}
