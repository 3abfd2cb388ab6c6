package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/policies"
)

// TestEvidenceKinds diffs real-looking pairs of artifacts, a control's and a
// variant's with one factor perturbed, with the labels the runner gives the
// diff, and checks that the factor is named by its evidence, and not named
// when another factor is the one perturbed.
func TestEvidenceKinds(t *testing.T) {
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	const seed = 5
	vs := func(f string) policies.Settings { return policies.Perturb(base, []string{f}, seed) }
	user, umask, clock := vs("user"), vs("umask"), vs("time")
	tarOf := func(mode int64, uid int, uname string) []byte {
		var b bytes.Buffer
		w := tar.NewWriter(&b)
		data := []byte("hello\n")
		hdr := &tar.Header{Name: "dist/hello", Mode: mode, Uid: uid, Gid: uid, Uname: uname, Gname: uname,
			Size: int64(len(data)), ModTime: time.Unix(base.SourceDateEpoch, 0), Format: tar.FormatUSTAR}
		if err := w.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
		return b.Bytes()
	}
	year := func(s policies.Settings) int { return s.ClockTime().Year() }
	for _, tc := range []struct {
		name, factor     string
		control, variant []byte
	}{
		{"env name", "env",
			[]byte("configure: variables set: HOME PATH\n"),
			[]byte("configure: variables set: BUILD_NOTE HOME PATH\n")},
		{"umask ls -l", "umask",
			[]byte("-rw-r--r-- 1 builder builder 6 Nov 14 22:13 a.txt\n"),
			[]byte("-rw-rw-r-- 1 builder builder 6 Nov 14 22:13 a.txt\n")},
		{"umask octal", "umask",
			[]byte("install: mode 0755 for bin/hello\n"),
			[]byte("install: mode 0775 for bin/hello\n")},
		{"umask tar header", "umask", tarOf(0o644, 1000, "builder"), tarOf(0o664, 1000, "builder")},
		{"uid and gid in id output", "user",
			[]byte("built as uid=1000 gid=1000\n"),
			[]byte(fmt.Sprintf("built as uid=%d gid=%d\n", user.UID, user.GID))},
		{"numeric tar owner", "user", tarOf(0o644, 1000, ""), tarOf(0o644, int(user.UID), "")},
		{"user name in tar", "user", tarOf(0o644, 1000, "builder"), tarOf(0o644, int(user.UID), user.User)},
		{"cpu count", "num_cpus",
			[]byte("tuned for 2 threads\n"),
			[]byte("tuned for 1 threads\n")},
		{"make jobs", "num_cpus",
			[]byte("MAKEFLAGS = -j2\n"),
			[]byte("MAKEFLAGS = -j1\n")},
		{"turkish case", "locale",
			[]byte("#define KW_PRINT \"print\"\n"),
			[]byte("#define KW_PRİNT \"print\"\n")},
		{"translated message", "locale",
			[]byte("ls: cannot access 'x': No such file or directory\n"),
			[]byte("ls: impossible d'accéder à 'x': Aucun fichier ou dossier de ce type\n")},
		{"zone offset", "timezone",
			[]byte("released 2023-11-14 22:13 +0000\n"),
			[]byte("released 2023-11-15 12:58 +1345\n")},
		{"copyright year", "time",
			[]byte(fmt.Sprintf("Copyright (C) %d The Authors\n", year(base))),
			[]byte(fmt.Sprintf("Copyright (C) %d The Authors\n", year(clock)))},
		{"date(1)", "time",
			[]byte(base.ClockTime().Format("Mon Jan _2 15:04:05 UTC 2006") + "\n"),
			[]byte(clock.ClockTime().Format("Mon Jan _2 15:04:05 UTC 2006") + "\n")},
		{"man page date", "time",
			[]byte(base.ClockTime().Format(`.TH HELLO 1 "January 2006"`) + "\n"),
			[]byte(clock.ClockTime().Format(`.TH HELLO 1 "January 2006"`) + "\n")},
		{"reordered lines", "fileordering",
			[]byte("src/lib.rs\nsrc/parse.rs\nsrc/render.rs\n"),
			[]byte("src/render.rs\nsrc/parse.rs\nsrc/lib.rs\n")},
		{"reordered entries", "fileordering",
			[]byte("SOURCES = lib.c parse.c render.c\n"),
			[]byte("SOURCES = render.c parse.c lib.c\n")},
		{"reordered tar members", "fileordering", tarNamed(t, "doc/a.md", "doc/b.md", "doc/c.md"), tarNamed(t, "doc/c.md", "doc/b.md", "doc/a.md")},
		{"printed stack address", "aslr",
			[]byte("scratch buffer at 0x7fffffffe3a0\n"),
			[]byte("scratch buffer at 0x7ffd5a3c1e20\n")},
		{"stack address in binary", "aslr", elfWithWord(0x7fffffffe3a0), elfWithWord(0x7ffd5a3c1e20)},
		{"collation", "locale",
			[]byte("Util\nalloc\nsocket\nthread\nzlib\n"),
			[]byte("alloc\nsocket\nUtil\nzlib\nthread\n")},
		{"decimal comma", "locale",
			[]byte("ratio = 0.750000\n"),
			[]byte("ratio = 0,750000\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.factor == "umask" && umask.Umask == base.Umask {
				t.Fatal("umask not perturbed")
			}
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			if err := os.WriteFile(a, tc.control, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(b, tc.variant, 0o644); err != nil {
				t.Fatal(err)
			}
			named := func(s policies.Settings) []string {
				rep, err := diff.Files(context.Background(), a, b, diff.Options{Labels: Labels(base, s), TimeRanges: TimeRanges(base, s), Matchers: Matchers(base, s)})
				if err != nil {
					t.Fatal(err)
				}
				return rep.Factors()
			}
			if got := named(vs(tc.factor)); !slices.Contains(got, tc.factor) {
				t.Errorf("%s perturbed: evidence names %v", tc.factor, got)
			}
			for _, f := range policies.Factors {
				if f.Name == tc.factor {
					continue
				}
				if got := named(vs(f.Name)); slices.Contains(got, tc.factor) {
					t.Errorf("only %s perturbed: evidence names %v", f.Name, got)
				}
			}
		})
	}
}

