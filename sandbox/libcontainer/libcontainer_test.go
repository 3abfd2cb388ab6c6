package libcontainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/sandbox"
)

func TestMain(m *testing.M) {
	MaybeInit()
	if os.Getenv(helperEnv) != "" {
		helperMain()
		os.Exit(2) // helperMain only returns on failure.
	}
	os.Exit(m.Run())
}

const defaultTestRootfs = "/var/tmp/reprobox-test-rootfs"

var (
	rootfsOnce sync.Once
	rootfsPath string
	rootfsErr  error
)

// testRootfs returns a Debian root filesystem to run containers in:
// $REPROBOX_TEST_ROOTFS, or a minbase bookworm kept in /var/tmp and made with
// mmdebstrap the first time (about 20 s, network needed).
func testRootfs(t testing.TB) string {
	t.Helper()
	testenv.NeedRoot(t)
	rootfsOnce.Do(func() {
		if p := os.Getenv("REPROBOX_TEST_ROOTFS"); p != "" {
			rootfsPath = p
			return
		}
		// The default image, which make image (and CI) builds, is the
		// rootfs the real builds use.
		if store, err := images.Open(testenv.DataDir()); err == nil {
			if img, err := store.Resolve(testenv.Image()); err == nil {
				if p, err := store.Rootfs(context.Background(), img); err == nil {
					rootfsPath = p
					return
				}
			}
		}
		rootfsPath = defaultTestRootfs
		if _, err := os.Stat(filepath.Join(rootfsPath, "bin/sh")); err == nil {
			return
		}
		if _, err := exec.LookPath("mmdebstrap"); err != nil {
			rootfsErr = fmt.Errorf("no test rootfs: set REPROBOX_TEST_ROOTFS or install mmdebstrap to build %s", rootfsPath)
			return
		}
		tmp := rootfsPath + ".tmp"
		os.RemoveAll(tmp)
		cmd := exec.Command("mmdebstrap", "--variant=minbase", "--mode=root", "--quiet",
			`--aptopt=Acquire::Check-Valid-Until "false"`, "bookworm", tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			rootfsErr = fmt.Errorf("mmdebstrap: %v\n%s", err, out)
			return
		}
		rootfsErr = os.Rename(tmp, rootfsPath)
	})
	if rootfsErr != nil {
		testenv.Skip(t, "%v", rootfsErr)
	}
	return rootfsPath
}

