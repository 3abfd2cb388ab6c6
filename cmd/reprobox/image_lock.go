package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/images"
)

const lockHelp = `Every build writes a lock, DATA_DIR/image-locks/<digest hex>.json (and into the
image config as the label ` + images.LabelLock + `, so it travels with the image;
image inspect --lock prints it): the suites, mirrors, SOURCE_DATE_EPOCH, the exact
version and sha256 of every .deb installed, the mmdebstrap version and arguments
and reprobox's version. --write-lock FILE writes a copy to FILE.

--lock FILE rebuilds the image a lock records: the same packages at the same
versions (apt preferences pin every one), the same options, and it must give the
lock's digest (exit status 1 if it does not). The packages are fetched from the
lock's mirrors, or from --mirror and --security-mirror when given (a snapshot of
the archive, when the mirror has dropped a version), while the image records the
lock's. A package that cannot be had at its locked version is named, with the
mirrors it was looked for in, and nothing is stored. --minimal installs only the
--package packages on top of minbase (no Rust toolchain, no locales).`

// lockFlags are the lock options of image build.
type lockFlags struct {
	lockFile  string
	writeLock string
	minimal   bool
	changed   func(string) bool
}

func (l *lockFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&l.lockFile, "lock", "", "rebuild the image this lock file records")
	fl.StringVar(&l.writeLock, "write-lock", "", "also write the new image's lock to this file")
	fl.BoolVar(&l.minimal, "minimal", false, "install only the --package packages on minbase (no toolchain, no locales)")
	l.changed = func(name string) bool { return fl.Changed(name) }
}

// apply sets the lock options of a build.
func (l *lockFlags) apply(bo *images.BuildOptions) error {
	bo.Minimal = l.minimal
	if l.lockFile == "" {
		return nil
	}
	for _, f := range []string{"package", "minimal", "source-date-epoch"} {
		if l.changed(f) {
			return usageErrorf("--%s cannot be combined with --lock: the lock sets it", f)
		}
	}
	lock, err := images.ReadLock(l.lockFile)
	if err != nil {
		return err
	}
	bo.Lock = &lock
	bo.Packages, bo.SourceDateEpoch = nil, 0
	if !l.changed("name") {
		bo.Name = ""
	}
	if !l.changed("mirror") {
		bo.Mirror = ""
	}
	if !l.changed("security-mirror") {
		bo.SecurityMirror = ""
	}
	return nil
}

// finish prints the reference of a build and copies its lock; a build from a
// lock that gave another digest exits with status 1.
func (l *lockFlags) finish(stdout io.Writer, s *images.Store, img images.Image, err error) error {
	if err != nil && !errors.Is(err, images.ErrLockDigest) {
		return err
	}
	if _, perr := fmt.Fprintln(stdout, img.Reference()); perr != nil {
		return perr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reprobox:", err)
		return &exitError{code: exitUnreproducible}
	}
	if l.writeLock != "" {
		b, err := os.ReadFile(s.LockPath(img.Digest))
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.writeLock, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func runImageInspectLock(stdout io.Writer, dir, ref string) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	img, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	lock, ok, err := images.LockOf(img)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s has no lock: only images made by reprobox image build carry one", images.ErrNotFound, img.Reference())
	}
	_, err = stdout.Write(lock.Marshal())
	return err
}

// writeLockSummary adds the lock's summary to image inspect's output.
func writeLockSummary(w io.Writer, img images.Image) error {
	lock, ok, err := images.LockOf(img)
	if err != nil || !ok {
		return err
	}
	fmt.Fprintf(w, "Lock:      %d packages from %s (%s), mmdebstrap %s, reprobox %s\n",
		len(lock.Packages), strings.Join(lock.Suites, ", "), lock.Mirror, lock.Mmdebstrap.Version, lock.Reprobox)
	if tc := lock.Toolchain(); len(tc) > 0 {
		fmt.Fprintln(w, "Toolchain:")
		for _, p := range tc {
			fmt.Fprintf(w, "  %s %s\n", p.Name, p.Version)
		}
	}
	return nil
}
