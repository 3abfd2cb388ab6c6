package diskwatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file counts what it really uses.
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Link(filepath.Join(dir, "sparse"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	got := Usage(dir)
	if got < 1<<20 || got > 2<<20 {
		t.Errorf("Usage = %d, want about 1 MiB (sparse, hard link counted once)", got)
	}
}

// TestDiskUsageFollowsNoLink: links in the build's tree (to a host
// directory, to a host file) add nothing: the watchdog never walks or stats
// through them.
func TestDiskUsageFollowsNoLink(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "big"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := Usage(dir)
	if err := os.Symlink(host, filepath.Join(dir, "hostdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(host, "big"), filepath.Join(dir, "hostfile")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(dir, "a", "b", "root")); err != nil {
		t.Fatal(err)
	}
	if got := Usage(dir); got-base > 1<<20 {
		t.Errorf("Usage counted %d bytes more through links to the host (want only the links and directories)", got-base)
	}
	if got := Usage(filepath.Join(dir, "hostdir")); got != 0 {
		t.Errorf("Usage of a link to a directory = %d, want 0 (not followed)", got)
	}
}

// TestWatch: a directory that grows past the limit is reported once, with
// what it holds; one within its limit never is, and stop ends the watch.
func TestWatch(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "f"), make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 2)
	stop := Watch(context.Background(), 1<<20, func(used int64) { got <- used }, dir, other)
	select {
	case used := <-got:
		if used < 2<<20 {
			t.Errorf("reported %d bytes, want at least 2 MiB", used)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("2 MiB over two directories not reported against a 1 MiB limit")
	}
	stop()
	if len(got) != 0 {
		t.Error("reported twice")
	}
	stop = Watch(context.Background(), 8<<20, func(used int64) { got <- used }, dir, other)
	time.Sleep(1500 * time.Millisecond)
	stop()
	if len(got) != 0 {
		t.Errorf("reported %d bytes within the limit", <-got)
	}
}

// TestDiskUsageTooDeep: a build that nests directories deeper than the walk
// descends (relative mkdir in a loop, past PATH_MAX) and writes at the bottom
// cannot hide it: the tree counts as Unmeasurable, over any limit.
func TestDiskUsageTooDeep(t *testing.T) {
	dir := t.TempDir()
	if got := Usage(dir); got >= Unmeasurable {
		t.Fatalf("an empty tree is Unmeasurable")
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxDepth+5; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		sub, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = sub
	}
	f, err := unix.Openat(fd, "hidden", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(f, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	unix.Close(f)
	unix.Close(fd)
	if got := Usage(dir); got != Unmeasurable {
		t.Errorf("Usage of a tree %d directories deep = %d, want Unmeasurable", maxDepth+5, got)
	}
	// t.TempDir's cleanup cannot remove a tree this deep by path.
	t.Cleanup(func() { exec.Command("rm", "-rf", dir).Run() })
}
