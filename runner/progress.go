package runner

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Watch reports a running build's elapsed time and current step on w every
// `every` (30 s when zero), each line starting with prefix:
//
//	reprobox: build: 9m0s: Dist rust-std-1.85.0-x86_64-unknown-linux-gnu
//
// The build's output must also be written to the returned writer, which is
// where the step comes from; stop ends the reports. A build's own timers may
// read the frozen clock (x.py prints "Build completed successfully in
// 0:00:00"), so these lines are the only elapsed time a user sees.
func Watch(w io.Writer, every time.Duration, prefix string) (output io.Writer, stop func()) {
	steps := &stepWriter{}
	if every <= 0 {
		every = 30 * time.Second
	}
	return steps, watch(w, every, time.Now, prefix, steps)
}

func watch(w io.Writer, every time.Duration, now func() time.Time, prefix string, steps *stepWriter) (stop func()) {
	start := now()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				select {
				case <-done: // both ready: stopping wins
					return
				default:
				}
				step := steps.Step()
				if step == "" {
					step = "starting"
				}
				fmt.Fprintf(w, "%s: %s: %s\n", prefix, now().Sub(start).Round(time.Second), step)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited // nothing is written once stop has returned
	}
}

// stepWriter remembers the last line a build printed that looks like a step
// of the build ("Compiling foo", x.py's "Building stage1 compiler…", "Dist
// rust-src"), so that long builds can report where they are.
type stepWriter struct {
	mu      sync.Mutex
	partial []byte
	step    string
}

func (w *stepWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if s := stepOf(string(w.partial[:i])); s != "" {
			w.step = s
		}
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64<<10 {
		w.partial = w.partial[:0] // a very long line without newline is no step
	}
	return len(p), nil
}

// Step is the last step seen.
func (w *stepWriter) Step() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.step
}

// stepWords start the lines cargo and x.py print for each step.
var stepWords = []string{"Compiling", "Building", "Dist", "Documenting", "Finished", "Copying",
	"Assembling", "Uplifting", "Installing", "Checking", "Running", "Testing", "Packaging", "Linking"}

func stepOf(line string) string {
	line = strings.TrimSpace(strings.TrimRight(line, "\r"))
	for _, w := range stepWords {
		if strings.HasPrefix(line, w+" ") || line == w {
			if len(line) > 100 {
				cut := 100
				for cut > 0 && !utf8.RuneStart(line[cut]) {
					cut--
				}
				line = line[:cut] + "…"
			}
			return line
		}
	}
	return ""
}
