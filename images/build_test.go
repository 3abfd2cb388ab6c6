package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBuildOptions(t *testing.T) {
	for _, o := range []BuildOptions{
		{Name: "Bad Name"},
		{Name: "a@sha256:" + hexA},
		{Packages: []string{"ok", "--evil"}},
		{Packages: []string{"a;rm -rf /"}},
		{SourceDateEpoch: -1},
		{Mirror: "ftp://x"},
		{SecurityMirror: "http://x/ y"},
	} {
		if _, err := o.withDefaults(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", o, err)
		}
	}
	o, err := BuildOptions{Packages: []string{"ripgrep", "cargo-web=1.85.0+dfsg1-1~deb12u1"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != DefaultName || o.SourceDateEpoch != DefaultSourceDateEpoch || o.Mirror != DefaultMirror {
		t.Errorf("defaults: %+v", o)
	}
	args := strings.Join(mmdebstrapArgs(o, []string{"a", "b"}), "\n")
	for _, want := range []string{"--mode=root", "--variant=minbase", "--include=a,b", `Acquire::Check-Valid-Until "false"`,
		`Acquire::Check-Date "false"`, "fr_FR.UTF-8 UTF-8", "locale-gen", "deb http://deb.debian.org/debian bookworm-updates main",
		"deb http://deb.debian.org/debian-security bookworm-security main"} {
		if !strings.Contains(args, want) {
			t.Errorf("mmdebstrap arguments lack %q:\n%s", want, args)
		}
	}
}

// TestWriteBuildLayer feeds a fake mmdebstrap tarball through the layer
// writer: device nodes go, times are clamped, and the output is stable.
func TestWriteBuildLayer(t *testing.T) {
	future := time.Unix(DefaultSourceDateEpoch+1000, 123)
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: future, AccessTime: future, Format: tar.FormatPAX},
		{Typeflag: tar.TypeDir, Name: "./dev/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "./var/lib/dpkg/status", Mode: 0o644, Uname: "root",
			Size: int64(len(dpkgStatus)), ModTime: time.Unix(1600000000, 0)},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			io.WriteString(tw, dpkgStatus)
		}
	}
	tw.Close()

	s := newStore(t)
	var layers []builtLayer
	for range 2 {
		var progress bytes.Buffer
		l, err := s.writeBuildLayer(bytes.NewReader(in.Bytes()), DefaultSourceDateEpoch, &progress)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(progress.String(), "dropped 1 device nodes") {
			t.Errorf("progress: %q", progress.String())
		}
		layers = append(layers, l)
		defer os.Remove(l.blob.path)
	}
	if layers[0].desc.Digest != layers[1].desc.Digest {
		t.Errorf("layer digests differ: %s, %s", layers[0].desc.Digest, layers[1].desc.Digest)
	}
	if got := strings.Join(layers[0].installed, " "); got != "a=1.0 c=3" {
		t.Errorf("installed = %q", got)
	}
	b, _ := os.ReadFile(layers[0].blob.path)
	if b[3] != 0 || !bytes.Equal(b[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip header has flags %x or mtime %x", b[3], b[4:8])
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.ModTime.Unix() > DefaultSourceDateEpoch || h.ModTime.Nanosecond() != 0 || !h.AccessTime.IsZero() || h.Uname != "" {
			t.Errorf("%s: mtime %v atime %v uname %q", h.Name, h.ModTime, h.AccessTime, h.Uname)
		}
	}
	if got := strings.Join(names, " "); got != "./ ./dev/ ./var/lib/dpkg/status" {
		t.Errorf("entries %q", got)
	}
}

const dpkgStatus = `Package: c
Status: install ok installed
Version: 3

Package: a
Status: install ok installed
Version: 1.0

Package: b
Status: deinstall ok config-files
Version: 2
`

// TestCurrent: an image is current when its labels give the definition the
// options would build now, and not when any part of it differs.
func TestCurrent(t *testing.T) {
	o := BuildOptions{Name: DefaultName}
	def, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	pkgs := slices.Clone(BasePackages)
	slices.Sort(pkgs)
	labels := func() map[string]string {
		return map[string]string{
			LabelPackages:        strings.Join(pkgs, ","),
			LabelLocales:         strings.Join(Locales, ","),
			LabelSuites:          strings.Join(suites(), ","),
			LabelMirror:          def.Mirror,
			LabelSecurityMirror:  def.SecurityMirror,
			LabelSourceDateEpoch: strconv.FormatInt(def.SourceDateEpoch, 10),
		}
	}
	img := func(l map[string]string) Image {
		var i Image
		i.Config.Config.Labels = l
		return i
	}
	if err := Current(img(labels()), o); err != nil {
		t.Errorf("the same definition: %v", err)
	}
	for _, key := range []string{LabelPackages, LabelLocales, LabelSuites, LabelMirror, LabelSecurityMirror, LabelSourceDateEpoch} {
		l := labels()
		l[key] += "x"
		if err := Current(img(l), o); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s changed: %v, want an error naming it", key, err)
		}
		delete(l, key)
		if Current(img(l), o) == nil {
			t.Errorf("%s missing: taken as current", key)
		}
	}
	if Current(img(labels()), BuildOptions{Name: DefaultName, Packages: []string{"ripgrep"}}) == nil {
		t.Error("another package list taken as current")
	}
	if Current(img(labels()), BuildOptions{Name: DefaultName, Lock: &Lock{}}) == nil {
		t.Error("a build from a lock taken as current")
	}
}
