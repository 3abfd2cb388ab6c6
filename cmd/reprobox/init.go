package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/runner"
)

func init() { subcommands = append(subcommands, newInitCmd) }

func newInitCmd() *cobra.Command {
	var (
		force bool
		image string
	)
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a pinned reprobox.toml for the cargo project in DIR",
		Long: `init writes DIR/reprobox.toml (DIR: default .) for the cargo project there, with
what build and check use when there is no reprobox.toml, written down and pinned:

  image      the default image reprobox/rust (or --image), resolved in the local
             store to NAME@sha256:…, so the next runs use exactly that image
  command    cargo build --release --locked --offline (without --locked when the
             project has no Cargo.lock yet, as after cargo new; a comment says so)
  artifacts  target/release/NAME for every bin target of the package or of the
             workspace's members (cargo metadata --offline --no-deps, run with the
             host's cargo); a project without bin targets: its libraries' files
             (libNAME.rlib, .so, .a)

Each key is explained by a comment. An existing reprobox.toml is never
overwritten unless --force is given. The path of the written file is printed on
stdout.

Exit status: 0 written, 2 usage error (no Cargo.toml, reprobox.toml exists, the
image is not in the store, cargo metadata failed), 3 reprobox failed.`,
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
			return runInit(cmd.Context(), cmd, dir, image, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing reprobox.toml")
	cmd.Flags().StringVar(&image, "image", runner.DefaultImage, "image to pin (NAME or NAME@sha256:…), resolved in the local store")
	return cmd
}

func runInit(ctx context.Context, cmd *cobra.Command, dir, image string, force bool) error {
	if st, err := os.Stat(dir); err != nil {
		return usageErrorf("project directory %s: %v", dir, errors.Unwrap(err))
	} else if !st.IsDir() {
		return usageErrorf("project %s is not a directory: give the directory that holds Cargo.toml", dir)
	}
	path := filepath.Join(dir, runner.ConfigFile)
	if _, err := os.Lstat(path); err == nil && !force {
		return usageErrorf("%s exists: init does not overwrite it (pass --force to replace it)", path)
	}
	p, err := runner.DetectCargo(ctx, dir, true)
	if errors.Is(err, runner.ErrNoProject) {
		return usageErrorf("no Cargo.toml in %s: init writes a config for a cargo project; for any other build write %s by hand (image, command, artifacts; see reprobox build --help)", dir, runner.ConfigFile)
	} else if err != nil {
		return err
	}
	ref, err := pinImage(cmd, image)
	if err != nil {
		return err
	}
	data, err := renderConfig(image, ref, p)
	if err != nil {
		return err
	}
	if force {
		err = atomicfile.WriteFile(path, data, 0o644)
	} else {
		err = writeNew(path, data)
	}
	if err != nil {
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	// What was written must load as the config it stands for.
	cfg, _, err := runner.LoadConfig(dir)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return fmt.Errorf("init: the written %s does not load: %w (a reprobox bug: please report it)", path, errors.Unwrap(err))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "reprobox: wrote %s: image %s, command %s, artifacts %s (%s)\n",
		path, ref, strings.Join(p.Command, " "), strings.Join(p.Artifacts, " "), p.From)
	_, err = fmt.Fprintln(cmd.OutOrStdout(), path)
	return err
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return usageErrorf("%s exists: init does not overwrite it (pass --force to replace it)", path)
	} else if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// pinImage resolves an image reference in the local store to NAME@sha256:….
func pinImage(cmd *cobra.Command, image string) (string, error) {
	store, err := images.Open(dataDir(cmd))
	if err != nil {
		return "", err
	}
	img, err := store.Resolve(image)
	if errors.Is(err, images.ErrNotFound) {
		ref, _ := images.ParseReference(image)
		return "", fmt.Errorf("image %s: %w in %s; %s", image, err, store.Dir(), images.WhereFrom(ref))
	} else if err != nil {
		return "", fmt.Errorf("image %s: %w", image, err)
	}
	return img.Reference().String(), nil
}

// renderConfig is the commented reprobox.toml for a cargo project.
func renderConfig(image, ref string, p *runner.CargoProject) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# reprobox.toml, written by `reprobox init` for this cargo project.\n\n")
	fmt.Fprintf(&b, "# Every build runs in this image, pinned by its digest (%s as found in the\n# local store by reprobox init).\n", image)
	if err := tomlKey(&b, "image", ref); err != nil {
		return nil, err
	}
	if p.Locked {
		b.WriteString("\n# The build: release profile, the dependencies exactly as Cargo.lock pins\n# them (--locked), no network (--offline).\n")
	} else {
		b.WriteString("\n# The build: release profile, no network (--offline). There was no Cargo.lock,\n" +
			"# so cargo writes one inside each build from what it reaches offline: run\n" +
			"# `cargo generate-lockfile`, keep Cargo.lock, and add \"--locked\" to pin the\n# dependencies.\n")
	}
	if err := tomlKey(&b, "command", p.Command); err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "\n# What the build makes and check compares: the %s of the package\n# (cargo metadata), relative to this directory.\n", p.From)
	if err := tomlKey(&b, "artifacts", p.Artifacts); err != nil {
		return nil, err
	}
	b.WriteString("\n# Optional: source_date_epoch, cpus, env, timeout, exclude, vary, max_output (see the README).\n")
	return b.Bytes(), nil
}

// tomlKey writes key = value with the TOML encoder, which quotes as TOML does.
func tomlKey(w io.Writer, key string, value any) error {
	return toml.NewEncoder(w).Encode(map[string]any{key: value})
}

// autoconfigure fills what a project without reprobox.toml left unset after
// the flags: for a cargo project the default image (pinned here), the cargo
// command and the package's artifacts, announced on stderr.
func autoconfigure(cmd *cobra.Command, dir string, cfg *runner.Config) error {
	if cfg.Image != "" && len(cfg.Command) > 0 && len(cfg.Artifacts) > 0 {
		return nil
	}
	p, err := runner.DetectCargo(cmd.Context(), dir, len(cfg.Artifacts) == 0)
	if errors.Is(err, runner.ErrNoProject) {
		return usageErrorf("%s has neither %s nor Cargo.toml: in a cargo project, run reprobox in its directory (defaults apply; reprobox init writes them down); for any other build write %s (image, command, artifacts) or give --image, --artifact and the command after --",
			dir, runner.ConfigFile, runner.ConfigFile)
	} else if err != nil {
		return err
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "reprobox: no %s in %s: building the cargo project with defaults (reprobox init writes them to %s, pinned):\n", runner.ConfigFile, dir, runner.ConfigFile)
	if cfg.Image == "" {
		if cfg.Image, err = pinImage(cmd, runner.DefaultImage); err != nil {
			return err
		}
		fmt.Fprintf(w, "reprobox:   image     %s (the default image %s, resolved in %s)\n", cfg.Image, runner.DefaultImage, dataDir(cmd))
	}
	if len(cfg.Command) == 0 {
		cfg.Command = p.Command
		fmt.Fprintf(w, "reprobox:   command   %s\n", strings.Join(cfg.Command, " "))
		if !p.Locked {
			fmt.Fprintf(w, "reprobox:   no Cargo.lock: the build runs without --locked and cargo writes a lock inside each build from what it reaches offline; run cargo generate-lockfile and keep Cargo.lock to pin the dependencies\n")
		}
	}
	if len(cfg.Artifacts) == 0 {
		cfg.Artifacts = p.Artifacts
		fmt.Fprintf(w, "reprobox:   artifacts %s (the %s, from cargo metadata)\n", strings.Join(cfg.Artifacts, " "), p.From)
	}
	return nil
}
