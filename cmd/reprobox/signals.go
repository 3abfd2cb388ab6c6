package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// stopSignals end a run as Ctrl-C does: the context is cancelled, the build's
// container killed, everything the run made removed, and reprobox exits 130.
// SIGHUP is a closed terminal; SIGPIPE is a closed reader of our output
// (`reprobox build 2>&1 | head`), when stdout or stderr is the broken pipe.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE}

// A signalError is the cause of a run's cancellation by a signal.
type signalError struct {
	sig    os.Signal
	output bool // SIGPIPE: our stdout or stderr lost its reader
}

func (e *signalError) Error() string {
	if e.output {
		return fmt.Sprintf("interrupted by %s: the reader of reprobox's output went away", signalName(e.sig))
	}
	return "interrupted by " + signalName(e.sig)
}

func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}

// handleSignals cancels the run with a *signalError on the first of
// stopSignals. Later signals do not skip the cleanup: a second Ctrl-C says
// that reprobox is still removing the build and waits for it (SIGKILL, which
// cannot be caught, leaves the run for the next reprobox command to remove).
//
// SIGPIPE is caught for the whole life of the process, never ignored: with
// Go's default, a write to a broken stdout or stderr kills the process at
// once, before any cleanup; with SIG_IGN, the builds started by libcontainer
// would inherit an ignored SIGPIPE. A SIGPIPE from a pipe of our own (a
// subprocess that exited early) is not a reason to stop: only one on stdout or
// stderr is, which poll tells.
//
// A signal that reprobox was started with ignored stays ignored: `nohup
// reprobox build` keeps building when the terminal closes, and a script's
// background job is not stopped by the terminal's Ctrl-C.
func handleSignals(cancel context.CancelCauseFunc) {
	ch := make(chan os.Signal, 8)
	for _, sig := range stopSignals {
		if sig == syscall.SIGPIPE || !signal.Ignored(sig) {
			signal.Notify(ch, sig)
		}
	}
	go func() {
		stopping := false
		for sig := range ch {
			if sig == syscall.SIGPIPE {
				if stopping || !outputClosed() {
					continue // never write on a SIGPIPE: the write may raise another
				}
				stopping = true
				cancel(&signalError{sig: sig, output: true})
				continue
			}
			if !stopping {
				stopping = true
				cancel(&signalError{sig: sig})
				fmt.Fprintf(os.Stderr, "reprobox: %s: stopping, and removing what this run made (containers, mounts, work directories, partial files)\n", signalName(sig))
				continue
			}
			fmt.Fprintf(os.Stderr, "reprobox: %s again: still removing what this run made; waiting for that to finish (SIGKILL would leave it for the next reprobox command to remove)\n", signalName(sig))
		}
	}()
}

// outputClosed reports whether stdout or stderr is a pipe or socket whose
// reader is gone.
func outputClosed() bool {
	fds := []unix.PollFd{{Fd: 1}, {Fd: 2}}
	n, err := unix.Poll(fds, 0)
	if err != nil || n == 0 {
		return false
	}
	for _, f := range fds {
		if f.Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			return true
		}
	}
	return false
}
