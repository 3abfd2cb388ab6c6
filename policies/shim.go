package policies

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// timeShimSource is the C source of the time shim.
//
//go:embed shim/time.c
var timeShimSource []byte

// BuildTimeShim compiles the time shim with the host's C compiler into dir,
// once per source version, and returns its path. The shim is what freezes a
// build's clock; without a C compiler it returns an error that says so.
func BuildTimeShim(dir string) (string, error) {
	sum := sha256.Sum256(timeShimSource)
	out := filepath.Join(dir, "time-"+hex.EncodeToString(sum[:8])+".so")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", fmt.Errorf("policies: reprobox compiles its time shim, which freezes the build clock, with the host's C compiler once: install one (apt-get install gcc): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".shim-")
	if err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "time.c")
	if err := os.WriteFile(src, timeShimSource, 0o644); err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	so := filepath.Join(tmp, "time.so")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", so, src, "-ldl")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("policies: compile the time shim: %v: %s", err, msg)
	}
	if err := os.Rename(so, out); err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	return out, nil
}
