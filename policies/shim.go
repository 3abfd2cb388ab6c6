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

// fileTimeSource is the C source of the file-time shim.
//
//go:embed shim/filetime.c
var fileTimeSource []byte

// BuildFileTimeShim compiles the file-time shim with the host's C compiler
// into dir, once per source version, and returns its path. Without a compiler
// it returns an error; builds then run with libfaketime's clock only.
func BuildFileTimeShim(dir string) (string, error) {
	sum := sha256.Sum256(fileTimeSource)
	out := filepath.Join(dir, "filetime-"+hex.EncodeToString(sum[:8])+".so")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", fmt.Errorf("policies: the file-time shim needs a C compiler (apt-get install gcc): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".shim-")
	if err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "filetime.c")
	if err := os.WriteFile(src, fileTimeSource, 0o644); err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	so := filepath.Join(tmp, "filetime.so")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", so, src, "-ldl")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("policies: compile the file-time shim: %v: %s", err, msg)
	}
	if err := os.Rename(so, out); err != nil {
		return "", fmt.Errorf("policies: %w", err)
	}
	return out, nil
}
