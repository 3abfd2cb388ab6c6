package containerd_test

// Temporary glue until the runner makes jobs and sandboxtest takes a Job
// (issue 10): the current conformance suite's probe, its expectations and
// its loop over every factor, run through this backend with jobs built from
// policies.Render's spec (see renderJob). The probe also lists a directory
// of the build tree, for the fileordering factor that the current suite
// leaves to the runner. conformance_test.go holds the call of the shared
// suite for when it takes jobs.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// probeScript prints one key=value line per setting, from inside the container.
// It reads the environment of PID 1 (this shell, started with exactly the
// spec's environment) rather than its own, which the shell may extend.
const probeScript = `
set -u
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
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
echo "nonewprivs=$(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "masked=$(wc -c < /proc/timer_list 2>&1)"
echo "order=$(ls -f orderprobe | grep -v '^\\.' | tr '\n' ',')"
echo "environ=$(tr '\0' '\n' < /proc/1/environ | sort | tr '\n' '|')"
`

// TestProbe runs the conformance probe: every normalized setting checked
// from inside the container, every perturbed value seen to differ.
func TestProbe(t *testing.T) {
	b := newBackend(t)
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	t.Run("normalized", func(t *testing.T) {
		got := probe(t, b, shim, base)
		for k, v := range expected(base) {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	})
	t.Run("aslr_off_is_stable", func(t *testing.T) {
		a, c := probe(t, b, shim, base), probe(t, b, shim, base)
		if a["stack"] == "" || a["stack"] != c["stack"] {
			t.Errorf("stack mapping %q then %q: with ASLR off it must not move", a["stack"], c["stack"])
		}
	})
	for _, f := range policies.Factors {
		t.Run("perturbed_"+f.Name, func(t *testing.T) {
			vs := policies.Perturb(base, []string{f.Name}, 7)
			normal, got := probe(t, b, shim, base), probe(t, b, shim, vs)
			keys := perturbedKeys[f.Name]
			if len(keys) == 0 {
				t.Fatalf("no probe key for factor %s", f.Name)
			}
			for _, k := range keys {
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
			for k, v := range expected(base) {
				if !slices.Contains(keys, k) && !slices.Contains(alsoMoves[f.Name], k) && got[k] != v {
					t.Errorf("%s: %s changed to %q (normalized %q)", f.Name, k, got[k], v)
				}
			}
		})
	}
}

// perturbedKeys are the probe keys each factor must change.
var perturbedKeys = map[string][]string{
	"time":         {"clock", "file_mtime"},
	"build_path":   {"cwd"},
	"locale":       {"lang", "lc_all"},
	"timezone":     {"tz_abbrev"},
	"umask":        {"umask"},
	"hostname":     {"hostname", "uname_n"},
	"domainname":   {"domainname"},
	"user":         {"uid", "gid", "user"},
	"home":         {"environ"},
	"num_cpus":     {"nproc"},
	"kernel":       {"uname_r", "osrelease"},
	"aslr":         {"personality"},
	"env":          {"environ"},
	"exec_path":    {"environ"},
	"fileordering": {"order"},
}

// alsoMoves are keys that legitimately change with a factor besides its own.
var alsoMoves = map[string][]string{
	"build_path": {"environ"},
	"locale":     {"environ"},
	"timezone":   {"environ"},
	"umask":      {},
	"user":       {"environ"},
	"time":       {"environ"},
	"aslr":       {"stack"},
	"kernel":     {"personality"},
}

// expected is what the probe must print for settings s.
func expected(s policies.Settings) map[string]string {
	tz := "+0000"
	if s.TZ == "Etc/GMT-14" {
		tz = "+1400"
	}
	pers := "00000000"
	if !s.ASLR {
		pers = "00040000"
	}
	if s.Uname26 {
		p, _ := strconv.ParseUint(pers, 16, 32)
		pers = fmt.Sprintf("%08x", p|policies.PersonalityUname26)
	}
	lcAll := ""
	if s.LocaleAll {
		lcAll = s.Locale
	}
	return map[string]string{
		"hostname":       s.Hostname,
		"uname_n":        s.Hostname,
		"domainname":     s.Domainname,
		"uid":            strconv.Itoa(int(s.UID)),
		"gid":            strconv.Itoa(int(s.GID)),
		"user":           s.User,
		"umask":          fmt.Sprintf("%04o", s.Umask),
		"cwd":            s.BuildPath,
		"home_writable":  "yes",
		"build_writable": "yes",
		"root_writable":  "no",
		"tmp_writable":   "yes",
		"tz_abbrev":      tz,
		"clock":          strconv.FormatInt(s.Clock, 10),
		"file_mtime":     strconv.FormatInt(s.Clock, 10),
		"nproc":          strconv.Itoa(s.CPUs),
		"uname_agrees":   "yes",
		"personality":    pers,
		"netdevs":        "lo,",
		"routes":         "0",
		"locale_ok":      "0",
		"lang":           s.Locale,
		"lc_all":         lcAll,
		"capeff":         "0000000000000000",
		"nonewprivs":     "1",
		"masked":         "0",
		"environ":        strings.Join(s.Environ(), "|") + "|",
	}
}

// orderFiles are created in this order in the probe's directory: ext4 and
// overlayfs list them in hash order, disorderfs --reverse-dirents reverses it.
var orderFiles = []string{"a", "b", "c", "d", "e", "f", "g", "h"}

// probe runs the probe script in a container with settings s and parses its
// output.
func probe(t *testing.T, b sandbox.Backend, shim string, s policies.Settings) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, n := range orderFiles {
		files["orderprobe/"+n] = n
	}
	src := source(t, s.UID, s.GID, files)
	job := renderJob(t, s, shim, src, "/bin/sh", "-c", probeScript)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	got := map[string]string{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			got[k] = v
		}
	}
	if errb.Len() > 0 {
		t.Logf("probe stderr: %s", errb.String())
	}
	return got
}

var _ = fmt.Sprintf
var _ = strconv.Itoa
