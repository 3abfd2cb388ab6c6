// Package sandboxtest is the conformance suite every sandbox backend runs: a
// probe inside the pinned image checks every normalized setting, and that every
// perturbed value really reaches the build.
package sandboxtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// probeScript prints one key=value line per setting, from inside the container.
// Its first command reads the PID namespace's last PID in the shell's first
// child, before anything else takes a PID. It reads the environment of PID 1 (this shell, started with exactly the
// spec's environment) rather than its own, which the shell may extend.
const probeScript = `
set -u
echo "last_pid=$(cat /proc/sys/kernel/ns_last_pid)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
echo "uname_n=$(uname -n)"
echo "domainname=$(cat /proc/sys/kernel/domainname)"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "user=$(id -un)"
echo "umask=$(umask)"
echo "cwd=$(pwd -P)"
echo "home_writable=$(touch "$HOME/.probe" 2>/dev/null && echo yes || echo no)"
echo "build_writable=$(touch ./.probe 2>/dev/null && echo yes || echo no)"
echo "root_writable=$(touch /probe 2>/dev/null && echo yes || echo no)"
echo "tmp_writable=$(touch /tmp/probe 2>/dev/null && echo yes || echo no)"
echo "tz_abbrev=$(date +%z)"
echo "clock=$(date +%s)"
echo "file_mtime=$(touch /tmp/mt && stat -c %Y /tmp/mt)"
echo "nproc=$(nproc)"
echo "uname_r=$(uname -r)"
echo "osrelease=$(cat /proc/sys/kernel/osrelease)"
echo "uname_agrees=$([ "$(uname -r)" = "$(cat /proc/sys/kernel/osrelease)" ] && echo yes || echo no)"
echo "personality=$(cat /proc/self/personality)"
echo "stack=$(grep -m1 '\[stack\]' /proc/self/maps | cut -d' ' -f1)"
echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ',')"
echo "routes=$(tail -n +2 /proc/net/route | wc -l)"
echo "locale_ok=$(locale 2>&1 >/dev/null | grep -c 'Cannot set' )"
echo "lang=$(locale | sed -n 's/^LANG=//p')"
echo "lc_all=$(locale | sed -n 's/^LC_ALL=//p')"
echo "lc_ctype=$(locale | sed -n 's/^LC_CTYPE=//p' | tr -d '"')"
echo "lc_collate=$(locale | sed -n 's/^LC_COLLATE=//p' | tr -d '"')"
echo "decimal_point=$(locale decimal_point)"
echo "sort_stz=$(printf 't\nz\ns\n' | sort | tr -d '\n')"
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
echo "nonewprivs=$(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "masked=$(wc -c < /proc/timer_list 2>&1)"
echo "environ=$(tr '\0' '\n' < /proc/1/environ | sort | tr '\n' '|')"
echo "dirents=$(mkdir .dirents && cd .dirents && touch a b c d e f g h && ls -U | tr '\n' ',')"
`

// Env is what the suite needs besides the backend.
type Env struct {
	// Image is the pinned default image (Debian with gcc, tzdata and the
	// locales of images.Locales). Its Rootfs must be set: the suite reads the
	// image's /etc/passwd and /etc/group from it, as the runner does.
	Image sandbox.Image
	// TimeShim is the compiled time shim on this host (the file
	// policies.BuildTimeShim makes); jobs carry its bytes.
	TimeShim string
}

// Run runs the conformance suite against b.
func Run(t *testing.T, b sandbox.Backend, env Env) {
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	t.Run("normalized", func(t *testing.T) {
		got := probe(t, b, env, base)
		want := expected(base)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	})
	t.Run("aslr_off_is_stable", func(t *testing.T) {
		a, c := probe(t, b, env, base), probe(t, b, env, base)
		if a["stack"] == "" || a["stack"] != c["stack"] {
			t.Errorf("stack mapping %q then %q: with ASLR off it must not move", a["stack"], c["stack"])
		}
	})
	t.Run("fileordering", func(t *testing.T) {
		if !supports(b, policies.NeedReverseDirents) {
			refused(t, b, env, base, "fileordering")
			return
		}
		fileOrdering(t, b, env, base)
	})
	for _, f := range policies.Factors {
		t.Run("perturbed_"+f.Name, func(t *testing.T) {
			for _, n := range f.Needs {
				if !supports(b, n) {
					// A backend without the feature must refuse the
					// perturbed job, never run it unperturbed.
					refused(t, b, env, base, f.Name)
					return
				}
			}
			vs := policies.Perturb(base, []string{f.Name}, 7)
			normal, got := probe(t, b, env, base), probe(t, b, env, vs)
			keys := f.Probe.Keys
			if len(keys) == 0 {
				t.Fatalf("no probe key for factor %s", f.Name)
			}
			for _, k := range keys {
				if got[k] == "" {
					t.Errorf("%s: the probe printed no %s", f.Name, k)
				}
				if got[k] == normal[k] {
					t.Errorf("%s: %s is %q both normalized and perturbed", f.Name, k, got[k])
				}
			}
			want := expected(vs)
			for _, k := range keys {
				if w, ok := want[k]; ok && got[k] != w {
					t.Errorf("%s: %s = %q, want %q", f.Name, k, got[k], w)
				}
			}
			// Nothing else moves.
			for k, v := range expected(base) {
				if !slices.Contains(keys, k) && !slices.Contains(f.Probe.AlsoMoves, k) && got[k] != v {
					t.Errorf("%s: %s changed to %q (normalized %q)", f.Name, k, got[k], v)
				}
			}
		})
	}
}

