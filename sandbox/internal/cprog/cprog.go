// Package cprog compiles the small static C programs a sandbox backend puts
// into a container (an entry program that runs before the build), with the
// host's C compiler, once per source version.
package cprog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNoCompiler is returned (wrapped) when the host has no C compiler or no
// static C library.
var ErrNoCompiler = errors.New("no C compiler with a static C library (apt-get install gcc libc6-dev)")

// Build compiles src, static, into dir/<name>-<hash of src> unless that file
// is already there, and returns its path. Concurrent builds of one source
// (in several processes) are safe: each compiles apart and renames.
func Build(dir, name string, src []byte) (string, error) {
	sum := sha256.Sum256(src)
	out := filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", fmt.Errorf("compile %s: %w: %v", name, ErrNoCompiler, err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	c := filepath.Join(tmp, name+".c")
	if err := os.WriteFile(c, src, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(tmp, name)
	if msg, err := exec.Command(cc, "-static", "-O2", "-Wall", "-o", bin, c).CombinedOutput(); err != nil {
		return "", fmt.Errorf("compile %s: %w: %v: %s", name, ErrNoCompiler, err, msg)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(bin, out); err != nil {
		return "", err
	}
	return out, nil
}
