package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/safefs"
)

// OutMarker is the file reprobox writes first into every output directory it
// makes. Only a directory holding it is ever replaced: a record.json or
// report.json proves nothing, anyone can write one.
const OutMarker = ".reprobox-out"

const outMarkerText = "This directory was written by reprobox. The next run with the same --out replaces it.\n"

// partialPrefix names the sibling directories an output is assembled in
// before it is renamed into place.
func partialPrefix(out string) string { return "." + filepath.Base(filepath.Clean(out)) + ".partial-" }

// CheckOut checks, before anything is built, that out can receive an output:
// it does not exist, is an empty directory, or holds reprobox's marker. It
// also removes the partial outputs beside it that killed runs left. An
// unusable out is an ErrConfig naming it.
func CheckOut(out string) error {
	if err := cleanPartials(out); err != nil {
		return err
	}
	return checkOutDir(out)
}

// checkOutDir refuses to replace a directory reprobox did not write.
func checkOutDir(out string) error {
	st, err := os.Lstat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: output directory %s: %w", ErrConfig, out, err)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: output directory %s is a symbolic link; give the directory itself as --out", ErrConfig, out)
	case !st.IsDir():
		return fmt.Errorf("%w: output directory %s exists and is not a directory; choose another --out", ErrConfig, out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("%w: output directory %s: %w", ErrConfig, out, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if m, err := os.Lstat(filepath.Join(out, OutMarker)); err == nil && m.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%w: output directory %s exists and was not written by reprobox (it has no %s file); choose another --out, or empty or remove it yourself",
		ErrConfig, out, OutMarker)
}

// NewOutTemp makes the directory an output for out is assembled in: a hidden
// sibling of out, owned by this process (so that the next run removes it if
// this one is killed) and marked as reprobox's.
func NewOutTemp(out string) (string, error) {
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("runner: output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, partialPrefix(out))
	if err != nil {
		return "", fmt.Errorf("runner: output directory: %w", err)
	}
	// The owner first, then the marker: a partial output with a marker and
	// no owner is never a live run's.
	err = os.Chmod(tmp, 0o755)
	if err == nil {
		err = markOwned(tmp)
	}
	if err == nil {
		err = writeMarker(tmp)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("runner: output directory: %w", err)
	}
	return tmp, nil
}

func writeMarker(dir string) error {
	f, err := safefs.CreateFile(filepath.Join(dir, OutMarker), 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(outMarkerText)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// PublishDir renames the complete directory tmp (from NewOutTemp) to out,
// replacing out only when reprobox wrote it: the two are exchanged atomically
// (renameat2 RENAME_EXCHANGE) and the old output is removed after the new one
// is in place.
func PublishDir(tmp, out string) error {
	if err := checkOutDir(out); err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(tmp, OutMarker)); err != nil {
		if err := writeMarker(tmp); err != nil {
			return fmt.Errorf("runner: output directory: %w", err)
		}
	}
	if _, err := os.Lstat(out); err == nil {
		err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, out, unix.RENAME_EXCHANGE)
		if err == nil {
			// tmp now holds the old output: marked, without a live
			// owner, so a run killed right here leaves it to the next.
			os.Remove(filepath.Join(out, ownerFile))
			return os.RemoveAll(tmp)
		}
		if err != unix.EINVAL && err != unix.ENOSYS && err != unix.EOPNOTSUPP {
			return fmt.Errorf("runner: replace %s: %w", out, err)
		}
		// A file system without exchange: move the old one aside.
		old := tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("runner: replace %s: %w", out, err)
		}
		if err := os.Rename(tmp, out); err != nil {
			_ = os.Rename(old, out)
			return fmt.Errorf("runner: output directory: %w", err)
		}
		os.Remove(filepath.Join(out, ownerFile))
		return os.RemoveAll(old)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("runner: output directory: %w", err)
	}
	os.Remove(filepath.Join(out, ownerFile))
	return nil
}

// cleanPartials removes the partial outputs for out that killed runs left:
// marked directories named like NewOutTemp's whose owner is not running.
func cleanPartials(out string) error {
	parent := filepath.Dir(filepath.Clean(out))
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil // nothing to clean; checkOutDir reports a bad parent
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), partialPrefix(out)) || !e.Type().IsDir() {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if m, err := os.Lstat(filepath.Join(dir, OutMarker)); err != nil || !m.Mode().IsRegular() {
			continue // not ours, or a live run between its owner and its marker
		}
		if owner := readOwner(dir); owner != "" && ownerAlive(owner) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("runner: remove the partial output %s of a killed run: %w", dir, err)
		}
	}
	return nil
}

// readOwner reads dir's owner file without following a link, at most a line.
func readOwner(dir string) string {
	f, _, err := safefs.OpenFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 64))
	return strings.TrimSpace(string(b))
}

// ownerAlive reports whether the process an owner file names ("pid
// starttime") is still running.
func ownerAlive(owner string) bool {
	pid, _, _ := strings.Cut(owner, " ")
	n, err := strconv.Atoi(pid)
	return err == nil && processIdentity(n) == owner
}
