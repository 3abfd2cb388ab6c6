package runner

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"
)

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
