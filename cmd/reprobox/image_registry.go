package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/images"
)

const registryHelp = `Credentials come from docker's config file ($DOCKER_CONFIG/config.json, default
~/.docker/config.json): its auths and its credential helpers (credHelpers,
credsStore), as docker login writes them. Registries on localhost, loopback and
private addresses are spoken to in plain HTTP, as docker does; --insecure does
so for any registry. Otherwise HTTPS with the system's certificates.`

func newImagePushCmd() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push REF DEST",
		Short: "Push a stored image to a registry, keeping its digest",
		Long: `image push copies the stored image REF (NAME, NAME@sha256:… or sha256:…) to the
registry repository DEST (REGISTRY/REPOSITORY or REGISTRY/REPOSITORY:TAG). The
manifest, config and layers are sent byte for byte as stored, so the image keeps
its digest; the registry is asked for it afterwards and must agree. Without a
tag in DEST the image is pushed by digest only.

Prints the pinned remote reference, REGISTRY/REPOSITORY@sha256:…, which
reprobox image pull takes and a reprobox.toml may name.

` + registryHelp,
		Example: `  reprobox image push reprobox/rust registry.example.org/team/rust:2026-11-30
  reprobox image push reprobox/rust localhost:5000/rust`,
		Args:              exactArgs(2, "REF and DEST"),
		ValidArgsFunction: completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagePush(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dataDir(cmd), args[0], args[1], insecure)
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "use plain HTTP for this registry")
	return cmd
}

func runImagePush(ctx context.Context, stdout, stderr io.Writer, dir, ref, dest string, insecure bool) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	out, err := images.Push(ctx, s, ref, dest, images.RegistryOptions{Insecure: insecure, Progress: stderr})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, out)
	return err
}

func newImagePullCmd() *cobra.Command {
	var (
		insecure bool
		name     string
	)
	cmd := &cobra.Command{
		Use:   "pull REGISTRY/REPOSITORY@sha256:… | REGISTRY/REPOSITORY:TAG",
		Short: "Pull an image from a registry by digest (or tag), verifying every blob",
		Long: `image pull fetches a linux/amd64 image from a registry and stores it. A tag is
resolved to a digest, which is printed: a reprobox.toml must still name the
digest. The manifest must be at most 4 MiB and match the digest asked for, every
blob is checked against its digest, and the image then goes through the same
checks as image import (hostile layers are refused). Nothing is stored unless
all of it is good. Prints the pinned local reference, NAME@sha256:….

The image is stored under the name as written (with its tag, without the
digest) unless --name is given.

` + registryHelp,
		Example: `  reprobox image pull registry.example.org/team/rust@sha256:4e1f…
  reprobox image pull localhost:5000/rust:2026-11-30 --name reprobox/rust`,
		Args: exactArgs(1, "one remote reference"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImagePull(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), dataDir(cmd), args[0], name, insecure)
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "use plain HTTP for this registry")
	cmd.Flags().StringVar(&name, "name", "", "name to store the image under (default: the reference's name)")
	return cmd
}

func runImagePull(ctx context.Context, stdout, stderr io.Writer, dir, ref, name string, insecure bool) error {
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	img, err := images.Pull(ctx, s, ref, images.RegistryOptions{Insecure: insecure, Name: name, Progress: stderr})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, img.Reference())
	return err
}

func newImageExportCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export REF FILE [--format oci|docker]",
		Short: "Write a stored image to an OCI archive or a docker save archive",
		Long: `image export writes the stored image REF to FILE: an OCI archive (a tar of an
OCI image layout; skopeo oci-archive:, podman load, docker load) or, with
--format docker, a docker save archive (manifest.json; skopeo docker-archive:,
docker load), which also holds the OCI layout. The stored manifest is written
byte for byte, so image import, skopeo, podman and docker give the same digest.
The archive is deterministic (sorted members, owner 0:0, mtime 0), every blob is
verified while copied, and FILE appears only when complete. Prints the pinned
reference.`,
		Example: `  reprobox image export reprobox/rust rust.tar
  reprobox image export reprobox/rust rust-docker.tar --format docker`,
		Args:              exactArgs(2, "REF and FILE"),
		ValidArgsFunction: completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageExport(cmd.OutOrStdout(), dataDir(cmd), args[0], args[1], format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "oci", "archive format: oci or docker")
	return cmd
}

func runImageExport(stdout io.Writer, dir, ref, file, format string) error {
	if format != string(images.FormatOCI) && format != string(images.FormatDocker) {
		return usageErrorf("--format must be oci or docker, got %q", format)
	}
	s, err := images.Open(dir)
	if err != nil {
		return err
	}
	img, err := images.Export(s, ref, file, images.ExportFormat(format))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, img.Reference())
	return err
}