// supports reports whether b applies what need names: every feature, unless
// b says which it applies (sandbox.Features).
func supports(b sandbox.Backend, need policies.Need) bool {
	fb, ok := b.(sandbox.Features)
	return !ok || slices.Contains(fb.Features(), sandbox.Feature(need))
}

// refused checks that b refuses, as unsupported, a job with factor
// perturbed (a feature b does not list in Features).
func refused(t *testing.T, b sandbox.Backend, env Env, base policies.Settings, factor string) {
	t.Helper()
	vs := policies.Perturb(base, []string{factor}, 7)
	job := probeJob(t, env, vs, "true", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.Run(ctx, job); !errors.Is(err, sandbox.ErrUnsupported) {
		t.Errorf("%s perturbed, a feature the backend does not list: Run = %v, want an error wrapping ErrUnsupported", factor, err)
	}
	t.Logf("%s: refused, as the backend does not list it in Features", factor)
}

// expected is what the probe must print for settings s: what confines every
// build, the environment and personality every factor adds to, and what each
// factor expects of its own keys (policies.Factor.Probe).
func expected(s policies.Settings) map[string]string {
	want := map[string]string{
		"root_writable": "no",
		"tmp_writable":  "yes",
		"netdevs":       "lo,",
		"routes":        "0",
		"capeff":        "0000000000000000",
		"nonewprivs":    "1",
		"masked":        "0",
		"environ":       strings.Join(s.Environ(), "|") + "|",
		"personality":   fmt.Sprintf("%08x", s.Personality()),
	}
	for _, f := range policies.Factors {
		for k, v := range f.Probe.Expect(s) {
			want[k] = v
		}
	}
	return want
}

// probe runs the probe script in a container with settings s and parses its
// output.
func probe(t *testing.T, b sandbox.Backend, env Env, s policies.Settings) map[string]string {
	t.Helper()
	out := runProbe(t, b, env, s, probeScript, nil)
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			got[k] = v
		}
	}
	return got
}

// runProbe runs script in a container with settings s, as the runner runs a
// build: the spec and files from policies.Render, and a source snapshot
// (empty, or filled by fill) owned by the build user at s.BuildPath. It
// returns the standard output.
func runProbe(t *testing.T, b sandbox.Backend, env Env, s policies.Settings, script string, fill func(dir string)) string {
	t.Helper()
	job := probeJob(t, env, s, script, fill)
	// Minutes: a backend that imports the image unpacks it in the first
	// job (a minute or more on a loaded machine).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	job.Stdout, job.Stderr = &out, &errb
	res, err := b.Run(ctx, job)
	if err != nil {
		t.Fatalf("run probe: %v", err)
	}
	if !res.Success() {
		t.Fatalf("probe exited %d: %s", res.ExitCode, errb.String())
	}
	if errb.Len() > 0 {
		t.Logf("probe stderr: %s", errb.String())
	}
	return out.String()
}

// probeJob is the job that runs script with settings s, as the runner runs
// a build.
func probeJob(t *testing.T, env Env, s policies.Settings, script string, fill func(dir string)) *sandbox.Job {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if fill != nil {
		fill(src)
	}
	listing := sha256.New()
	fmt.Fprintf(listing, "%d:%d\n", s.UID, s.GID) // the digest covers ownership
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(listing, "%s\n", p[len(src):])
		return os.Lchown(p, int(s.UID), int(s.GID))
	})
	if err != nil {
		t.Fatal(err)
	}
	var shim []byte
	if s.Clock != 0 {
		if shim, err = os.ReadFile(env.TimeShim); err != nil {
			t.Fatal(err)
		}
	}
	spec, files, pers, err := policies.Render(s, policies.Host{
		Rootfs: env.Image.Rootfs, TimeShim: shim,
		Args: []string{"/bin/sh", "-c", script},
	})
	if err != nil {
		t.Fatal(err)
	}
	job := &sandbox.Job{
		Image:        env.Image,
		Source:       sandbox.Source{Digest: fmt.Sprintf("sha256:%x", listing.Sum(nil)), Dir: src},
		BuildPath:    s.BuildPath,
		FileOrdering: s.FileOrdering,
		Spec:         spec,
		Personality:  pers,
	}
	for _, f := range files {
		job.Files = append(job.Files, sandbox.File{Path: f.Path, Mode: f.Mode, Data: f.Data})
	}
	return job
}

// fileOrdering checks the fileordering factor, which the backend applies to
// the source at the build path (Job.FileOrdering): with "reverse", every
// directory of the build tree lists in the reverse of its native order, and
// both orders are seen from inside the container.
func fileOrdering(t *testing.T, b sandbox.Backend, env Env, base policies.Settings) {
	fill := func(dir string) {
		for _, d := range []string{".", "sub"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"} {
				if err := os.WriteFile(filepath.Join(dir, d, name), []byte(name), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	const script = `ls -f . | grep -v '^\.\.\?$' | tr '\n' ' '; echo; ls -f sub | grep -v '^\.\.\?$' | tr '\n' ' '; echo`
	rev := base
	rev.FileOrdering = "reverse"
	native := strings.Split(strings.TrimSpace(runProbe(t, b, env, base, script, fill)), "\n")
	reversed := strings.Split(strings.TrimSpace(runProbe(t, b, env, rev, script, fill)), "\n")
	if len(native) != 2 || len(reversed) != 2 {
		t.Fatalf("listings %q and %q, want two lines each", native, reversed)
	}
	for i := range native {
		n, r := strings.Fields(native[i]), strings.Fields(reversed[i])
		if len(n) < 6 {
			t.Fatalf("native listing %q lacks the source's files", n)
		}
		slices.Reverse(r)
		if !slices.Equal(n, r) {
			t.Errorf("directory %d: native order %q, reverse order %q: not reversed", i, native[i], reversed[i])
		}
	}
}