func newBackend(t testing.TB) *Backend {
	t.Helper()
	// A container root in a user namespace must be able to reach the run
	// directories: t.TempDir makes 0700 directories.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	b, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testSpec is the spec `runc spec` makes, plus a tmpfs /tmp, the cgroup
// filesystem and the settings the tests check.
func testSpec(rootfs string, args ...string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	umask := uint32(0o022)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"},
			Cwd:  "/",
			User: specs.User{UID: 0, GID: 0, Umask: &umask},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "sandbox",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}

func sh(rootfs, script string) *specs.Spec { return testSpec(rootfs, "/bin/sh", "-c", script) }

// runJob runs job and returns its result and output.
func runJob(t testing.TB, b *Backend, job *sandbox.Job) (res *sandbox.Result, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	job.Stdout, job.Stderr = &o, &e
	res, err := b.Run(context.Background(), job)
	if err != nil {
		t.Fatalf("Run: %v\nstdout: %s\nstderr: %s", err, o.String(), e.String())
	}
	checkClean(t, b, job.ID)
	return res, o.String(), e.String()
}

func checkClean(t testing.TB, b *Backend, id string) {
	t.Helper()
	if id == "" {
		return
	}
	left, err := b.Leftovers(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("run %s left behind: %v", id, left)
	}
	// The main thread stays in our mount namespace (see init).
	leader, err1 := os.Readlink("/proc/self/ns/mnt")
	self, err2 := os.Readlink("/proc/thread-self/ns/mnt")
	if leader != self || err1 != nil || err2 != nil {
		t.Errorf("main thread in mount namespace %s, this thread in %s (%v, %v)", leader, self, err1, err2)
	}
}

func TestExitStatus(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	noPID := sh(rootfs, "kill -KILL $$")
	noPID.Linux.Namespaces = noPID.Linux.Namespaces[1:] // the shell is not pid 1: it can be killed
	for _, tc := range []struct {
		name         string
		spec         *specs.Spec
		code, signal int
	}{
		{"true", testSpec(rootfs, "true"), 0, 0},
		{"exit3", sh(rootfs, "exit 3"), 3, 0},
		{"killed", noPID, 137, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "exit-" + tc.name, Spec: tc.spec})
			if res.ExitCode != tc.code || res.Signal != tc.signal {
				t.Errorf("got exit %d signal %d, want %d %d; stderr: %s", res.ExitCode, res.Signal, tc.code, tc.signal, stderr)
			}
			if res.Success() != (tc.code == 0) {
				t.Errorf("Success() = %v", res.Success())
			}
			if res.Duration <= 0 || res.Duration > time.Minute {
				t.Errorf("Duration = %v", res.Duration)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, "echo out; echo err >&2; echo out2")
	_, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "output", Spec: spec})
	if stdout != "out\nout2\n" || stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}

	// One writer for both streams gets both, in order.
	var both bytes.Buffer
	res, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, Spec: spec, Stdout: &both, Stderr: &both})
	if err != nil || !res.Success() {
		t.Fatal(res, err)
	}
	if both.String() != "out\nerr\nout2\n" {
		t.Errorf("combined output %q", both.String())
	}

	// Nil writers discard; a large output does not block.
	res, err = b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, Spec: sh(rootfs, "head -c 10000000 /dev/zero; head -c 10000000 /dev/zero >&2")})
	if err != nil || !res.Success() {
		t.Fatal(res, err)
	}
	var n countWriter
	res, err = b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, Spec: sh(rootfs, "head -c 10000000 /dev/zero"), Stdout: &n})
	if err != nil || !res.Success() || n != 10000000 {
		t.Fatal(res, err, n)
	}

	// Stdin is /dev/null.
	_, stdout, _ = runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "stdin", Spec: sh(rootfs, "cat; readlink /proc/self/fd/0")})
	if stdout != "/dev/null\n" {
		t.Errorf("stdin: %q", stdout)
	}

	// A writer that fails is an error, and does not block the container.
	_, err = b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "bad-writer", Spec: sh(rootfs, "head -c 10000000 /dev/zero"), Stdout: failWriter{}})
	if !errors.Is(err, errWrite) {
		t.Errorf("failing writer: got %v", err)
	}
	checkClean(t, b, "bad-writer")
}

var errWrite = errors.New("test write error")

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errWrite }

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func TestProcessSettings(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, `
		cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname
		id -u; id -g; id -G
		umask; pwd
		grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/self/status
		grep 'open files' /proc/self/limits`)
	spec.Hostname = "builder"
	spec.Domainname = "example.test"
	spec.Process.User = specs.User{UID: 1234, GID: 2345, AdditionalGids: []uint32{5, 3456}, Umask: ptr(uint32(0o027))}
	spec.Process.Cwd = "/usr/share"
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 256}}
	_, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "settings", Spec: spec})
	want := "builder\nexample.test\n1234\n2345\n2345 5 3456\n0027\n/usr/share\n" +
		"CapEff:\t0000000000000000\nCapBnd:\t0000000020000420\nNoNewPrivs:\t1\n"
	got, _, _ := strings.Cut(stdout, "Max open files")
	if strings.ReplaceAll(got, "\n", "|") != strings.ReplaceAll(want, "\n", "|") {
		t.Errorf("got\n%s\nwant\n%s\nstderr: %s", got, want, stderr)
	}
	if f := strings.Fields(stdout[len(got):]); len(f) < 5 || f[3] != "256" || f[4] != "512" {
		t.Errorf("open files limit: %q", stdout[len(got):])
	}
}

func ptr[T any](v T) *T { return &v }

