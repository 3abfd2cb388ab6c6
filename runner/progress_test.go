package runner

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStepWriter(t *testing.T) {
	var w stepWriter
	for _, chunk := range []string{
		"   Compiling libc v0.2", ".1 (/build/src)\nwarning: x\n",
		"Building stage1 compiler artifacts (x86_64-unknown-linux-gnu)\n",
		"some noise\nno newline at end",
	} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := w.Step(), "Building stage1 compiler artifacts (x86_64-unknown-linux-gnu)"; got != want {
		t.Errorf("step %q, want %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the reporting goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatchReportsStepUntilStopped(t *testing.T) {
	var out syncBuffer
	var clock sync.Mutex
	now := time.Unix(0, 0)
	tick := func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		now = now.Add(90 * time.Second)
		return now
	}
	steps := &stepWriter{}
	stop := watch(&out, time.Millisecond, tick, "reprobox: build 3 (control)", steps)
	for !strings.Contains(out.String(), "starting") {
		time.Sleep(time.Millisecond)
	}
	steps.Write([]byte("Dist rust-std-1.85.0\n"))
	for !strings.Contains(out.String(), ": Dist rust-std-1.85.0\n") {
		time.Sleep(time.Millisecond)
	}
	stop()
	stop() // twice is harmless
	got := out.String()
	time.Sleep(20 * time.Millisecond)
	if out.String() != got {
		t.Errorf("reports after stop:\n%s", out.String())
	}
	first := strings.SplitN(got, "\n", 2)[0]
	if first != "reprobox: build 3 (control): 1m30s: starting" {
		t.Errorf("first line %q", first)
	}
}
