package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// statusLine turns progress lines into one live status line on a terminal:
// each line replaces the last, except lines that report a failure, which
// stay. Done ends the status line. Without a terminal, lines pass through.
type statusLine struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	live    bool // a status line is on screen
}

func newStatusLine(w io.Writer) io.Writer {
	if !isTerminal(w) {
		return w
	}
	return &statusLine{w: w}
}

func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(s.partial[:i])
		s.partial = s.partial[i+1:]
		if strings.Contains(line, "failed") {
			_, err := io.WriteString(s.w, "\r\x1b[K"+line+"\n")
			s.live = false
			if err != nil {
				return 0, err
			}
			continue
		}
		if _, err := io.WriteString(s.w, "\r\x1b[K"+line); err != nil {
			return 0, err
		}
		s.live = true
	}
}

// done ends a live status line with a newline.
func doneStatus(w io.Writer) {
	if s, ok := w.(*statusLine); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.live {
			io.WriteString(s.w, "\n")
			s.live = false
		}
	}
}
