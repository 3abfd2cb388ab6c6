package libcontainer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/sandbox"
)

// TestJobSourceFilesCollect: the source appears writable at the build path
// while the snapshot is never written, the files appear read-only with their
// modes, and Collect sees the tree as the build left it before the run's
// state goes.
func TestJobSourceFilesCollect(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "input"), []byte("source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := &sandbox.Job{
		ID: "source", Image: sandbox.Image{Rootfs: rootfs}, Source: sandbox.Source{Dir: src}, BuildPath: "/build/src",
		Files: []sandbox.File{
			{Path: "/etc/hostname", Mode: 0o644, Data: []byte("given\n")},
			{Path: "/.reprobox/lib/tool", Mode: 0o755, Data: []byte("#!/bin/sh\necho tool ran\n")},
		},
		Spec: sh(rootfs, `set -e; cd /build/src; cat input; echo out > output; rm input
			cat /etc/hostname; /.reprobox/lib/tool; stat -c %a /.reprobox/lib/tool
			echo x >> /etc/hostname 2>/dev/null || echo files read-only`),
	}
	var tree []string
	var collected *sandbox.Result
	job.Collect = func(ctx context.Context, res *sandbox.Result, dir string) error {
		collected = res
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			tree = append(tree, e.Name())
		}
		out, err := os.ReadFile(filepath.Join(dir, "output"))
		if err != nil || string(out) != "out\n" {
			t.Errorf("output in the collected tree: %q, %v", out, err)
		}
		if left, err := b.Leftovers(job.ID); err != nil || len(left) == 0 {
			t.Errorf("Collect called after the run's state went: %v, %v", left, err)
		}
		return nil
	}
	res, stdout, stderr := runJob(t, b, job)
	if !res.Success() {
		t.Fatalf("%+v %s", res, stderr)
	}
	if want := "source\ngiven\ntool ran\n755\nfiles read-only\n"; stdout != want {
		t.Errorf("got %q, want %q", stdout, want)
	}
	if collected != res || strings.Join(tree, ",") != "output" {
		t.Errorf("collected %v with the tree %q, want the result and [output]", collected, tree)
	}
	if data, err := os.ReadFile(filepath.Join(src, "input")); err != nil || string(data) != "source\n" {
		t.Errorf("the source snapshot changed: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(src, "output")); err == nil {
		t.Error("the build wrote into the source snapshot")
	}

	// An error from Collect is Run's, and the run still cleans up.
	errCollect := errors.New("collect failed")
	job.ID, job.Collect = "source-err", func(context.Context, *sandbox.Result, string) error { return errCollect }
	if _, err := b.Run(context.Background(), job); !errors.Is(err, errCollect) {
		t.Errorf("Run returned %v, want the Collect error", err)
	}
	checkClean(t, b, job.ID)
}

// TestJobDiskLimit: a job writing past DiskBytes into its build tree is
// killed and its result says so; one that writes past it faster than the
// watchdog looks is flagged when it ends.
func TestJobDiskLimit(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	for _, tc := range []struct{ id, script string }{
		{"disk-slow", "cd /build/src; i=0; while true; do head -c 1048576 /dev/urandom > f$i; i=$((i+1)); sleep 0.05; done"},
		{"disk-quick", "cd /build/src; head -c 16777216 /dev/urandom > big"},
	} {
		job := &sandbox.Job{ID: tc.id, Image: sandbox.Image{Rootfs: rootfs}, Source: sandbox.Source{Dir: t.TempDir()},
			BuildPath: "/build/src", DiskBytes: 8 << 20, Spec: sh(rootfs, tc.script)}
		res, _, stderr := runJob(t, b, job)
		if !res.DiskExceeded {
			t.Errorf("%s: %+v, want DiskExceeded (%s)", tc.id, res, stderr)
		}
		if tc.id == "disk-slow" && res.Signal != 9 {
			t.Errorf("%s: %+v, want killed", tc.id, res)
		}
	}
	job := &sandbox.Job{ID: "disk-ok", Image: sandbox.Image{Rootfs: rootfs}, Source: sandbox.Source{Dir: t.TempDir()},
		BuildPath: "/build/src", DiskBytes: 8 << 20, Spec: sh(rootfs, "head -c 1048576 /dev/zero > /build/src/small")}
	if res, _, _ := runJob(t, b, job); res.DiskExceeded || !res.Success() {
		t.Errorf("within the limit: %+v", res)
	}
}

// TestJobInvalid: job data this backend cannot run is refused before
// anything is made.
func TestJobInvalid(t *testing.T) {
	rootfs := testRootfs(t)
	b := newBackend(t)
	src := t.TempDir()
	for _, tc := range []struct {
		name        string
		edit        func(*sandbox.Job)
		unsupported bool
	}{
		{"no rootfs", func(j *sandbox.Job) { j.Image.Rootfs = "" }, false},
		{"relative rootfs", func(j *sandbox.Job) { j.Image.Rootfs = "rootfs" }, false},
		{"comma in rootfs", func(j *sandbox.Job) { j.Image.Rootfs = "/a,b" }, true},
		{"source without build path", func(j *sandbox.Job) { j.BuildPath = "" }, false},
		{"build path without source", func(j *sandbox.Job) { j.Source.Dir = "" }, false},
		{"relative build path", func(j *sandbox.Job) { j.BuildPath = "build" }, false},
		{"unclean build path", func(j *sandbox.Job) { j.BuildPath = "/build/../etc" }, false},
		{"comma in source", func(j *sandbox.Job) { j.Source.Dir = "/a,b" }, true},
		{"unknown ordering", func(j *sandbox.Job) { j.FileOrdering = "shuffle" }, false},
		{"relative file", func(j *sandbox.Job) { j.Files = []sandbox.File{{Path: "etc/x", Mode: 0o644}} }, false},
		{"file mode", func(j *sandbox.Job) { j.Files = []sandbox.File{{Path: "/etc/x", Mode: os.ModeDir | 0o755}} }, false},
		{"file twice", func(j *sandbox.Job) {
			j.Files = []sandbox.File{{Path: "/etc/x", Mode: 0o644}, {Path: "/etc/x", Mode: 0o644}}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &sandbox.Job{ID: "invalid", Image: sandbox.Image{Rootfs: rootfs}, Source: sandbox.Source{Dir: src},
				BuildPath: "/build/src", Spec: testSpec(rootfs, "true")}
			tc.edit(job)
			var e bytes.Buffer
			job.Stderr = &e
			_, err := b.Run(context.Background(), job)
			if err == nil || errors.Is(err, errors.ErrUnsupported) != tc.unsupported {
				t.Errorf("got %v, want an error (unsupported: %v)", err, tc.unsupported)
			}
			checkClean(t, b, job.ID)
		})
	}
}
