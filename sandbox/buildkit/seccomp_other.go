//go:build !seccomp || !cgo

package buildkit

import specs "github.com/opencontainers/runtime-spec/specs-go"

// compileSeccomp needs libseccomp: reprobox built without the seccomp tag
// cannot give a BuildKit job its profile.
func compileSeccomp(sc *specs.LinuxSeccomp) ([]byte, uint, error) {
	if sc == nil {
		return nil, 0, nil
	}
	return nil, 0, unsupported("a seccomp profile: reprobox was built without the seccomp tag (libseccomp)")
}
