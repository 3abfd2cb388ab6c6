package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/internal/atomicfile"
)

func init() { subcommands = append(subcommands, newDiffCmd) }

// diffOptions are the parsed flags of "reprobox diff".
type diffOptions struct {
	a, b              string
	json              bool
	html              string
	maxLines          int
	workers           int
	labels            []string // factor=value
	timeRanges        []string // factor=FROM..TO
	ignoreDirMetadata bool
}

func newDiffCmd() *cobra.Command {
	var o diffOptions
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Explain how two build artifacts differ",
		Long: `reprobox diff compares two files or two directories structurally and explains
every difference: archive members (tar with gzip, xz, zstd or bzip2; ar and rlib;
zip), ELF sections, symbols with Rust names demangled, the functions whose code
differs, build-ids, DWARF compilation units, Rust metadata strings, text lines and
bytes. With --label, differences that contain a perturbed value are labelled with
its factor.

Exit status: 0 identical, 1 different, 2 usage error (such as a missing file),
3 failure of reprobox itself.`,
		Example: `  reprobox diff a/target/release/foo b/target/release/foo
  reprobox diff --html report.html --label build_path=/build/b out-a.tar.gz out-b.tar.gz
  reprobox diff --json a/ b/ > diff.json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("diff needs two files or directories, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.a, o.b = args[0], args[1]
			return runDiff(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "write the differences as JSON instead of text")
	f.StringVar(&o.html, "html", "", "also write a self-contained HTML report to `FILE`")
	f.IntVar(&o.maxLines, "max-lines", 400, "at most `N` lines of text output")
	f.IntVar(&o.workers, "workers", 0, "comparisons run at once (0: one per CPU)")
	f.StringArrayVar(&o.labels, "label", nil, "label differences containing `FACTOR=VALUE` (repeatable)")
	f.StringArrayVar(&o.timeRanges, "time-range", nil, "label times in `FACTOR=FROM..TO` (RFC 3339) (repeatable)")
	f.BoolVar(&o.ignoreDirMetadata, "ignore-dir-metadata", false, "ignore mode, owner and mtime of files in directories")
	return cmd
}

// runDiff compares o.a and o.b and writes the result to stdout. A difference is
// an exitError with status 1.
func runDiff(ctx context.Context, stdout io.Writer, o diffOptions) error {
	for _, p := range []string{o.a, o.b} {
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return usageErrorf("diff: %s: no such file or directory", p)
			}
			return fmt.Errorf("diff: %w", err)
		}
	}
	if o.html != "" {
		if st, err := os.Stat(filepath.Dir(o.html)); err != nil || !st.IsDir() {
			return usageErrorf("diff: --html %s: no such directory", o.html)
		}
	}
	opts := diff.Options{Workers: o.workers, MaxTextLines: o.maxLines, IgnoreDirMetadata: o.ignoreDirMetadata}
	byFactor := map[string]int{}
	for _, l := range o.labels {
		factor, value, ok := strings.Cut(l, "=")
		if !ok || factor == "" || value == "" {
			return usageErrorf("diff: --label %q: want FACTOR=VALUE", l)
		}
		i, seen := byFactor[factor]
		if !seen {
			i = len(opts.Labels)
			byFactor[factor] = i
			opts.Labels = append(opts.Labels, diff.Label{Factor: factor})
		}
		opts.Labels[i].Values = append(opts.Labels[i].Values, value)
	}
	for _, t := range o.timeRanges {
		factor, span, ok := strings.Cut(t, "=")
		from, to, ok2 := strings.Cut(span, "..")
		if !ok || !ok2 || factor == "" {
			return usageErrorf("diff: --time-range %q: want FACTOR=FROM..TO", t)
		}
		tf, err1 := time.Parse(time.RFC3339, from)
		tt, err2 := time.Parse(time.RFC3339, to)
		if err1 != nil || err2 != nil || tt.Before(tf) {
			return usageErrorf("diff: --time-range %q: want RFC 3339 times, FROM before TO", t)
		}
		opts.TimeRanges = append(opts.TimeRanges, diff.TimeRange{Factor: factor, From: tf, To: tt})
	}
	rep, err := diff.Files(ctx, o.a, o.b, opts)
	if err != nil {
		if errors.Is(err, diff.ErrNotComparable) {
			return usageErrorf("%v", err)
		}
		return err
	}
	if o.html != "" {
		if err := atomicfile.Write(o.html, 0o644, rep.WriteHTML); err != nil {
			return fmt.Errorf("diff: writing HTML report: %w", err)
		}
	}
	if o.json {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, o.maxLines)
	}
	if err != nil {
		return fmt.Errorf("diff: writing report: %w", err)
	}
	if !rep.Equal() {
		return &exitError{code: exitUnreproducible}
	}
	return nil
}
