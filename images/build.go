package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Defaults of BuildOptions.
const (
	DefaultName            = "reprobox/rust"
	DefaultSourceDateEpoch = 1700000000 // 2023-11-14T22:13:20Z
	DefaultMirror          = "http://deb.debian.org/debian"
	DefaultSecurityMirror  = "http://deb.debian.org/debian-security"
)

// Suite is the Debian release the default image is built from; its -updates
// and -security suites are used as well.
const Suite = "bookworm"

// BasePackages are installed in every built image, on top of Debian's
// minbase variant.
var BasePackages = []string{"rustc-web", "cargo-web", "gcc", "libc6-dev", "tzdata", "locales"}

// Locales are generated in every built image. C.UTF-8 is the default; the
// locale factor's perturbation uses the others, one per class of locale bug
// (policies/factor_locale.go): fr_FR for messages and numbers (a decimal
// comma), tr_TR for case mapping (i upper-cases to İ) and et_EE for collation
// (z sorts between s and t).
var Locales = []string{"C.UTF-8", "et_EE.UTF-8", "fr_FR.UTF-8", "tr_TR.UTF-8"}

// Labels that Build records in the image config.
const (
	LabelBuilder         = "io.reprobox.image.builder"
	LabelPackages        = "io.reprobox.image.packages"
	LabelInstalled       = "io.reprobox.image.installed"
	LabelSuites          = "io.reprobox.image.suites"
	LabelMirror          = "io.reprobox.image.mirror"
	LabelSecurityMirror  = "io.reprobox.image.security-mirror"
	LabelSourceDateEpoch = "io.reprobox.image.source-date-epoch"
	LabelLocales         = "io.reprobox.image.locales"
)

// BuildOptions configures Build. The zero value builds the default image.
type BuildOptions struct {
	// Name is the name to store the image under, DefaultName if empty.
	Name string
	// Packages are Debian packages to install on top of BasePackages, as
	// NAME or NAME=VERSION.
	Packages []string
	// SourceDateEpoch clamps every timestamp in the image, and is the
	// image's creation time. DefaultSourceDateEpoch if zero.
	SourceDateEpoch int64
	// Mirror and SecurityMirror are the Debian archive URLs,
	// DefaultMirror and DefaultSecurityMirror if empty.
	Mirror, SecurityMirror string
	// Minimal installs only Packages on top of minbase: no BasePackages
	// and no locales.
	Minimal bool
	// Lock, if set, rebuilds the image it records: its packages at their
	// locked versions (apt pins them), its SOURCE_DATE_EPOCH and options.
	// The image records the lock's mirrors; Mirror and SecurityMirror, if
	// set, are where the packages are fetched from instead (a snapshot of
	// the archive). Name and Progress still apply; Packages and Minimal
	// must be unset.
	Lock *Lock
	// Progress receives human-readable progress lines; nil discards them.
	Progress io.Writer
}

