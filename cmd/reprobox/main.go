// Command reprobox runs Rust builds in pinned, hermetic OCI containers, rebuilds them
// with the environment perturbed, and names what breaks bit-identical output.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

func main() {
	// The container init re-exec must run before anything else: libcontainer
	// starts this binary as "reprobox init" inside the new namespaces.
	libcontainer.MaybeInit()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// Exit statuses, shared by every command (see the README).
const (
	exitOK             = 0
	exitUnreproducible = 1   // a check found differing output, or a build failed
	exitUsage          = 2   // bad flags, config or input
	exitTool           = 3   // reprobox or the sandbox failed
	exitInterrupted    = 130 // Ctrl-C or SIGTERM, as shells report SIGINT
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

// exitCode is the one place where errors become exit statuses.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "reprobox: interrupted; the build was stopped and its containers, mounts and work directories removed")
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
	return root
}

// subcommands is filled by each command's file in its init function, so that
// commands live in files of their own.
var subcommands []func() *cobra.Command

func defaultDataDir() string {
	if d := os.Getenv("REPROBOX_DATA_DIR"); d != "" {
		return d
	}
	return "/var/lib/reprobox"
}

func dataDir(cmd *cobra.Command) string {
	d, _ := cmd.Flags().GetString("data-dir")
	return d
}
