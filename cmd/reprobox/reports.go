package main

import (
	"bytes"
	"context"
	"io"

	"github.com/reprobox/reprobox/internal/atomicfile"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/runner"
)

// reportFlags are --html and --junit of check and verify.
type reportFlags struct {
	html  string
	junit string
}

func (r *reportFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.html, "html", "", "also write the report as a self-contained HTML page to this file")
	cmd.Flags().StringVar(&r.junit, "junit", "", "also write the report as JUnit XML to this file (a test case per artifact)")
}

// write renders each requested report and writes it atomically.
func (r *reportFlags) write(html, junit func(io.Writer) error) error {
	for _, x := range []struct {
		path  string
		write func(io.Writer) error
	}{{r.html, html}, {r.junit, junit}} {
		if x.path == "" {
			continue
		}
		var b bytes.Buffer
		if err := x.write(&b); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(x.path, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *reportFlags) writeCheck(ctx context.Context, plan *runner.Plan, project string, rep *runner.CheckReport, out string) error {
	var trees map[string]string
	if r.html != "" {
		var err error
		if trees, err = runner.CheckEvidenceTrees(ctx, plan, rep, out); err != nil {
			return err
		}
	}
	return r.write(
		func(w io.Writer) error { return runner.WriteCheckHTML(w, project, rep, trees) },
		func(w io.Writer) error { return runner.WriteCheckJUnit(w, project, rep) })
}

func (r *reportFlags) writeVerify(project string, rep *runner.VerifyReport) error {
	return r.write(
		func(w io.Writer) error { return runner.WriteVerifyHTML(w, project, rep) },
		func(w io.Writer) error { return runner.WriteVerifyJUnit(w, project, rep) })
}
