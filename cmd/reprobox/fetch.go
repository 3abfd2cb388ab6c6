package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/runner"
)

func init() { subcommands = append(subcommands, newFetchCmd) }

func newFetchCmd() *cobra.Command {
	var generate bool
	cmd := &cobra.Command{
		Use:   "fetch [DIR]",
		Short: "Download and verify the crates Cargo.lock pins, into the crate cache",
		Long: `fetch runs the fetch phase that build, check, verify and bisect run before
their builds, alone: every registry crate that DIR/Cargo.lock (DIR: default .)
names is downloaded once from the registry that the cargo configuration names
(crates.io's sparse index, or the mirror a [source.crates-io] replace-with
points to, sparse+http(s) URLs; proxies from HTTP(S)_PROXY or http.proxy;
net.offline honoured) into <data-dir>/cache/crates/sha256/CHECKSUM.crate, and
checked against the lock's sha256. A crate already in the cache is hashed again
and fetched anew when it changed. The builds then read the crates, vendored,
from their own copy of the source, with no network.

Git dependencies are fetched at the commit Cargo.lock pins, with the host's git
(no hooks, no prompt), into <data-dir>/cache/git/, and checked against that
commit: the files are hashed as git hashes its objects, and the tree they make
must be the one the commit names. A cached checkout that changed is fetched
anew. Submodules are not fetched (a package holding one is refused), nor are
packages whose manifest inherits fields from its workspace.

The fetched crates are printed on stdout, one "NAME VERSION SHA256" line each
(for a git dependency, "NAME VERSION COMMIT"), sorted. A project whose cargo
config replaces crates.io (or a git source) with a directory (already vendored)
is left as it is.

--generate-lock first runs cargo generate-lockfile (the host's cargo, with your
registry configuration) for a project without Cargo.lock, then fetches; keep the
written Cargo.lock with the project.

Exit status: 0 fetched, 2 usage or config error (no Cargo.lock with registry
dependencies, a checksum that does not match the lock, a locked git commit the
repository does not have), 3 a registry or git repository could not be reached
or reprobox failed.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("at most one project directory, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if st, err := os.Stat(dir); err != nil {
				return usageErrorf("project directory %s: %v", dir, errors.Unwrap(err))
			} else if !st.IsDir() {
				return usageErrorf("project %s is not a directory: give the directory that holds Cargo.toml", dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "Cargo.toml")); err != nil {
				return usageErrorf("no Cargo.toml in %s: fetch reads a cargo project's Cargo.lock", dir)
			}
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			if generate {
				if err := runner.GenerateLock(ctx, dir, stderr); err != nil {
					return err
				}
				fmt.Fprintf(stderr, "reprobox: wrote %s: keep it with the project\n", filepath.Join(dir, "Cargo.lock"))
			}
			if _, err := os.Stat(filepath.Join(dir, "Cargo.lock")); err != nil {
				return usageErrorf("no Cargo.lock in %s: a lock is what pins the crates to fetch: run cargo generate-lockfile, or pass --generate-lock", dir)
			}
			dd := dataDir(cmd)
			r := &runner.Runner{CrateCache: filepath.Join(dd, "cache", "crates"), Progress: stderr}
			deps, err := r.Fetch(ctx, dir)
			if err != nil {
				return err
			}
			if len(deps) == 0 {
				fmt.Fprintf(stderr, "reprobox: nothing to fetch: Cargo.lock names no registry crate or git dependency, or the project is vendored\n")
			}
			w := cmd.OutOrStdout()
			for _, d := range deps {
				pin := d.Checksum
				if d.Commit != "" {
					pin = d.Commit
				}
				if _, err := fmt.Fprintf(w, "%s %s %s\n", d.Name, d.Version, pin); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&generate, "generate-lock", false, "write Cargo.lock first with cargo generate-lockfile (only where there is none)")
	return cmd
}
