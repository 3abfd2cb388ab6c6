package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/human"
	"github.com/reprobox/reprobox/internal/jsonout"
)

func init() { subcommands = append(subcommands, newImageCmd) }

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, import, export, push, pull, list, inspect and remove pinned images",
		Long: `image manages the local image store, an OCI image layout in the data directory
(--data-dir), with root filesystems unpacked on first use and cached by digest.

Exit status: 0 success, 1 a build from a lock gave another digest, 2 usage
error (bad flags, an unknown or malformed reference, an invalid or hostile image,
a registry that cannot be reached, refuses the credentials or lacks the image),
3 failure of reprobox itself.`,
	}
	cmd.AddCommand(newImageBuildCmd(), newImageImportCmd(), newImageLsCmd(), newImageInspectCmd(), newImageRmCmd(),
		newImagePushCmd(), newImagePullCmd(), newImageExportCmd())
	commandGroup(cmd)
	return cmd
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s needs %s, got %d arguments", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// completeImages completes stored image names.
func completeImages(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := images.Open(dataDir(cmd))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, _ := s.List()
	var names []string
	for _, img := range list {
		names = append(names, img.Reference().String())
		if img.Name != "" {
			names = append(names, img.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// imageBuildOptions are the parsed flags of "reprobox image build".
type imageBuildOptions struct {
	dataDir         string
	name            string
	packages        []string
	sourceDateEpoch int64
	mirror          string
	securityMirror  string
	ifChanged       bool
	lockFlags
}

func newImageBuildCmd() *cobra.Command {
	var o imageBuildOptions
	cmd := &cobra.Command{
		Use:   "build [--name N] [--package P]... [--source-date-epoch N] | --lock FILE",
		Short: "Build the Rust image from Debian packages with mmdebstrap",
		Long: `image build makes an image from Debian bookworm (with bookworm-updates and
bookworm-security) using mmdebstrap --mode=root --variant=minbase, with
` + strings.Join(images.BasePackages, ", ") + `, and the locales ` + strings.Join(images.Locales, " and ") + `.
--package adds packages (NAME or NAME=VERSION). It needs root and the Debian mirror.

The build is reproducible: the same options and the same archive contents give
the same digest. Progress goes to stderr; the last line on stdout is the pinned
reference, NAME@sha256:…. The image NAME had before stays in the store,
untagged, so configs pinned to it keep building (image rm sha256:… removes it).

` + lockHelp,
		Example: `  reprobox image build
  reprobox image build --name reprobox/rust-ripgrep --package ripgrep
  reprobox image build --lock rust.lock.json
  reprobox image build --lock rust.lock.json \
      --mirror https://snapshot.debian.org/archive/debian/20261130T000000Z \
      --security-mirror https://snapshot.debian.org/archive/debian-security/20261130T000000Z`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.dataDir = dataDir(cmd)
			return runImageBuild(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.name, "name", images.DefaultName, "name to store the image under")
	fl.StringArrayVar(&o.packages, "package", nil, "extra Debian package to install (repeatable)")
	fl.Int64Var(&o.sourceDateEpoch, "source-date-epoch", images.DefaultSourceDateEpoch, "SOURCE_DATE_EPOCH: clamps every timestamp, and the image's creation time")
	fl.StringVar(&o.mirror, "mirror", images.DefaultMirror, "Debian archive URL")
	fl.StringVar(&o.securityMirror, "security-mirror", images.DefaultSecurityMirror, "Debian security archive URL")
	fl.BoolVar(&o.ifChanged, "if-changed", false, "build only when NAME is missing or was built from another definition (packages, locales, suites, mirrors, epoch) than these options give; else print its reference")
	o.lockFlags.add(cmd)
	return cmd
}

func runImageBuild(ctx context.Context, stdout, stderr io.Writer, o imageBuildOptions) error {
	if o.sourceDateEpoch <= 0 {
		return usageErrorf("--source-date-epoch must be positive, got %d", o.sourceDateEpoch)
	}
	s, err := images.Open(o.dataDir)
	if err != nil {
		return err
	}
	bo := images.BuildOptions{
		Name:            o.name,
		Packages:        o.packages,
		SourceDateEpoch: o.sourceDateEpoch,
		Mirror:          o.mirror,
		SecurityMirror:  o.securityMirror,
		Progress:        stderr,
	}
	if err := o.lockFlags.apply(&bo); err != nil {
		return err
	}
	if o.ifChanged {
		if bo.Lock != nil {
			return usageErrorf("--if-changed compares an image's definition; a build from --lock is compared by its digest")
		}
		img, err := s.Resolve(o.name)
		switch {
		case err == nil && images.Current(img, bo) == nil:
			fmt.Fprintf(stderr, "%s is current (same packages, locales, suites, mirrors and epoch): not rebuilt\n", o.name)
			fmt.Fprintln(stdout, img.Reference())
			return nil
		case err == nil:
			fmt.Fprintf(stderr, "%s was built from another definition (%v): building it again\n", o.name, images.Current(img, bo))
		}
	}
	img, err := images.Build(ctx, s, bo)
	return o.lockFlags.finish(stdout, s, img, err)
}

func newImageImportCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import PATH [--name N]",
		Short: "Import an OCI layout, an OCI archive or a docker save archive",
		Long: `image import adds the linux/amd64 images of PATH to the store: an OCI image
layout directory, an OCI archive (a tar of a layout, possibly gzipped), or a
docker save archive. Every blob is verified against its digest, and nothing is
stored unless all are good. OCI manifests keep their digests; Docker manifests
are converted to OCI, which gives them new ones.

Names come from the source; --name replaces them (the source must then hold one
image). Prints the pinned reference of each imported image. An image a name had
before stays in the store, untagged, so configs pinned to it keep building.`,
		Args: exactArgs(1, "one PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageImport(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dataDir(cmd), args[0], name)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name to store the image under (default: the name in the source)")
	return cmd
}

func runImageImport(ctx context.Context, stdout, stderr io.Writer, dir, path, name string) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "reprobox: importing %s, verifying every blob\n", path)
	imgs, err := s.Import(ctx, path, name)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if _, err := fmt.Fprintln(stdout, img.Reference()); err != nil {
			return err
		}
	}
	return nil
}

// imageSummary is what ls prints for an image. Fields are in alphabetical
// order of their JSON keys, so the output has sorted keys.
type imageSummary struct {
	Created   string        `json:"created,omitempty"`
	Digest    digest.Digest `json:"digest"`
	Layers    int           `json:"layers"`
	Name      string        `json:"name"`
	Reference string        `json:"reference"`
	Size      int64         `json:"size"`
}

func summarize(img images.Image) imageSummary {
	s := imageSummary{
		Digest:    img.Digest,
		Layers:    len(img.Manifest.Layers),
		Name:      img.Name,
		Reference: img.Reference().String(),
		Size:      img.Size,
	}
	if img.Config.Created != nil {
		s.Created = img.Config.Created.UTC().Format(time.RFC3339)
	}
	return s
}

func newImageLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls [--json]",
		Aliases: []string{"list"},
		Short:   "List the stored images",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runImageLs(cmd.OutOrStdout(), dataDir(cmd), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func runImageLs(stdout io.Writer, dir string, asJSON bool) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	list, err := s.List()
	if err != nil {
		return err
	}
	sums := make([]imageSummary, 0, len(list))
	for _, img := range list {
		sums = append(sums, summarize(img))
	}
	if asJSON {
		return jsonout.Write(stdout, sums)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED")
	for _, s := range sums {
		name := s.Name
		if name == "" {
			name = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, s.Digest, human.Bytes(s.Size), s.Created)
	}
	return tw.Flush()
}

func newImageInspectCmd() *cobra.Command {
	var asJSON, printLock bool
	cmd := &cobra.Command{
		Use:               "inspect REF [--json]",
		Short:             "Show an image's manifest, config and labels",
		Long:              `image inspect verifies and shows a stored image. REF is NAME, NAME@sha256:… or sha256:….`,
		Args:              exactArgs(1, "one image reference"),
		ValidArgsFunction: completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			if printLock {
				return runImageInspectLock(cmd.OutOrStdout(), dataDir(cmd), args[0])
			}
			return runImageInspect(cmd.OutOrStdout(), dataDir(cmd), args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reference, manifest and config as JSON")
	cmd.Flags().BoolVar(&printLock, "lock", false, "print the image's lock (images made by image build) instead")
	return cmd
}

func runImageInspect(stdout io.Writer, dir, ref string, asJSON bool) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	img, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	if asJSON {
		return jsonout.Write(stdout, map[string]any{
			"name":      img.Name,
			"digest":    img.Digest,
			"reference": img.Reference().String(),
			"size":      img.Size,
			"manifest":  img.Manifest,
			"config":    img.Config,
		})
	}
	sum := summarize(img)
	w := &bytes.Buffer{}
	fmt.Fprintf(w, "Reference: %s\n", sum.Reference)
	fmt.Fprintf(w, "Size:      %s (%d bytes)\n", human.Bytes(img.Size), img.Size)
	fmt.Fprintf(w, "Created:   %s\n", sum.Created)
	fmt.Fprintf(w, "Platform:  %s/%s\n", img.Config.OS, img.Config.Architecture)
	fmt.Fprintf(w, "Config:    %s\n", img.Manifest.Config.Digest)
	fmt.Fprintln(w, "Layers:")
	for i, l := range img.Manifest.Layers {
		fmt.Fprintf(w, "  %s  %s  %s\n", l.Digest, human.Bytes(l.Size), l.MediaType)
		if i < len(img.Config.RootFS.DiffIDs) {
			fmt.Fprintf(w, "    diff_id %s\n", img.Config.RootFS.DiffIDs[i])
		}
	}
	if env := img.Config.Config.Env; len(env) > 0 {
		fmt.Fprintln(w, "Env:")
		for _, e := range env {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if labels := img.Config.Config.Labels; len(labels) > 0 {
		fmt.Fprintln(w, "Labels:")
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := labels[k]
			if k == images.LabelLock {
				continue // summarized below
			}
			if strings.Contains(v, "\n") {
				fmt.Fprintf(w, "  %s:\n    %s\n", k, strings.ReplaceAll(v, "\n", "\n    "))
			} else {
				fmt.Fprintf(w, "  %s: %s\n", k, v)
			}
		}
	}
	if err := writeLockSummary(w, img); err != nil {
		return err
	}
	_, err = stdout.Write(w.Bytes())
	return err
}

func newImageRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF",
		Short: "Remove an image name, and the blobs and root filesystem no image uses any more",
		Long: `image rm removes a name from the store. NAME removes that name, NAME@sha256:…
removes it only if it points at that digest, and sha256:… removes every name of
that image. Blobs and cached root filesystems no remaining image uses are deleted.
An image a running build uses is refused, naming the build and its pid.`,
		Aliases:           []string{"remove"},
		Args:              exactArgs(1, "one image reference"),
		ValidArgsFunction: completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageRm(cmd.OutOrStdout(), dataDir(cmd), args[0])
		},
	}
}

func runImageRm(stdout io.Writer, dir, ref string) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	if err := s.Remove(ref); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "removed %s\n", ref)
	return err
}
