// Command reprobox runs Rust builds in pinned, hermetic OCI containers, rebuilds them
// with the environment perturbed, and names what breaks bit-identical output.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/rootless"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

func main() {
	// The container init re-exec must run before anything else: libcontainer
	// starts this binary as "reprobox init" inside the new namespaces.
	libcontainer.MaybeInit()
	// An ordinary user's reprobox runs in a user namespace of its own.
	enterRootless()

	ctx, cancel := context.WithCancelCause(context.Background())
	handleSignals(cancel)
	err := newRootCmd().ExecuteContext(ctx)
	os.Exit(exitCode(err, context.Cause(ctx)))
}

// Exit statuses, shared by every command (see the README).
const (
	exitOK             = 0
	exitUnreproducible = 1   // a check found differing output, or a build failed
	exitUsage          = 2   // bad flags, config or input
	exitTool           = 3   // reprobox or the sandbox failed
	exitInterrupted    = 130 // SIGINT, SIGTERM, SIGHUP or a closed output, as shells report SIGINT
)

// errUsage marks errors caused by the user's flags, config or input.
var errUsage = errors.New("usage")

// usageErrorf returns an error that exits with status 2.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// exitError carries an exit status chosen by a command after it printed its own
// result (a failed build, an unreproducible check).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode is the one place where errors become exit statuses. interrupted
// is the cause of the run's cancellation (a *signalError), or nil.
func exitCode(err, interrupted error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	var se *signalError
	if errors.Is(err, syscall.EPIPE) && interrupted == nil && outputClosed() {
		// Our stdout or stderr lost its reader before the SIGPIPE handler
		// could say so: the same end, whichever came first.
		interrupted = &signalError{sig: syscall.SIGPIPE, output: true}
	}
	if errors.As(interrupted, &se) || errors.As(err, &se) || errors.Is(err, context.Canceled) {
		why := "interrupted"
		if se != nil {
			why = se.Error()
		}
		fmt.Fprintf(os.Stderr, "reprobox: %s; stopped, and what the run made (containers, mounts, work directories, partial files) removed\n", why)
		return exitInterrupted
	}
	fmt.Fprintln(os.Stderr, "reprobox:", err)
	switch {
	case errors.Is(err, errUsage) || isUsage(err):
		return exitUsage
	default:
		return exitTool
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "reprobox",
		Short: "Hermetic, reproducible Rust builds in pinned OCI images",
		Long: `reprobox runs a Rust build inside an OCI image pinned by digest, with every
environmental input normalized, and hands back its artifacts with their digests.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	root.PersistentFlags().String("data-dir", defaultDataDir(), "where images, root filesystems and run state are kept")
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	commandGroup(root)
	return root
}

// commandGroup makes cmd, which only holds subcommands, refuse an unknown
// subcommand with a usage error: cobra's own error is not one, and a group
// without a Run prints its help and exits 0 whatever follows it.
func commandGroup(cmd *cobra.Command) {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageErrorf("%s (%s --help lists the commands)", msg, cmd.CommandPath())
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// subcommands is filled by each command's file in its init function, so that
// commands live in files of their own.
var subcommands []func() *cobra.Command

func defaultDataDir() string {
	if d := os.Getenv("REPROBOX_DATA_DIR"); d != "" {
		return d
	}
	if rootless.Rootless() {
		return rootless.DataHome()
	}
	return "/var/lib/reprobox"
}

// dataDir is the data directory, made absolute: the backend bind-mounts
// paths under it, and a mount source must be absolute.
func dataDir(cmd *cobra.Command) string {
	d, _ := cmd.Flags().GetString("data-dir")
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return d
}