// tarNamed is a tar of the named members, in the order given.
func tarNamed(t *testing.T, names ...string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, n := range names {
		data := []byte("# " + n + "\n")
		if err := w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)),
			ModTime: time.Unix(policies.DefaultSourceDateEpoch, 0), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// elfWithWord is an ELF header followed by a saved frame whose second word
// is a stack address (not a valid ELF file: the diff compares its bytes).
func elfWithWord(addr uint64) []byte {
	b := make([]byte, 192)
	copy(b, "\x7fELF\x02\x01\x01")
	copy(b[64:], "saved frame\x00")
	binary.LittleEndian.PutUint64(b[80:], 0x555555555189)
	binary.LittleEndian.PutUint64(b[88:], addr)
	binary.LittleEndian.PutUint64(b[96:], 3)
	return b
}

// TestMatchKindsAgree checks that the shapes of difference policies names are
// the kinds package diff knows.
func TestMatchKindsAgree(t *testing.T) {
	for _, k := range []string{policies.MatchReorder, policies.MatchAddress, policies.MatchDecimalComma, policies.MatchCollation} {
		if !slices.Contains(diff.MatchKinds, diff.MatchKind(k)) {
			t.Errorf("policies names match kind %q, which diff does not know", k)
		}
	}
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	all := policies.Perturb(base, policies.Names(), 5)
	for _, m := range Matchers(base, all) {
		if !slices.Contains(diff.MatchKinds, m.Kind) {
			t.Errorf("factor %s asks for match kind %q, which diff does not know", m.Factor, m.Kind)
		}
	}
	if got := Matchers(base, base); len(got) != 0 {
		t.Errorf("nothing perturbed: matchers %v", got)
	}
}

// TestCheckMatchersTakeNoReordering checks that a check's evidence does not
// take reorderings as real (a nondeterministic artifact reorders by itself):
// they only hint, through a real diff of reordered and collated lines.
func TestCheckMatchersTakeNoReordering(t *testing.T) {
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	all := policies.Perturb(base, policies.Names(), 5)
	var kinds []diff.MatchKind
	for _, m := range checkMatchers(base, all) {
		reorder := m.Kind == diff.MatchReorder || m.Kind == diff.MatchCollation
		if reorder != strings.HasSuffix(m.Factor, hintMark) {
			t.Errorf("check matcher %+v: a reordering must only hint, anything else name", m)
		}
		kinds = append(kinds, m.Kind)
	}
	if !slices.Contains(kinds, diff.MatchAddress) || !slices.Contains(kinds, diff.MatchDecimalComma) {
		t.Errorf("check matchers %v lack address or decimal-comma", kinds)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := newChecker(&Runner{}, &Plan{Base: base}, CheckOptions{Vary: policies.Names()}, "")
	for _, tc := range []struct {
		name, a, b string
		hints      []string
	}{
		{"reordered", "beta\nalpha\ngamma\ndelta\n", "gamma\nbeta\ndelta\nalpha\n", []string{"fileordering"}},
		{"collated", "sad\nsiil\ntee\ntuul\nzoo\n", "sad\nsiil\nzoo\ntee\ntuul\n", []string{"locale"}},
		{"changed", "alpha\n", "beta\n", nil},
	} {
		control := &observation{files: map[string]string{"out": write(tc.name+".a", tc.a)}}
		variant := &observation{set: policies.Names(), files: map[string]string{"out": write(tc.name+".b", tc.b)}}
		named, hints, text, err := c.evidence(context.Background(), "out", control, variant, all)
		if err != nil {
			t.Fatal(err)
		}
		if len(named) > 0 || !slices.Equal(hints, tc.hints) {
			t.Errorf("%s: named %v, hints %v; want none named, hints %v\n%s", tc.name, named, hints, tc.hints, text)
		}
	}
}