func TestEnvExact(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	env := []string{"HOME=/nowhere", "Z=last", "A=first", "PATH=/bin", "EMPTY=", "SPACES=a b  c"}
	spec := testSpec(rootfs, "/bin/cat", "/proc/self/environ")
	spec.Process.Env = env
	_, stdout, _ := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "env", Spec: spec})
	if got := strings.Split(strings.TrimSuffix(stdout, "\x00"), "\x00"); strings.Join(got, "\n") != strings.Join(env, "\n") {
		t.Errorf("environment\n%q\nwant\n%q", got, env)
	}
}

// treeState lists every file under dir with its type, mode, size and
// modification time.
func treeState(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d %d %d %d.%d\n", p, fi.Mode(), st.Uid, st.Gid, fi.Size(), st.Mtim.Sec, st.Mtim.Nsec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRootfs(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	before := treeState(t, rootfs)

	// Writable root: changes go to the run's overlay, not to Root.Path.
	spec := sh(rootfs, `set -e
		echo new > /new-file; echo changed >> /etc/os-release; rm /etc/debian_version
		mkdir /var/new-dir; chmod 700 /usr; touch /bin/true
		stat -c '%a %u %g' /`)
	spec.Root.Readonly = false
	res, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "rootfs-rw", Spec: spec})
	if !res.Success() {
		t.Fatalf("%+v %s", res, stderr)
	}
	st, err := os.Stat(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if want := fmt.Sprintf("%o %d %d\n", st.Mode().Perm(), sys.Uid, sys.Gid); stdout != want {
		t.Errorf("container root is %q, image root %q", stdout, want)
	}
	if after := treeState(t, rootfs); after != before {
		t.Errorf("Root.Path changed by a run")
	}

	// Read-only root, writable tmpfs /tmp.
	spec = sh(rootfs, `touch /x 2>&1; echo $?; touch /tmp/x && echo tmp ok; grep ' /tmp ' /proc/mounts | cut -d' ' -f3`)
	_, stdout, _ = runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "rootfs-ro", Spec: spec})
	if want := "touch: cannot touch '/x': Read-only file system\n1\ntmp ok\ntmpfs\n"; stdout != want {
		t.Errorf("got %q, want %q", stdout, want)
	}
	if after := treeState(t, rootfs); after != before {
		t.Errorf("Root.Path changed by a read-only run")
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, `wc -c < /proc/keys; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; echo $?`)
	_, stdout, _ := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "masked", Spec: spec})
	if stdout != "0\n0\n1\n" && stdout != "0\n0\n2\n" {
		t.Errorf("got %q", stdout)
	}
}

func TestNetwork(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	// Connecting to a closed port on lo is refused (lo is up); to 1.1.1.1 the
	// network is unreachable (no route out).
	spec := testSpec(rootfs, "/bin/bash", "-c", `
		ls /sys/class/net
		tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '
		(exec 3<>/dev/tcp/127.0.0.1/9) 2>&1 | sed 's/.*: //' | sort -u
		(exec 3<>/dev/tcp/1.1.1.1/80) 2>&1 | sed 's/.*: //' | sort -u
		cat /proc/net/route | wc -l`)
	_, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "network", Spec: spec})
	if want := "lo\nlo\nConnection refused\nNetwork is unreachable\n1\n"; stdout != want {
		t.Errorf("got %q, want %q; stderr %s", stdout, want, stderr)
	}
}

func TestResources(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, `
		nproc; cat /sys/fs/cgroup/cpuset/cpuset.cpus
		cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
		for i in 1 2 3 4 5 6 7 8; do sleep 1 & done 2>&1 | grep -c fork`)
	spec.Linux.Resources = &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Cpus: "1"},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(5))},
	}
	_, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "resources", Spec: spec})
	lines := strings.Split(stdout, "\n")
	if len(lines) < 5 || lines[0] != "1" || lines[1] != "1" || lines[2] != "268435456" || lines[3] != "5" || lines[4] == "0" {
		t.Errorf("got %q; stderr %s", stdout, stderr)
	}
}

