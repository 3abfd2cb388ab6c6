package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

// TestMain lets the test binary act as reprobox: as the container init when
// libcontainer re-executes it, and as the command itself when a test runs it
// with REPROBOX_RUN_MAIN=1, so the end-to-end tests run the real main.
func TestMain(m *testing.M) {
	libcontainer.MaybeInit()
	if os.Getenv("REPROBOX_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// result is what one reprobox run printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// reprobox runs the command with args in dir.
func reprobox(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}
