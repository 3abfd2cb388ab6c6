package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprobox/reprobox/internal/jsonout"
	"github.com/reprobox/reprobox/policies"
)

// A Record is the JSON account of one build, written as record.json.
type Record struct {
	Artifacts           []Artifact         `json:"artifacts"`
	Command             []string           `json:"command"`
	Dependencies        []Dependency       `json:"dependencies"`
	Durations           map[string]float64 `json:"durations_seconds"`
	Environment         []string           `json:"environment"`
	ExitCode            int                `json:"exit_code"`
	Failure             string             `json:"failure,omitempty"`
	Image               string             `json:"image"`
	ImageDigest         string             `json:"image_digest"`
	Limits              policies.Limits    `json:"limits"`
	OOMKilled           bool               `json:"oom_killed,omitempty"`
	Settings            any                `json:"settings"`
	Signal              int                `json:"signal,omitempty"`
	SourceDateEpoch     int64              `json:"source_date_epoch"`
	SourceDateEpochFrom string             `json:"source_date_epoch_from"`
	Status              string             `json:"status"`
	// Worker names the worker that ran the build when the backend is a
	// pool of several (--addr given more than once).
	Worker string `json:"worker,omitempty"`
}

// NewRecord describes an outcome.
func NewRecord(p *Plan, o *Outcome) Record {
	rec := Record{
		Artifacts:           o.Artifacts,
		Command:             p.Config.Command,
		Dependencies:        p.Dependencies,
		Durations:           map[string]float64{"build": o.Duration.Seconds()},
		Environment:         o.Settings.Environ(),
		ExitCode:            o.Result.ExitCode,
		Image:               p.Image.Reference().String(),
		ImageDigest:         p.Image.Digest.String(),
		Limits:              o.Limits,
		OOMKilled:           o.Result.OOMKilled,
		Settings:            o.Settings,
		Signal:              o.Result.Signal,
		SourceDateEpoch:     o.Settings.SourceDateEpoch,
		SourceDateEpochFrom: p.SourceDateEpochFrom,
		Status:              "succeeded",
		Worker:              o.Result.Worker,
	}
	if rec.Artifacts == nil {
		rec.Artifacts = []Artifact{}
	}
	if rec.Dependencies == nil {
		rec.Dependencies = []Dependency{}
	}
	if !o.OK() {
		rec.Status, rec.Failure = "failed", o.Failure()
	}
	return rec
}

// WriteOut publishes an outcome to out: the artifacts under their relative
// paths, SHA256SUMS (only when the build succeeded), record.json, build.log
// and the OutMarker. It assembles everything in a sibling directory and renames
// it into place, so out is never left half written; an existing out is
// replaced only when it holds the marker. Artifact names never hold a control
// character (collect refuses them), so each is one line of SHA256SUMS, written
// as it is: a backslash is literal, as sha256sum -c reads a line that does not
// start with one.
// It stops between artifacts when ctx is done.
func WriteOut(ctx context.Context, p *Plan, o *Outcome, out string) error {
	if err := checkOutDir(out); err != nil {
		return err
	}
	tmp, err := NewOutTemp(out)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	var sums strings.Builder
	if o.OK() {
		for _, a := range o.Artifacts {
			if ctx.Err() != nil {
				return fmt.Errorf("runner: output directory: %w", context.Cause(ctx))
			}
			dst := filepath.Join(tmp, "artifacts", filepath.FromSlash(a.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("runner: output directory: %w", err)
			}
			st, err := os.Stat(a.File)
			if err != nil {
				return fmt.Errorf("runner: artifact %s: %w", a.Path, err)
			}
			if err := copyFile(a.File, dst, st.Mode().Perm()); err != nil {
				return fmt.Errorf("runner: artifact %s: %w", a.Path, err)
			}
			fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Path)
		}
		if err := os.WriteFile(filepath.Join(tmp, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
			return err
		}
	}
	if err := copyFile(o.Log, filepath.Join(tmp, "build.log"), 0o644); err != nil {
		return fmt.Errorf("runner: build log: %w", err)
	}
	rec, err := jsonout.Marshal(NewRecord(p, o))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "record.json"), rec, 0o644); err != nil {
		return err
	}
	if err := PublishDir(tmp, out); err != nil {
		return err
	}
	ok = true
	return nil
}