func TestPersonality(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	const addrNoRandomize, uname26 = 0x0040000, 0x0020000
	// probe returns the personality, kernel release, machine and stack
	// address of a process in a container.
	probe := func(id string, pers uint32, edit func(*specs.Spec)) []string {
		spec := sh(rootfs, `cat /proc/self/personality; uname -r; uname -m; grep '\[stack\]' /proc/self/maps | cut -d' ' -f1`)
		if edit != nil {
			edit(spec)
		}
		_, stdout, _ := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: id, Spec: spec, Personality: pers})
		f := strings.Fields(stdout)
		if len(f) != 4 {
			t.Fatalf("probe output %q", stdout)
		}
		return f
	}
	p := probe("pers-none", 0, nil)
	if p[0] != "00000000" || strings.HasPrefix(p[1], "2.6.") || p[2] != "x86_64" {
		t.Errorf("default: %v", p)
	}
	if p2 := probe("pers-none2", 0, nil); p[3] == p2[3] {
		t.Errorf("stack at %s twice with ASLR on", p[3])
	}
	p = probe("pers-aslr", addrNoRandomize, nil)
	p2 := probe("pers-aslr2", addrNoRandomize, nil)
	if p[0] != "00040000" || p[3] != p2[3] {
		t.Errorf("ADDR_NO_RANDOMIZE: personality %s, stacks %s %s", p[0], p[3], p2[3])
	}
	p = probe("pers-uname", uname26, nil)
	if p[0] != "00020000" || !strings.HasPrefix(p[1], "2.6.") {
		t.Errorf("UNAME26: %v", p)
	}
	// Flags named in the spec apply too, added to the job's; so does the
	// domain.
	p = probe("pers-spec", uname26, func(s *specs.Spec) {
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
	})
	if p[0] != "00060008" || p[2] != "i686" {
		t.Errorf("spec personality: %v", p)
	}
	// A user without capabilities keeps the flags across exec.
	p = probe("pers-user", addrNoRandomize, func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 1000} })
	if p[0] != "00040000" {
		t.Errorf("ADDR_NO_RANDOMIZE as uid 1000: %v", p)
	}
}

func TestCancel(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	errStop := errors.New("test stop")
	for _, tc := range []struct {
		name   string
		nopid  bool
		script string
	}{
		{"pidns", false, "sleep 1000"},
		// Without a PID namespace, killing the shell would not kill its
		// children: the cgroup is.
		{"nopidns", true, "sleep 1000 & sleep 1000; wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := sh(rootfs, tc.script)
			if tc.nopid {
				spec.Linux.Namespaces = spec.Linux.Namespaces[1:]
			}
			id := "cancel-" + tc.name
			ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, errStop)
			defer cancel()
			t0 := time.Now()
			res, err := b.Run(ctx, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: id, Spec: spec})
			if !errors.Is(err, errStop) || res != nil {
				t.Fatalf("got %v, %v; want an error wrapping %v", res, err, errStop)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("Run returned %v after start", d)
			}
			checkClean(t, b, id)
			if m, _ := mountsUnder(b.stateDir); len(m) > 0 {
				t.Errorf("mounts left: %v", m)
			}
			if out, _ := exec.Command("pgrep", "-f", "^sleep 1000$").Output(); len(out) > 0 {
				t.Errorf("sleep processes left: %s", out)
			}
		})
	}

	// A context done before Run starts anything.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errStop)
	if _, err := b.Run(ctx, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "cancel-early", Spec: testSpec(rootfs, "true")}); !errors.Is(err, errStop) {
		t.Errorf("got %v", err)
	}
}

// TestNoPIDNamespaceLeftovers checks that background processes of a run
// without a PID namespace die with it.
func TestNoPIDNamespaceLeftovers(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, "sleep 1000 >/dev/null & echo $!")
	spec.Linux.Namespaces = spec.Linux.Namespaces[1:]
	_, stdout, _ := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "nopid-bg", Spec: spec})
	pid, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatal(stdout)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.HasPrefix(cmd, []byte("sleep\x001000")) {
			t.Errorf("background sleep %d still runs", pid)
		}
	}
}

