package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/rootless"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/buildkit"
	"github.com/reprobox/reprobox/sandbox/containerd"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

// backendFeatures maps each backend's name to the features it applies (its
// package's Features, what its Backend's Features method returns), so that
// `reprobox factors --backend NAME` answers without starting one.
var backendFeatures = map[string][]sandbox.Feature{
	"libcontainer": libcontainer.Features,
	"containerd":   containerd.Features,
	"buildkit":     buildkit.Features,
}

type factorsOptions struct {
	seed    uint64
	backend string
}

func newFactorsCmd() *cobra.Command {
	var o factorsOptions
	cmd := &cobra.Command{
		Use:   "factors",
		Short: "List the environmental factors with their normalized and perturbed values, and what a build may do",
		Long: `List every factor check perturbs: its normalized and perturbed values, how it is
applied, and what a sandbox backend needs to vary it. With --backend NAME, also whether
that backend can (` + strings.Join(slices.Sorted(maps.Keys(backendFeatures)), ", ") + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFactors(cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the perturbed values")
	cmd.Flags().StringVar(&o.backend, "backend", "", "say per factor whether this backend can vary it")
	return cmd
}

func runFactors(w io.Writer, o factorsOptions) error {
	var have []string
	if o.backend != "" {
		fs, ok := backendFeatures[o.backend]
		if o.backend == backendLibcontainer {
			fs = libcontainer.HostFeatures() // rootless, FUSE may be missing
		}
		if !ok {
			return usageErrorf("--backend %q: no such backend (known: %s)", o.backend, strings.Join(slices.Sorted(maps.Keys(backendFeatures)), ", "))
		}
		for _, f := range fs {
			have = append(have, string(f))
		}
	}
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	for _, f := range policies.Factors {
		v := policies.Perturb(base, []string{f.Name}, o.seed)
		fmt.Fprintf(w, "%-12s normalized: %s\n%-12s perturbed:  %s\n%-12s how: %s\n", f.Name, f.Value(base), "", f.Value(v), "", f.Doc)
		fmt.Fprintf(w, "%-12s needs: %s\n", "", needsText(f.Needs))
		if o.backend != "" {
			if miss := f.MissingNeeds(have); len(miss) > 0 {
				fmt.Fprintf(w, "%-12s %s: cannot vary it (lacks %s)\n", "", o.backend, needsText(miss))
			} else {
				fmt.Fprintf(w, "%-12s %s: can vary it\n", "", o.backend)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "(values for SOURCE_DATE_EPOCH=%d and seed %d; perturbed values derive from the seed)\n", base.SourceDateEpoch, o.seed)
	fmt.Fprintf(w, "\n%s", policies.Confinement())
	printRootless(w)
	return nil
}

// printRootless says what a build lacks because reprobox runs as an
// ordinary user here (see the README's Rootless section).
func printRootless(w io.Writer) {
	if !rootless.Rootless() {
		return
	}
	fmt.Fprintf(w, "\nRootless: this reprobox runs as an ordinary user (uid 0 of a user namespace of its subordinate ids).\n")
	if err := rootless.Err(); err != nil {
		fmt.Fprintf(w, "  no builds: %v\n", err)
		return
	}
	lines := libcontainer.RootlessUnavailable()
	if len(lines) == 0 {
		fmt.Fprintf(w, "  every limit and factor is available\n")
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  unavailable: %s\n", l)
	}
}

func needsText(needs []policies.Need) string {
	if len(needs) == 0 {
		return "nothing beyond an OCI spec"
	}
	s := make([]string, len(needs))
	for i, n := range needs {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}
