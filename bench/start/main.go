// Command start measures how long a container running `true` takes from start
// to exit with the libcontainer backend, in process and as a fresh process,
// and with `runc run` on the same root filesystem and spec; and, in process,
// a build's job: the same with a source snapshot overlaid at /build/src and
// six generated files bind-mounted, as the runner's builds have.
//
// Run it as root:
//
//	CGO_ENABLED=1 go build -o /tmp/startbench ./bench/start
//	/tmp/startbench -rootfs /var/tmp/reprobox-test-rootfs -n 20
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

func main() {
	libcontainer.MaybeInit()
	rootfs := flag.String("rootfs", "/var/tmp/reprobox-test-rootfs", "root filesystem to run `true` in")
	n := flag.Int("n", 20, "runs per variant")
	runc := flag.String("runc", "/usr/sbin/runc", "runc binary")
	once := flag.String("once", "", "internal: run once with this state directory and exit")
	flag.Parse()
	log.SetFlags(0)

	if *once != "" {
		if err := runOnce(*once, *rootfs); err != nil {
			log.Fatal(err)
		}
		return
	}
	// Not in /tmp: see libcontainer.New on nested state and program directories.
	tmp, err := os.MkdirTemp("/var/tmp", "startbench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	bundle, cleanup, err := runcBundle(tmp, *rootfs)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	stateDir, runcRoot := filepath.Join(tmp, "state"), filepath.Join(tmp, "runc-root")
	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(filepath.Join(src, "src"), 0o755); err != nil {
		log.Fatal(err)
	}
	for _, f := range []string{"Cargo.toml", "Cargo.lock", "src/main.rs"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	// The variants take turns, so that load from elsewhere on the machine
	// hits them alike.
	times, err := measure(*n, []func(i int) error{
		func(int) error { return runOnce(stateDir, *rootfs) },
		func(int) error { return run(self, "-once", stateDir, "-rootfs", *rootfs) },
		func(i int) error {
			return run(*runc, "--root", runcRoot, "run", "--bundle", bundle, fmt.Sprintf("bench-%d", i))
		},
		func(int) error { return runJob(stateDir, *rootfs, src) },
	})
	if err != nil {
		log.Fatal(err)
	}
	inProc, fresh, runcTimes, job := times[0], times[1], times[2], times[3]
	out, _ := exec.Command(*runc, "--version").Output()
	fmt.Printf("start-to-exit of `true`, median of %d (min, max), after 2 warm-up runs each\n\n", *n)
	fmt.Printf("| variant | median | min | max |\n|---|---|---|---|\n")
	for _, row := range []struct {
		name  string
		times []time.Duration
	}{
		{"libcontainer backend, in process (Backend.Run)", inProc},
		{"libcontainer backend, fresh process (New + Run)", fresh},
		{fmt.Sprintf("`runc run` (%s)", firstLine(out)), runcTimes},
		{"libcontainer backend, in process, a build's job (source overlay, 6 files)", job},
	} {
		fmt.Printf("| %s | %s | %s | %s |\n", row.name, ms(median(row.times)), ms(row.times[0]), ms(row.times[len(row.times)-1]))
	}
}

// spec is the spec both runtimes get: `runc spec` with a read-only root.
func spec(rootfs string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: "1.0.2",
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            []string{"/bin/true"},
			Env:             []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"},
			Cwd:             "/",
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
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
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func runOnce(stateDir, rootfs string) error {
	b, err := libcontainer.New(libcontainer.Config{StateDir: stateDir})
	if err != nil {
		return err
	}
	res, err := b.Run(context.Background(), &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, Spec: spec(rootfs)})
	if err != nil {
		return err
	}
	if !res.Success() {
		return fmt.Errorf("true exited %d", res.ExitCode)
	}
	return nil
}

// runJob runs `true` as a build's job: the source snapshot src at
// /build/src and the six files a build gets (user database, names, the
// time shim's place).
func runJob(stateDir, rootfs, src string) error {
	b, err := libcontainer.New(libcontainer.Config{StateDir: stateDir})
	if err != nil {
		return err
	}
	job := &sandbox.Job{Image: sandbox.Image{Rootfs: rootfs}, Spec: spec(rootfs),
		Source: sandbox.Source{Dir: src}, BuildPath: "/build/src"}
	for _, p := range []string{"/etc/passwd", "/etc/group", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.reprobox/lib/time.so"} {
		job.Files = append(job.Files, sandbox.File{Path: p, Mode: 0o644, Data: []byte(p + "\n")})
	}
	res, err := b.Run(context.Background(), job)
	if err != nil {
		return err
	}
	if !res.Success() {
		return fmt.Errorf("true exited %d", res.ExitCode)
	}
	return nil
}

// runcBundle makes a bundle for runc whose rootfs is an overlay of rootfs, so
// that runc does not create mount points in rootfs itself. It is mounted once
// here; the backend mounts a fresh overlay in every run, inside the measured
// time.
func runcBundle(tmp, rootfs string) (string, func(), error) {
	bundle := filepath.Join(tmp, "bundle")
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(bundle, d), 0o755); err != nil {
			return "", nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", rootfs, bundle, bundle)
	if err := unix.Mount("overlay", filepath.Join(bundle, "rootfs"), "overlay", 0, opts); err != nil {
		return "", nil, fmt.Errorf("mount overlay: %w", err)
	}
	cleanup := func() { unix.Unmount(filepath.Join(bundle, "rootfs"), 0) }
	s := spec(filepath.Join(bundle, "rootfs"))
	s.Linux.CgroupsPath = "/reprobox-bench-runc"
	b, err := json.Marshal(s)
	if err == nil {
		err = os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return bundle, cleanup, nil
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// measure runs each of fs twice to warm up, then n times, taking turns, and
// returns the sorted times of each.
func measure(n int, fs []func(i int) error) ([][]time.Duration, error) {
	times := make([][]time.Duration, len(fs))
	for i := -2; i < n; i++ {
		for j, f := range fs {
			t0 := time.Now()
			if err := f(i + 2); err != nil {
				return nil, err
			}
			if i >= 0 {
				times[j] = append(times[j], time.Since(t0))
			}
		}
	}
	for _, t := range times {
		slices.Sort(t)
	}
	return times, nil
}

func median(t []time.Duration) time.Duration {
	if len(t)%2 == 1 {
		return t[len(t)/2]
	}
	return (t[len(t)/2-1] + t[len(t)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
