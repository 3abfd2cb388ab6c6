package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/human"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/runner"
)

func init() {
	subcommands = append(subcommands, newCheckCmd, newFactorsCmd)
}

func newCheckCmd() *cobra.Command {
	var (
		f        projectFlags
		vary     string
		seed     uint64
		jobs     int
		repeats  int
		bound    float64
		maxBuild int
		jsonOut  string
		timings  bool
		evidence int
		noInter  bool
		reports  reportFlags
	)
	cmd := &cobra.Command{
		Use:   "check [DIR] [flags] [-- COMMAND ARGS...]",
		Short: "Build normalized and perturbed, and name the factors that break reproducibility",
		Long: `check builds the project in its pinned image normalized (the control) and with
every chosen factor perturbed (the variant). When an artifact differs, it finds
the factors responsible by adaptive group testing, first testing alone the
factors whose perturbed values appear in the differing bytes, and shows the
structural diff as evidence. Reordered lines or members (fileordering) and a
byte-order sort against another (locale's collation) only hint: the hinted
factor is tested first and weighed more, but a nondeterministic artifact
reorders too, so only builds decide.

The check is a sequential test: every build is evidence for or against the
current verdict (reproducible, or "these culprits decide the artifact"), and
builds whose perturbed sets hold the same culprits must give the same bytes.
When two builds of one set disagree the artifact is nondeterministic and no
factor is blamed; when builds that should agree do not, the check builds both
sets again to tell nondeterminism from a culprit it missed before it reports.
It stops as soon as the chance that a nondeterministic artifact (one of two
outputs at random in every build) produced the hashes seen, weighed by the
verdicts the search could have reached, is below --bound (default 0.001,
about 1 in 1000): 11 builds for a reproducible artifact, 16 for one culprit
among 16 factors that no evidence names (12 when a reordering hints at it), 14
for two, 4 or 5 when the evidence names them. --max-builds caps a check; a check that reaches the cap reports what it
knows and says UNDECIDED (exit status 1).

For cargo builds, check keeps each build's intermediate outputs (build scripts'
OUT_DIR and output, each crate's rlib and rmeta) while it runs, as links to the
builds' own files, and names the first unit where the compared builds diverge,
with the chain from there to the artifact and a diff of that unit's outputs
(such as a generated source) above the artifact's own diff.

Factors (see reprobox factors): ` + strings.Join(policies.Names(), ", ") + `.
--vary all,-aslr or --vary time,umask choose; an unknown name is an error.

The project is configured as for build (reprobox build --help): DIR/reprobox.toml
and flags, or for a cargo project without reprobox.toml the default image,
cargo command and bin targets, announced on the first lines.

Kept under --out: control/ (the control's artifacts), variant/ (all factors
perturbed), variants/CULPRIT/ (each culprit's own build), report.json.
--html FILE writes the report as a self-contained HTML page (verdict,
culprits with their values, evidence, the sets of factors built and what
differed in each); --junit FILE as JUnit XML, a test case per artifact.

Exit status: 0 reproducible, 1 not reproducible, nondeterministic or undecided
at --max-builds (or the control build failed), 2 usage or config error, 3 reprobox or the sandbox failed,
130 interrupted (SIGINT, SIGTERM, SIGHUP, or SIGPIPE on a closed stdout or
stderr; every build is killed and everything the check made removed).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, cfg, fromFlag, err := f.load(cmd, args)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("vary") && cfg.Vary != "" {
				vary = cfg.Vary
			}
			names, err := policies.ParseVary(vary)
			if err != nil {
				return usageErrorf("--vary: %v", err)
			}
			if jobs < 0 || evidence < 0 || maxBuild < 0 {
				return usageErrorf("--jobs, --evidence-lines and --max-builds must not be negative")
			}
			if maxBuild == 1 {
				return usageErrorf("--max-builds 1: a check needs at least 2 builds (the control and the variant)")
			}
			if !(bound > 0 && bound < 1) {
				return usageErrorf("--bound %g: give a chance between 0 and 1, such as 0.001 (the default) or 0.01", bound)
			}
			if cmd.Flags().Changed("repeats") {
				fmt.Fprintf(cmd.ErrOrStderr(), "reprobox: --repeats %d is ignored: the check stops when its verdict meets --bound\n", repeats)
			}
			if cmd.Flags().Changed("jobs") && jobs == 0 {
				return usageErrorf("--jobs 0: at least one build must run at a time (leave --jobs out for host CPUs / build CPUs)")
			}
			r, err := newRunner(cmd)
			if err != nil {
				return err
			}
			r.Progress = cmd.ErrOrStderr()
			ctx := cmd.Context()
			plan, err := r.NewPlan(ctx, dir, cfg, fromFlag, f.out)
			if err != nil {
				return err
			}
			defer plan.Close()
			if jobs == 0 {
				jobs = defaultJobs(r.Backend, runtime.NumCPU(), plan.Base.CPUs)
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "reprobox: checking %s in %s, varying %s (seed %d, %d job(s)%s)\n",
				plan.Project, plan.Image.Reference(), strings.Join(names, ","), seed, jobs, onWorkers(r.Backend))
			rep, js, err := r.CheckTo(ctx, plan, runner.CheckOptions{
				Vary: names, Seed: seed, Jobs: jobs, Bound: bound, MaxBuilds: maxBuild, Progress: stderr, EvidenceLines: evidence,
				ProgressEvery: progressEvery(f.progress), NoIntermediates: noInter, Timings: timings,
			}, f.out)
			if err != nil {
				return err
			}
			if jsonOut != "" {
				if err := atomicfile.WriteFile(jsonOut, js, 0o644); err != nil {
					return err
				}
			}
			if err := reports.writeCheck(ctx, plan, dir, rep, f.out); err != nil {
				return err
			}
			printCheck(cmd.OutOrStdout(), rep, f.out)
			if !rep.Reproducible {
				return &exitError{exitUnreproducible}
			}
			return nil
		},
	}
	f.register(cmd, "reprobox-out")
	addBackendFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&vary, "vary", "all", "factors to perturb: all, names, -name to exclude (comma separated)")
	fl.Uint64Var(&seed, "seed", 1, "seed of the perturbed values; the report prints it, and the same seed replays a check")
	fl.IntVar(&jobs, "jobs", 0, "builds at once (default: host CPUs / build CPUs, at least 1; with several --addr, the workers' slots)")
	fl.Float64Var(&bound, "bound", runner.DefaultBound, "stop when the chance that a nondeterministic artifact (one of two outputs at random) produced the builds seen is below this; halving it costs about one build")
	fl.IntVar(&maxBuild, "max-builds", 0, "cap the check at this many builds, reporting what is known (UNDECIDED, exit 1) when reached; 0 means no cap")
	fl.IntVar(&repeats, "repeats", 0, "ignored (the check stops when its verdict meets --bound)")
	_ = fl.MarkHidden("repeats")
	fl.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	fl.BoolVar(&timings, "timings", false, "include wall-clock timings in the JSON report")
	fl.IntVar(&evidence, "evidence-lines", 40, "lines of structural diff shown per artifact")
	reports.register(cmd)
	fl.BoolVar(&noInter, "no-intermediates", false, "do not keep cargo's intermediate outputs, nor name the unit where builds first diverge")
	return cmd
}

// printCheck writes the verdict, the culprits per artifact and the evidence.
func printCheck(w io.Writer, rep *runner.CheckReport, out string) {
	switch {
	case rep.Undecided:
		fmt.Fprintf(w, "UNDECIDED: --max-builds %d reached before every artifact had a verdict (%d builds, seed %d)\n", rep.MaxBuilds, rep.Builds, rep.Seed)
	case rep.Reproducible:
		fmt.Fprintf(w, "REPRODUCIBLE: every artifact is bit-identical under every perturbation (%d builds, seed %d)\n", rep.Builds, rep.Seed)
	case len(rep.Culprits) > 0:
		fmt.Fprintf(w, "NOT REPRODUCIBLE: culprits %s (%d builds, seed %d)\n", strings.Join(rep.Culprits, ", "), rep.Builds, rep.Seed)
	default:
		fmt.Fprintf(w, "NOT REPRODUCIBLE: nondeterministic output (%d builds, seed %d)\n", rep.Builds, rep.Seed)
	}
	for _, a := range rep.Artifacts {
		switch {
		case a.Reproducible:
			fmt.Fprintf(w, "\n%s: reproducible (sha256 %s)\n", a.Path, a.ControlSHA256)
			continue
		case a.Undecided:
			fmt.Fprintf(w, "\n%s: undecided", a.Path)
			if len(a.Hypothesis) > 0 {
				fmt.Fprintf(w, "; the builds so far point at %s", strings.Join(a.Hypothesis, ", "))
			}
			fmt.Fprintf(w, " (chance %.2g that a nondeterministic artifact did this, bound %g)\n", a.NondeterministicChance, rep.Bound)
		case a.Nondeterministic:
			fmt.Fprintf(w, "\n%s: NONDETERMINISTIC: it differs between builds in identical environments; no factor is blamed\n", a.Path)
		default:
			fmt.Fprintf(w, "\n%s: culprit(s) %s\n", a.Path, strings.Join(a.Culprits, ", "))
			for _, c := range a.Culprits {
				for _, name := range strings.Split(c, "+") {
					if v, ok := rep.Factors[name]; ok {
						fmt.Fprintf(w, "  %s: %s -> %s\n", name, v.Control, v.Variant)
					}
				}
				if msg, ok := rep.BuildFailures[c]; ok {
					fmt.Fprintf(w, "  perturbing %s breaks the build: %s\n", c, msg)
				}
			}
		}
		if a.Mechanism != "" {
			fmt.Fprintf(w, "  %s\n", a.Mechanism)
		}
		if !a.Nondeterministic && !a.Undecided && a.NondeterministicChance > 0 {
			fmt.Fprintf(w, "  chance that a nondeterministic artifact did this: %.2g (bound %g)\n", a.NondeterministicChance, rep.Bound)
		}
		fmt.Fprintf(w, "  control %s\n  variant %s\n", a.ControlSHA256, a.VariantSHA256)
		for _, c := range a.Culprits {
			fmt.Fprintf(w, "  %s alone %s\n", c, a.CulpritSHA256[c])
		}
		if a.EvidenceSHA256 != "" {
			set := strings.Join(a.EvidenceSet, ",")
			if len(a.EvidenceSet) == len(rep.Factors) {
				set = "all factors"
			}
			fmt.Fprintf(w, "  evidence from the build varying %s (%s)\n", set, a.EvidenceSHA256)
		}
		if len(a.EvidenceFactors) > 0 {
			fmt.Fprintf(w, "  evidence names: %s\n", strings.Join(a.EvidenceFactors, ", "))
		}
		if len(a.HintFactors) > 0 {
			fmt.Fprintf(w, "  reordered content hints at (built first, not proof): %s\n", strings.Join(a.HintFactors, ", "))
		}
		if a.Evidence != "" {
			for _, l := range strings.Split(strings.TrimRight(a.Evidence, "\n"), "\n") {
				fmt.Fprintln(w, "  | "+l)
			}
		}
	}
	printWorkers(w, rep)
	if in := rep.Intermediates; in != nil {
		fmt.Fprintf(w, "\nintermediates of %d builds read (%s); %s kept while checking (%s copied)\n",
			in.Builds, human.Bytes(in.TreeBytes), human.Bytes(in.KeptBytes), human.Bytes(in.CopiedBytes))
	}
	fmt.Fprintf(w, "\nartifacts and report.json kept in %s\n", out)
}

// progressEvery is CheckOptions.ProgressEvery for --progress: 0 turns the
// periodic lines off.
func progressEvery(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