var (
	packageRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$`)
	shellSafeRE = regexp.MustCompile(`^[A-Za-z0-9_./,=:+-]+$`)
	mirrorRE    = regexp.MustCompile(`^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~%/+-]*)?$`)
)

// Build makes an image from Debian packages with mmdebstrap (root mode,
// minbase variant, suites bookworm, bookworm-updates and bookworm-security)
// and stores it under opts.Name. It must run as root.
//
// The result is reproducible: the same options and the same archive
// contents give the same manifest digest. mmdebstrap packs its tarball
// sorted by name with every mtime clamped to SOURCE_DATE_EPOCH and removes
// logs, apt lists and caches, /var/cache/ldconfig/aux-cache and the
// machine-id; a customize hook also removes the host's /etc/resolv.conf and
// writes a fixed /etc/hostname. Build then rewrites the tarball in Go with
// device nodes dropped (the runtime provides /dev), access and change times
// and owner names dropped and mtimes truncated to seconds, compresses it
// with compress/gzip (no name or time in the header), and dates the config
// and its history at SOURCE_DATE_EPOCH. The compressed bytes depend on the
// Go release's compress/flate, so the digest is reproducible for a given
// reprobox binary and archive state; the diff_id depends only on the
// archive. The config labels record the builder, the requested and
// installed packages (with versions), the suites, the mirrors, the locales
// and SOURCE_DATE_EPOCH.
func Build(ctx context.Context, s *Store, opts BuildOptions) (Image, error) {
	fetch, err := opts.fromLock()
	if err != nil {
		return Image{}, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return Image{}, err
	}
	if fetch.Mirror == "" {
		fetch.Mirror, fetch.SecurityMirror = o.Mirror, o.SecurityMirror
	}
	if os.Geteuid() != 0 {
		return Image{}, errors.New("images: build: mmdebstrap --mode=root needs root")
	}
	var progress io.Writer = io.Discard
	if o.Progress != nil {
		// mmdebstrap's output is copied by another goroutine than the one
		// that reports the layer's progress.
		progress = &lockedWriter{w: o.Progress}
	}
	pkgs := slices.Concat(BasePackages, o.Packages)
	if o.Minimal || o.Lock != nil {
		pkgs = slices.Clone(o.Packages)
	}
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)

	version, err := mmdebstrapVersion(ctx)
	if err != nil {
		return Image{}, err
	}
	if o.Lock != nil && o.Lock.Mmdebstrap.Version != version {
		fmt.Fprintf(progress, "warning: the lock was made with mmdebstrap %s, this is %s\n", o.Lock.Mmdebstrap.Version, version)
	}
	args := mmdebstrapArgs(o, pkgs)
	runArgs, cleanup, err := s.lockArgs(args, o, fetch)
	if err != nil {
		return Image{}, err
	}
	defer cleanup()
	cmd := exec.CommandContext(ctx, "mmdebstrap", runArgs...)
	cmd.Env = append(cleanEnv(os.Environ()),
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(o.SourceDateEpoch, 10),
		"LC_ALL=C.UTF-8", "TZ=UTC")
	// mmdebstrap cleans up its mounts and chroot on SIGTERM; SIGKILL would
	// leave them behind. It waits for the running apt or dpkg to end first:
	// its own process group lets the SIGTERM reach them too (and keeps a
	// terminal's Ctrl-C from reaching them before reprobox decides).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Image{}, fmt.Errorf("images: build: %w", err)
	}
	tail := &lineTail{w: progress, max: 30}
	cmd.Stderr = tail
	fmt.Fprintf(progress, "running mmdebstrap (%s) for %s: %s\n", version, o.Name, strings.Join(pkgs, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Image{}, fmt.Errorf("images: build: start mmdebstrap: %w", err)
	}
	layer, lerr := s.writeBuildLayer(stdout, o.SourceDateEpoch, progress)
	if lerr != nil {
		// Let mmdebstrap see a closed pipe rather than block on it.
		io.Copy(io.Discard, stdout)
	}
	werr := cmd.Wait()
	tail.flush()
	if werr != nil && ctx.Err() != nil {
		// Whatever of the group outlived mmdebstrap.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if werr != nil {
		if layer.blob.path != "" {
			os.Remove(layer.blob.path)
		}
		if ctx.Err() != nil {
			return Image{}, fmt.Errorf("images: build: %w", context.Cause(ctx))
		}
		return Image{}, fmt.Errorf("images: build: mmdebstrap: %w; last output:\n%s", werr, tail.String())
	}
	if lerr != nil {
		return Image{}, lerr
	}
	fmt.Fprintf(progress, "layer %s: %d bytes compressed, %d uncompressed, %d packages, %s\n",
		layer.desc.Digest, layer.desc.Size, layer.rawSize, len(layer.installed), time.Since(start).Round(time.Second))
	debs, err := lockedPackages(layer.installed, tail.debs)
	if err != nil {
		os.Remove(layer.blob.path)
		return Image{}, err
	}
	if o.Lock != nil {
		if err := checkAgainstLock(*o.Lock, debs, fetch.Mirror, fetch.SecurityMirror); err != nil {
			os.Remove(layer.blob.path)
			return Image{}, err
		}
	}
	locales := Locales
	if o.Minimal {
		locales = []string{}
	}
	lock := Lock{
		LockVersion: LockVersion, Locales: locales, Minimal: o.Minimal,
		Mirror: o.Mirror, SecurityMirror: o.SecurityMirror,
		Mmdebstrap: LockTool{Version: version, Args: args},
		Packages:   debs, Reprobox: Version(), Requested: pkgs,
		SourceDateEpoch: o.SourceDateEpoch, Suites: suites(),
	}

	created := time.Unix(o.SourceDateEpoch, 0).UTC()
	cfg := v1.Image{
		Created:  &created,
		Platform: v1.Platform{Architecture: "amd64", OS: "linux"},
		Config: v1.ImageConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"},
			Cmd:        []string{"/bin/bash"},
			WorkingDir: "/",
			Labels: map[string]string{
				LabelBuilder:         "reprobox image build (mmdebstrap " + version + ")",
				LabelPackages:        strings.Join(pkgs, ","),
				LabelInstalled:       strings.Join(layer.installed, "\n"),
				LabelSuites:          strings.Join(suites(), ","),
				LabelMirror:          o.Mirror,
				LabelSecurityMirror:  o.SecurityMirror,
				LabelSourceDateEpoch: strconv.FormatInt(o.SourceDateEpoch, 10),
				LabelLocales:         strings.Join(locales, ","),
				LabelLock:            lock.label(),
				v1.AnnotationCreated: created.Format(time.RFC3339),
			},
		},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.diffID}},
		History: []v1.History{{
			Created:   &created,
			CreatedBy: "mmdebstrap " + shellJoin(args),
			Comment:   "reprobox image build",
		}},
	}
	img, err := s.storeImage(o.Name, cfg, []v1.Descriptor{layer.desc}, []stagedBlob{layer.blob})
	if err != nil {
		return Image{}, err
	}
	lock.Image = &LockImage{Name: img.Name, Digest: img.Digest}
	lockPath, err := s.writeLock(lock)
	if err != nil {
		return Image{}, err
	}
	fmt.Fprintf(progress, "lock %s\n", lockPath)
	fmt.Fprintf(progress, "stored %s\n", img.Reference())
	if o.Lock != nil && o.Lock.Image != nil && o.Lock.Image.Digest != img.Digest {
		return img, fmt.Errorf("images: build --lock: %w: %s, the lock says %s (same packages; compare the mmdebstrap and reprobox versions: %s and %s in the lock)",
			ErrLockDigest, img.Digest, o.Lock.Image.Digest, o.Lock.Mmdebstrap.Version, o.Lock.Reprobox)
	}
	return img, nil
}

func (o BuildOptions) withDefaults() (BuildOptions, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	name, err := parseName(o.Name)
	if err != nil {
		return o, fmt.Errorf("images: build: %w", err)
	}
	o.Name = name
	for _, p := range o.Packages {
		if !packageRE.MatchString(p) {
			return o, fmt.Errorf("%w: build: package %q: want a Debian package name, optionally =VERSION", ErrInvalid, p)
		}
	}
	if o.SourceDateEpoch == 0 {
		o.SourceDateEpoch = DefaultSourceDateEpoch
	}
	if o.SourceDateEpoch < 0 {
		return o, fmt.Errorf("%w: build: negative SOURCE_DATE_EPOCH %d", ErrInvalid, o.SourceDateEpoch)
	}
	if o.Mirror == "" {
		o.Mirror = DefaultMirror
	}
	if o.SecurityMirror == "" {
		o.SecurityMirror = DefaultSecurityMirror
	}
	for _, m := range []string{o.Mirror, o.SecurityMirror} {
		if !mirrorRE.MatchString(m) {
			return o, fmt.Errorf("%w: build: mirror %q: want an http(s) URL", ErrInvalid, m)
		}
	}
	o.Mirror = strings.TrimSuffix(o.Mirror, "/")
	o.SecurityMirror = strings.TrimSuffix(o.SecurityMirror, "/")
	return o, nil
}

func suites() []string { return []string{Suite, Suite + "-updates", Suite + "-security"} }

// mmdebstrapArgs returns the arguments of a build writing a tarball to
// standard output. They contain no temporary paths, since they are recorded
// in the image history.
func mmdebstrapArgs(o BuildOptions, pkgs []string) []string {
	var localeGen strings.Builder
	for _, l := range Locales {
		fmt.Fprintf(&localeGen, `%s UTF-8\n`, l)
	}
	args := []string{
		"--mode=root",
		"--variant=minbase",
		"--format=tar",
	}
	if len(pkgs) > 0 {
		args = append(args, "--include="+strings.Join(pkgs, ","))
	}
	args = append(args,
		`--aptopt=Acquire::Check-Valid-Until "false"`,
		`--aptopt=Acquire::Check-Date "false"`,
		// Keep the essential .debs until cleanup, for the lock's hook.
		"--skip=essential/unlink",
	)
	if !o.Minimal {
		args = append(args, `--customize-hook=printf '`+localeGen.String()+`' > "$1/etc/locale.gen" && chroot "$1" locale-gen`)
	}
	return append(args,
		`--customize-hook=rm -f "$1/etc/resolv.conf" "$1/var/cache/ldconfig/aux-cache" && printf 'localhost\n' > "$1/etc/hostname"`,
		"--customize-hook="+debHook,
		Suite,
		"-",
		"deb "+o.Mirror+" "+Suite+" main",
		"deb "+o.Mirror+" "+Suite+"-updates main",
		"deb "+o.SecurityMirror+" "+Suite+"-security main",
	)
}

func mmdebstrapVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "mmdebstrap", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("images: build: mmdebstrap --version: %w", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "mmdebstrap")), nil
}

// cleanEnv drops variables that would make the build depend on the caller.
func cleanEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "SOURCE_DATE_EPOCH" || k == "TZ" || k == "TMPDIR" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") || k == "LANG"
	})
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if shellSafeRE.MatchString(a) {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

type builtLayer struct {
	blob      stagedBlob
	desc      v1.Descriptor
	diffID    digest.Digest
	rawSize   int64
	installed []string // "package=version", sorted
}

// writeBuildLayer rewrites mmdebstrap's tarball deterministically into a
// gzip layer blob in the store's tmp directory.
func (s *Store) writeBuildLayer(r io.Reader, sde int64, progress io.Writer) (builtLayer, error) {
	f, err := os.CreateTemp(s.tmpDir(), "layer-")
	if err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	blobHash := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, blobHash), 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.DefaultCompression) // zero header: no name, no mtime
	diffHash := sha256.New()
	raw := &countWriter{w: io.MultiWriter(zw, diffHash)}
	tw := tar.NewWriter(raw)
	tr := tar.NewReader(r)
	clamp := time.Unix(sde, 0)
	var status []byte
	first := true
	dropped := 0
	const progressEvery = 128 << 20
	nextReport := int64(progressEvery)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return builtLayer{}, fmt.Errorf("images: build: reading mmdebstrap's tarball: %w", err)
		}
		if first {
			fmt.Fprintln(progress, "writing layer")
			first = false
		}
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
			dropped++
			continue
		}
		n := &tar.Header{
			Typeflag: hdr.Typeflag,
			Name:     hdr.Name,
			Linkname: hdr.Linkname,
			Size:     hdr.Size,
			Mode:     hdr.Mode,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  hdr.ModTime.Truncate(time.Second),
		}
		if n.ModTime.After(clamp) {
			n.ModTime = clamp
		}
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if n.PAXRecords == nil {
					n.PAXRecords = map[string]string{}
				}
				n.PAXRecords[k] = v
			}
		}
		if err := tw.WriteHeader(n); err != nil {
			return builtLayer{}, fmt.Errorf("images: build: entry %q: %w", hdr.Name, err)
		}
		var src io.Reader = tr
		var statusBuf bytes.Buffer
		if hdr.Name == "./var/lib/dpkg/status" && hdr.Typeflag == tar.TypeReg {
			src = io.TeeReader(tr, &statusBuf)
		}
		if _, err := io.Copy(tw, src); err != nil {
			return builtLayer{}, fmt.Errorf("images: build: entry %q: %w", hdr.Name, err)
		}
		if statusBuf.Len() > 0 {
			status = statusBuf.Bytes()
		}
		if raw.n >= nextReport {
			fmt.Fprintf(progress, "writing layer: %d MiB\n", raw.n>>20)
			nextReport += progressEvery
		}
	}
	if first {
		return builtLayer{}, errors.New("images: build: mmdebstrap wrote no tarball")
	}
	if err := tw.Close(); err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	if err := zw.Close(); err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	if err := f.Sync(); err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	if err := f.Close(); err != nil {
		return builtLayer{}, fmt.Errorf("images: build: %w", err)
	}
	if status == nil {
		return builtLayer{}, errors.New("images: build: the tarball has no /var/lib/dpkg/status")
	}
	if dropped > 0 {
		fmt.Fprintf(progress, "dropped %d device nodes from /dev\n", dropped)
	}
	ok = true
	d := digest.NewDigest(digest.SHA256, blobHash)
	return builtLayer{
		blob:      stagedBlob{path: f.Name(), digest: d},
		desc:      v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: fi.Size()},
		diffID:    digest.NewDigest(digest.SHA256, diffHash),
		rawSize:   raw.n,
		installed: installedPackages(status),
	}, nil
}

// installedPackages lists "package=version" for each installed package in a
// dpkg status file, sorted.
func installedPackages(status []byte) []string {
	var out []string
	for _, stanza := range strings.Split(string(status), "\n\n") {
		var pkg, ver, st string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			switch k {
			case "Package":
				pkg = v
			case "Version":
				ver = v
			case "Status":
				st = v
			}
		}
		if pkg != "" && strings.HasSuffix(st, " installed") {
			out = append(out, pkg+"="+ver)
		}
	}
	slices.Sort(out)
	return out
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// lineTail copies output to w line by line and keeps the last lines for an
// error message.
type lineTail struct {
	w     io.Writer
	max   int
	buf   []byte
	lines []string
	debs  []string // lines of the lock's package hook, not copied to w
}

func (t *lineTail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexAny(t.buf, "\r\n")
		if i < 0 {
			break
		}
		line := string(t.buf[:i])
		t.buf = t.buf[i+1:]
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, debLine) {
			t.debs = append(t.debs, line)
			continue
		}
		t.add(line)
	}
	return len(p), nil
}

func (t *lineTail) add(line string) {
	fmt.Fprintln(t.w, line)
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *lineTail) flush() {
	if len(t.buf) > 0 {
		t.add(string(t.buf))
		t.buf = nil
	}
}

func (t *lineTail) String() string { return strings.Join(t.lines, "\n") }

// storeImage writes the config and manifest for layers, commits them with
// the staged layer blobs and names the result.
func (s *Store) storeImage(name string, cfg v1.Image, layers []v1.Descriptor, staged []stagedBlob) (Image, error) {
	cb, err := json.Marshal(cfg)
	if err != nil {
		discardStaged(staged)
		return Image{}, fmt.Errorf("images: config: %w", err)
	}
	cblob, cdesc, err := s.stageBytes(cb, v1.MediaTypeImageConfig)
	if err != nil {
		discardStaged(staged)
		return Image{}, err
	}
	staged = append(staged, cblob)
	m := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    layers,
	}
	mb, err := json.Marshal(m)
	if err != nil {
		discardStaged(staged)
		return Image{}, fmt.Errorf("images: manifest: %w", err)
	}
	mblob, mdesc, err := s.stageBytes(mb, v1.MediaTypeImageManifest)
	if err != nil {
		discardStaged(staged)
		return Image{}, err
	}
	staged = append(staged, mblob)
	if err := s.addImage(name, mdesc, staged); err != nil {
		return Image{}, err
	}
	size := mdesc.Size + cdesc.Size
	for _, l := range layers {
		size += l.Size
	}
	return Image{Name: name, Digest: mdesc.Digest, Manifest: m, Config: cfg, Size: size}, nil
}

// Current returns nil when img was built by Build with opts as they are now:
// the same requested packages, locales, suites, mirrors and
// SOURCE_DATE_EPOCH (its labels say so), or an error naming the first
// difference. It does not look at the archive: the same definition built on
// another day may still give another digest. A build from a lock is never
// taken as current.
func Current(img Image, opts BuildOptions) error {
	if opts.Lock != nil {
		return errors.New("a build from a lock is compared by its digest, not its definition")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	pkgs := slices.Concat(BasePackages, o.Packages)
	if o.Minimal {
		pkgs = slices.Clone(o.Packages)
	}
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	locales := Locales
	if o.Minimal {
		locales = []string{}
	}
	labels := img.Config.Config.Labels
	for _, l := range []struct{ key, want string }{
		{LabelPackages, strings.Join(pkgs, ",")},
		{LabelLocales, strings.Join(locales, ",")},
		{LabelSuites, strings.Join(suites(), ",")},
		{LabelMirror, o.Mirror},
		{LabelSecurityMirror, o.SecurityMirror},
		{LabelSourceDateEpoch, strconv.FormatInt(o.SourceDateEpoch, 10)},
	} {
		if got, ok := labels[l.key]; !ok || got != l.want {
			return fmt.Errorf("%s is %q, this reprobox builds %q", l.key, got, l.want)
		}
	}
	return nil
}
