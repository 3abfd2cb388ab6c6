package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/reprobox/reprobox/runner"
)

func TestExitCode(t *testing.T) {
	hup := &signalError{sig: syscall.SIGHUP}
	for _, tc := range []struct {
		name             string
		err, interrupted error
		want             int
	}{
		{"success", nil, nil, exitOK},
		{"success despite a late signal", nil, hup, exitOK},
		{"chosen status", &exitError{exitUnreproducible}, nil, exitUnreproducible},
		{"usage", usageErrorf("bad"), nil, exitUsage},
		{"config", fmt.Errorf("x: %w", runner.ErrConfig), nil, exitUsage},
		{"tool", errors.New("sandbox broke"), nil, exitTool},
		{"interrupted, cause in the error", fmt.Errorf("runner: copy: %w", hup), hup, exitInterrupted},
		{"interrupted, any error", errors.New("killed"), hup, exitInterrupted},
		{"cancelled", fmt.Errorf("x: %w", context.Canceled), nil, exitInterrupted},
		// stdout and stderr of the test are not broken pipes: an EPIPE of
		// another pipe is a tool failure.
		{"EPIPE of another pipe", fmt.Errorf("write: %w", syscall.EPIPE), nil, exitTool},
	} {
		if got := exitCode(tc.err, tc.interrupted); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}
