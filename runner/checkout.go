package runner

import (
	"context"
	"os"
	"path/filepath"

	"github.com/reprobox/reprobox/internal/jsonout"
)

// CheckTo runs Check and writes its output directory out the way WriteOut
// writes a build's: the kept artifacts (control/, variant/, variants/GROUP/)
// and report.json are assembled in a marked sibling of out and renamed into
// place, replacing out only when reprobox wrote it, so that out is never
// half written and a killed check leaves nothing the next run does not
// remove. It returns the report and report.json's bytes.
func (r *Runner) CheckTo(ctx context.Context, p *Plan, opts CheckOptions, out string) (*CheckReport, []byte, error) {
	if err := checkOutDir(out); err != nil {
		return nil, nil, err
	}
	tmp, err := NewOutTemp(out)
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp) // gone once published
	rep, err := r.Check(ctx, p, opts, tmp)
	if err != nil {
		return nil, nil, err
	}
	js, err := jsonout.Marshal(rep)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "report.json"), js, 0o644); err != nil {
		return nil, nil, err
	}
	if err := PublishDir(tmp, out); err != nil {
		return nil, nil, err
	}
	return rep, js, nil
}
