package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/attest"
)

func init() { subcommands = append(subcommands, newKeyCmd) }

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the ed25519 keys that sign verify attestations",
	}
	var out string
	gen := &cobra.Command{
		Use:   "generate --out PREFIX",
		Short: "Generate an ed25519 key pair: PREFIX.key (private, 0600) and PREFIX.pub",
		Long: `generate writes a new ed25519 key pair: PREFIX.key, the private key as PEM
PKCS#8 with mode 0600, and PREFIX.pub, the public key as PEM PKIX. It refuses
to overwrite either file. The key id printed (the hex SHA-256 of the public
key's DER encoding) is the keyid of every DSSE signature made with it.

Sign with reprobox verify --sign PREFIX.key; give PREFIX.pub (several .pub
files concatenated) to reprobox verify --trusted-keys.

Exit status: 0 written, 2 a file exists or --out is missing, 3 failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("key generate needs --out PREFIX (it writes PREFIX.key and PREFIX.pub)")
			}
			priv, pub, id, err := attest.GenerateKey(out)
			if err != nil {
				if errors.Is(err, attest.ErrKey) {
					return usageErrorf("%v", err)
				}
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "reprobox: wrote %s (private, mode 0600) and %s (public)\n", priv, pub)
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	gen.Flags().StringVar(&out, "out", "", "file name prefix of the key pair (PREFIX.key, PREFIX.pub)")
	cmd.AddCommand(gen)
	return cmd
}