func TestStartErrors(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	for _, tc := range []struct {
		name, arg0, want string
	}{
		{"in-path", "no-such-command", `command "no-such-command" not found in the container (PATH=/usr/sbin:/usr/bin:/sbin:/bin)`},
		{"absolute", "/usr/bin/no-such-command", `command "/usr/bin/no-such-command" not found in the container`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "missing-" + tc.name
			_, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: id, Spec: testSpec(rootfs, tc.arg0)})
			if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an exec.ErrNotFound saying %s", err, tc.want)
			}
			t.Log(err)
			checkClean(t, b, id)
		})
	}

	missing := filepath.Join(t.TempDir(), "missing")
	_, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: missing}, ID: "bad-rootfs", Spec: testSpec(missing, "true")})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing rootfs: got %v", err)
	}
	checkClean(t, b, "bad-rootfs")
}

func TestUnsupported(t *testing.T) {
	b, err := New(Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
	}{
		{"terminal", func(s *specs.Spec) { s.Process.Terminal = true }},
		{"seccomp", func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow} }},
		{"cgroupsPath", func(s *specs.Spec) { s.Linux.CgroupsPath = "/elsewhere" }},
		{"no HOME", func(s *specs.Spec) { s.Process.Env = []string{"PATH=/bin"} }},
		{"empty HOME", func(s *specs.Spec) { s.Process.Env = []string{"HOME="} }},
		{"duplicate env", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "HOME=/other") }},
		{"personality flag", func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"NOPE"}}
		}},
		{"unknown capability", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NOPE")
		}},
		{"ambient not permitted", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_CHOWN"} }},
		{"no mount namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}}
		}},
		{"kernel memory", func(s *specs.Spec) {
			//lint:ignore SA1019 the point of the test.
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: ptr(int64(1 << 20))}}
		}},
		{"windows", func(s *specs.Spec) { s.Windows = &specs.Windows{} }},
		{"username", func(s *specs.Spec) { s.Process.User.Username = "root" }},
		{"apparmor", func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" }},
		{"personality lost at exec", func(s *specs.Spec) {
			// Root with more bounding than permitted capabilities gains
			// capabilities at exec, which clears ADDR_NO_RANDOMIZE.
			s.Process.Capabilities.Permitted = []string{"CAP_KILL"}
			s.Linux.Personality = &specs.LinuxPersonality{Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "apparmor" && appArmorEnabled() {
				t.Skip("AppArmor is enabled on this host")
			}
			if tc.name == "seccomp" && seccomp.Enabled {
				t.Skip("built with the seccomp tag: seccomp is applied (see hardening_test.go)")
			}
			spec := testSpec("/nonexistent", "true")
			tc.edit(spec)
			_, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: "/nonexistent"}, ID: "unsupported", Spec: spec})
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("got %v, want an error wrapping errors.ErrUnsupported", err)
			}
		})
	}
	_, err = b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: "/"}, Spec: testSpec("/", "true"), Personality: 0x8})
	if err == nil || errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("personality with domain bits: got %v", err)
	}
}

func TestSpecNotModified(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, "true")
	spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"UNAME26"}}
	before, _ := json.Marshal(spec)
	runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "unmodified", Spec: spec})
	if after, _ := json.Marshal(spec); !bytes.Equal(before, after) {
		t.Errorf("spec changed:\n%s\n%s", before, after)
	}
}

func TestConcurrent(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("concurrent-%d", i)
			spec := sh(rootfs, "cat /proc/sys/kernel/hostname; echo $X >&2; sleep 0.2")
			spec.Hostname = id
			spec.Process.Env = append(spec.Process.Env, "X="+id)
			res, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: id, Spec: spec})
			if !res.Success() || stdout != id+"\n" || stderr != id+"\n" {
				t.Errorf("%s: %+v %q %q", id, res, stdout, stderr)
			}
		}()
	}
	wg.Wait()

	// The same id twice at once: the second is refused, the first runs.
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "twice", Spec: sh(rootfs, "echo up; sleep 1"), Stdout: signalWriter(started)})
		done <- err
	}()
	<-started
	if _, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "twice", Spec: testSpec(rootfs, "true")}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second run with the same id: got %v", err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
	checkClean(t, b, "twice")
}

// signalWriter closes ch on the first write.
type signalWriter chan struct{}

func (s signalWriter) Write(p []byte) (int, error) {
	select {
	case <-s:
	default:
		close(s)
	}
	return len(p), nil
}

// The stale state test runs this test binary as a helper that starts a
// container and is killed with SIGKILL while it runs.
const helperEnv = "REPROBOX_LIBCONTAINER_TEST_HELPER"

func helperMain() {
	stateDir, rootfs, id := os.Getenv(helperEnv), os.Getenv("REPROBOX_TEST_ROOTFS"), os.Getenv("HELPER_ID")
	b, err := New(Config{StateDir: stateDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	spec := sh(rootfs, "echo ready; exec sleep 1000")
	// A build's job: the source overlay, disorderfs over it and a file,
	// all to be removed by the next New.
	_, err = b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: id, Spec: spec, Stdout: os.Stdout, Stderr: os.Stderr,
		Source: sandbox.Source{Dir: os.Getenv("HELPER_SRC")}, BuildPath: "/build/src", FileOrdering: "reverse",
		Files: []sandbox.File{{Path: "/etc/hostname", Mode: 0o644, Data: []byte("stale\n")}}})
	fmt.Fprintln(os.Stderr, "helper run returned:", err)
}

func TestStaleState(t *testing.T) {
	rootfs := testRootfs(t)
	stateDir := t.TempDir()
	const id = "stale"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if _, err := exec.LookPath("disorderfs"); err != nil {
		testenv.Skip(t, "no disorderfs (apt-get install disorderfs): the stale run's FUSE mount is part of the test")
	}
	cmd.Env = append(os.Environ(), helperEnv+"="+stateDir, "REPROBOX_TEST_ROOTFS="+rootfs, "HELPER_ID="+id, "HELPER_SRC="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := io.ReadAll(io.LimitReader(stdout, 6))
	if err != nil || string(line) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	// Another backend on the same directory leaves the live run alone.
	b, err := New(Config{StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := b.Leftovers(id); len(left) == 0 {
		t.Fatal("a live run has no state")
	}
	mounts, _ := mountsUnder(stateDir)
	if !slices.ContainsFunc(mounts, func(m string) bool { return strings.HasSuffix(m, "/src/reverse") }) ||
		!slices.ContainsFunc(mounts, func(m string) bool { return strings.HasSuffix(m, "/src/merged") }) {
		t.Fatalf("the live run lacks its source overlay or disorderfs mount: %v", mounts)
	}

	cmd.Process.Kill()
	cmd.Wait()
	left, _ := b.Leftovers(id)
	t.Logf("after SIGKILL: %v", left)
	if out, _ := exec.Command("pgrep", "-f", "^sleep 1000$").Output(); len(out) > 0 {
		t.Logf("the container still runs: %s", out)
	}
	if len(left) == 0 {
		t.Fatal("nothing left to clean")
	}

	if _, err := New(Config{StateDir: stateDir}); err != nil {
		t.Fatal(err)
	}
	checkClean(t, b, id)
	if m, _ := mountsUnder(stateDir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if out, _ := exec.Command("pgrep", "-f", "^sleep 1000$").Output(); len(out) > 0 {
		t.Errorf("sleep processes left: %s", out)
	}
	for i := 0; ; i++ {
		out, _ := exec.Command("pgrep", "-f", "disorderfs.*"+regexp.QuoteMeta(stateDir)).Output()
		if len(out) == 0 {
			break
		}
		if i == 50 {
			t.Errorf("disorderfs left running: %s", out)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The id can be used again.
	runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: id, Spec: testSpec(rootfs, "true")})
}

func TestUserNamespace(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	spec := sh(rootfs, `id -u; cat /proc/self/uid_map; stat -c '%U %a' /; touch /tmp/x && echo tmp ok`)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	_, stdout, stderr := runJob(t, b, &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "userns", Spec: spec})
	if f := strings.Fields(stdout); strings.Join(f, " ") != "0 0 100000 65536 nobody 755 tmp ok" {
		t.Errorf("got %q; stderr %s", stdout, stderr)
	}

	// A state directory the container's root cannot reach is reported as
	// such.
	dir := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b2, err := New(Config{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b2.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, ID: "userns-private", Spec: spec})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the state directory") {
		t.Errorf("got %v", err)
	}
	checkClean(t, b2, "userns-private")
}
