package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/reprobox/reprobox/policies"
)

// Designs of an experiment.
const (
	DesignOneAtATime = "one-at-a-time"
	DesignFactorial  = "factorial"
	DesignSample     = "sample"
)

// An ExperimentFile is an experiment as written in TOML.
//
//	projects = ["crates/locale"]          # relative to the file
//	images   = ["reprobox/rust", "reprobox/rust-old@sha256:…"]
//	design   = "factorial"                # one-at-a-time, factorial or sample
//	samples  = 4                          # cells drawn with design = "sample"
//	repeats  = 2                          # builds per cell
//	command  = ["cargo", "build", "--release", "--offline"]   # optional
//
//	[factors]                             # the first level is the baseline
//	locale   = ["C.UTF-8", "fr_FR.UTF-8", "de_DE.UTF-8"]
//	num_cpus = [2, 1]
type ExperimentFile struct {
	Projects []string `toml:"projects"`
	Images   []string `toml:"images"`
	Design   string   `toml:"design"`
	Samples  int      `toml:"samples"`
	Repeats  int      `toml:"repeats"`
	// Command, when set, replaces every project's build command.
	Command []string              `toml:"command"`
	Factors map[string]levelsTOML `toml:"factors"`
}

// levelsTOML holds a factor's levels as TOML gave them: strings, integers or
// booleans.
type levelsTOML []any

// UnmarshalTOML takes an array of strings, integers or booleans; the toml
// package adds the line of the key to an error returned here.
func (l *levelsTOML) UnmarshalTOML(v any) error {
	arr, ok := v.([]any)
	if !ok {
		return fmt.Errorf("levels must be an array such as [\"C.UTF-8\", \"fr_FR.UTF-8\"], not %T", v)
	}
	for _, x := range arr {
		switch x.(type) {
		case string, int64, bool:
		default:
			return fmt.Errorf("level %v is a %T: levels are strings, integers or booleans", x, x)
		}
	}
	*l = arr
	return nil
}

// An Experiment is a parsed, validated experiment file: what to build, under
// which levels, and the cells of its design.
type Experiment struct {
	// File is the experiment file's path; Projects are as written,
	// relative ones to its directory (ProjectDir).
	File     string
	Projects []string
	Images   []string
	Design   string
	Samples  int
	Repeats  int
	Command  []string
	// Factors are in policies.Factors order; each one's first level is the
	// baseline.
	Factors []ExperimentFactor
	// Seed drives the sample (and the perturbed keyword of levels).
	Seed uint64
}

// An ExperimentFactor is a factor and its levels, canonical strings.
type ExperimentFactor struct {
	Name   string   `json:"name"`
	Levels []string `json:"levels"`
}

// ErrExperiment marks an invalid experiment file; it wraps ErrConfig.
var ErrExperiment = fmt.Errorf("%w: experiment", ErrConfig)

// experimentFactors are the factors an experiment may vary: every factor of
// policies, under its own name. "cpus" is accepted for num_cpus.
var factorAliases = map[string]string{"cpus": "num_cpus", "tz": "timezone", "path": "exec_path"}

// SeedFromContents is the default seed of an experiment: the first eight bytes
// of the SHA-256 of the file.
func SeedFromContents(data []byte) uint64 {
	h := sha256.Sum256(data)
	return binary.BigEndian.Uint64(h[:8])
}

// ParseExperiment reads an experiment file's contents. path is used in
// messages and to resolve the projects. seed 0 means SeedFromContents.
// Every error wraps ErrExperiment and names the line when it is about one.
func ParseExperiment(path string, data []byte, seed uint64) (*Experiment, error) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%w: %s: contains a NUL byte", ErrExperiment, path)
	}
	var f ExperimentFile
	md, err := toml.Decode(string(data), &f)
	var perr toml.ParseError
	if errors.As(err, &perr) {
		return nil, fmt.Errorf("%w: %s:%d: %s", ErrExperiment, path, perr.Position.Line, perr.Message)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrExperiment, path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	lineErr := func(section, key, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if n := keyLine(data, section, key); n > 0 {
			return fmt.Errorf("%w: %s:%d: %s", ErrExperiment, path, n, msg)
		}
		return fmt.Errorf("%w: %s: %s", ErrExperiment, path, msg)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		section, key := "", k.String()
		if len(k) > 1 {
			section, key = strings.Join(k[:len(k)-1], "."), k[len(k)-1]
		}
		return nil, lineErr(section, key, "unknown key %s (known: projects, images, design, samples, repeats, command, [factors])", k)
	}
	if seed == 0 {
		seed = SeedFromContents(data)
	}
	e := &Experiment{File: path, Design: f.Design, Samples: f.Samples, Repeats: f.Repeats, Command: f.Command, Seed: seed}
	if len(f.Projects) == 0 {
		return nil, lineErr("", "projects", "no projects: write projects = [\"path/to/crate\"] (relative to the file)")
	}
	for _, p := range f.Projects {
		if p == "" {
			return nil, lineErr("", "projects", "a project path is empty")
		}
		p = filepath.ToSlash(filepath.Clean(p))
		if slices.Contains(e.Projects, filepath.Clean(p)) {
			return nil, lineErr("", "projects", "project %s is listed twice", p)
		}
		e.Projects = append(e.Projects, p)
	}
	if len(f.Images) == 0 {
		return nil, lineErr("", "images", "no images: write images = [\"reprobox/rust\"] (names or NAME@sha256:…; reprobox image ls lists them)")
	}
	for _, img := range f.Images {
		if img == "" || slices.Contains(e.Images, img) {
			return nil, lineErr("", "images", "image %q is empty or listed twice", img)
		}
		e.Images = append(e.Images, img)
	}
	switch e.Design {
	case "":
		e.Design = DesignOneAtATime
	case DesignOneAtATime, DesignFactorial:
		if f.Samples != 0 {
			return nil, lineErr("", "samples", "samples only applies with design = \"sample\"")
		}
	case DesignSample:
		if f.Samples < 1 {
			return nil, lineErr("", "design", "design = \"sample\" needs samples = N (cells drawn from the factorial, at least 1)")
		}
	default:
		return nil, lineErr("", "design", "unknown design %q (known: %s, %s, %s)", e.Design, DesignOneAtATime, DesignFactorial, DesignSample)
	}
	if e.Repeats == 0 {
		e.Repeats = 1
	}
	if e.Repeats < 1 || e.Repeats > 1000 {
		return nil, lineErr("", "repeats", "repeats = %d: between 1 and 1000 builds per cell", f.Repeats)
	}
	if md.IsDefined("command") && (len(e.Command) == 0 || e.Command[0] == "") {
		return nil, lineErr("", "command", "command is empty: command = [\"cargo\", \"build\", \"--release\"]")
	}
	if len(f.Factors) == 0 {
		return nil, lineErr("", "factors", "no factors: add a [factors] table, such as locale = [\"C.UTF-8\", \"fr_FR.UTF-8\"]")
	}
	names := make([]string, 0, len(f.Factors))
	for name := range f.Factors {
		names = append(names, name)
	}
	slices.Sort(names)
	byName := map[string]ExperimentFactor{}
	for _, raw := range names {
		name := raw
		if a, ok := factorAliases[raw]; ok {
			name = a
		}
		if _, ok := policies.Lookup(name); !ok {
			return nil, lineErr("factors", raw, "unknown factor %q (known: %s)", raw, strings.Join(policies.Names(), ", "))
		}
		if _, dup := byName[name]; dup {
			return nil, lineErr("factors", raw, "factor %s is given twice (%s is another name for it)", name, raw)
		}
		levels := f.Factors[raw]
		if len(levels) < 2 {
			return nil, lineErr("factors", raw, "factor %s needs at least two levels (the first is the baseline)", raw)
		}
		ef := ExperimentFactor{Name: name}
		for _, v := range levels {
			s, err := canonicalLevel(name, v)
			if err != nil {
				return nil, lineErr("factors", raw, "factor %s: %v", raw, err)
			}
			if slices.Contains(ef.Levels, s) {
				return nil, lineErr("factors", raw, "factor %s: level %q is listed twice", raw, s)
			}
			ef.Levels = append(ef.Levels, s)
		}
		byName[name] = ef
	}
	for _, pf := range policies.Factors {
		if ef, ok := byName[pf.Name]; ok {
			e.Factors = append(e.Factors, ef)
		}
	}
	if n := e.factorialSize(); n > 100000 {
		return nil, lineErr("", "factors", "the factorial has %d cells; at most 100000 (use design = \"sample\" with fewer levels)", n)
	}
	if e.Design == DesignSample && e.Samples > e.factorialSize()-1 {
		return nil, lineErr("", "samples", "samples = %d, but the factorial has only %d cells besides the baseline", e.Samples, e.factorialSize()-1)
	}
	return e, nil
}

// keyLine finds the line (1-based) of key in section ("" for the top level)
// of a TOML file, or 0.
func keyLine(data []byte, section, key string) int {
	cur := ""
	keyRE := regexp.MustCompile(`^\s*("?)` + regexp.QuoteMeta(key) + `("?)\s*=`)
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && !strings.HasPrefix(t, "[[") {
			cur = strings.TrimSpace(strings.Trim(strings.SplitN(t, "#", 2)[0], " []"))
			continue
		}
		if cur == section && keyRE.MatchString(line) {
			return i + 1
		}
		if section == "factors" && cur == "" && strings.HasPrefix(t, "factors.") && keyRE.MatchString(strings.TrimPrefix(t, "factors.")) {
			return i + 1
		}
	}
	return 0
}

// ProjectDir is the directory of a project as written in the file.
func (e *Experiment) ProjectDir(project string) string {
	if filepath.IsAbs(project) {
		return project
	}
	return filepath.Join(filepath.Dir(e.File), filepath.FromSlash(project))
}

func (e *Experiment) factorialSize() int {
	n := 1
	for _, f := range e.Factors {
		n *= len(f.Levels)
		if n > 1<<30 {
			return n
		}
	}
	return n
}

var durationRE = regexp.MustCompile(`^([+-]?[0-9]+)([smhd]?)$`)

// canonicalLevel checks a level of a factor and returns it in the form cells,
// CSV columns and reports show. "normalized" and "perturbed" are levels of
// every factor: its value in `reprobox build` and in `reprobox check`'s variant.
func canonicalLevel(factor string, v any) (string, error) {
	s := fmt.Sprint(v)
	if str, ok := v.(string); ok && (str == "normalized" || str == "perturbed") {
		return str, nil
	}
	switch factor {
	case "time":
		// A shift of the build's clock from SOURCE_DATE_EPOCH: seconds, or
		// with a unit s, m, h or d.
		m := durationRE.FindStringSubmatch(strings.TrimSpace(s))
		if m == nil {
			return "", fmt.Errorf("time level %q is not a clock shift such as 0, -3600, \"+2d\" or \"-398d\"", s)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > 1e9 || n < -1e9 {
			return "", fmt.Errorf("time level %q is out of range", s)
		}
		unit := m[2]
		if unit == "" {
			unit = "s"
		}
		if n >= 0 {
			return "+" + strconv.FormatInt(n, 10) + unit, nil
		}
		return strconv.FormatInt(n, 10) + unit, nil
	case "num_cpus":
		n, err := levelInt(v)
		if err != nil || n < 1 || n > 4096 {
			return "", fmt.Errorf("num_cpus level %q is not a CPU count of at least 1", s)
		}
		return strconv.FormatInt(n, 10), nil
	case "umask":
		var n int64
		var err error
		switch x := v.(type) {
		case int64:
			n = x // a TOML integer, such as 0o022
		case string:
			n, err = strconv.ParseInt(x, 8, 32)
		default:
			err = errors.New("not a number")
		}
		if err != nil || n < 0 || n > 0o777 {
			return "", fmt.Errorf("umask level %q is not an octal mask such as \"0022\" or 0o002", s)
		}
		return fmt.Sprintf("%04o", n), nil
	case "user":
		n, err := levelInt(v)
		if err != nil || n < 1 || n > 65533 {
			return "", fmt.Errorf("user level %q is not a uid between 1 and 65533 (the build user gets uid and gid N, name rbxuserN; %d is the normalized builder)", s, policies.DefaultUID)
		}
		return strconv.FormatInt(n, 10), nil
	case "build_path", "home":
		p, ok := v.(string)
		if !ok || !strings.HasPrefix(p, "/") || p == "/" || filepath.Clean(p) != p || strings.ContainsAny(p, ":\n") {
			return "", fmt.Errorf("%s level %q is not a clean absolute directory below / such as \"/build/a/b/src\"", factor, s)
		}
		return p, nil
	case "fileordering":
		if s != "native" && s != "reverse" {
			return "", fmt.Errorf("fileordering level %q is not native or reverse", s)
		}
		return s, nil
	case "kernel":
		if s != "host" && s != "2.6" {
			return "", fmt.Errorf("kernel level %q is not host or \"2.6\"", s)
		}
		return s, nil
	case "aslr":
		switch s {
		case "off", "false":
			return "off", nil
		case "on", "true":
			return "on", nil
		}
		return "", fmt.Errorf("aslr level %q is not off or on", s)
	case "env":
		str, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("env level %v is not a string KEY=VALUE, or \"\" for none", v)
		}
		if str == "" {
			return "", nil
		}
		if k, _, ok := strings.Cut(str, "="); !ok || !envKeyRE.MatchString(k) {
			return "", fmt.Errorf("env level %q is not KEY=VALUE with an ordinary KEY, or \"\" for none", str)
		}
		if k, _, _ := strings.Cut(str, "="); reservedEnv(k) != "" {
			return "", fmt.Errorf("env level %q sets %s, which reprobox sets itself (%s)", str, k, reservedEnv(k))
		}
		return str, nil
	}
	// locale, timezone, hostname, domainname, exec_path: a string.
	str, ok := v.(string)
	if !ok || str == "" || strings.ContainsAny(str, "\x00\n") || len(str) > 256 {
		return "", fmt.Errorf("%s level %v is not a non-empty string", factor, v)
	}
	if factor == "hostname" && !hostnameRE.MatchString(str) || factor == "domainname" && !hostnameRE.MatchString(str) {
		return "", fmt.Errorf("%s level %q is not a host name (letters, digits, '-' and '.', at most 64)", factor, str)
	}
	if factor == "exec_path" && !strings.HasPrefix(str, "/") {
		return "", fmt.Errorf("exec_path level %q is not a PATH of absolute directories", str)
	}
	return str, nil
}

var (
	envKeyRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)
)

func levelInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, errors.New("not an integer")
}

// ApplyLevel edits s (a project's normalized environment) to one level of a
// factor. seed gives the values of the "perturbed" level.
func ApplyLevel(s *policies.Settings, base policies.Settings, factor, level string, seed uint64) {
	f, _ := policies.Lookup(factor)
	switch level {
	case "normalized":
		return
	case "perturbed":
		f.Perturb(s, seed)
		return
	}
	switch factor {
	case "time":
		m := durationRE.FindStringSubmatch(level)
		n, _ := strconv.ParseInt(m[1], 10, 64)
		mult := map[string]int64{"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
		s.Clock = base.SourceDateEpoch + n*mult
		if s.Clock <= 0 {
			s.Clock = 1
		}
	case "build_path":
		s.BuildPath = level
	case "locale":
		s.Locale, s.LocaleVars = level, nil
	case "timezone":
		s.TZ = level
	case "umask":
		n, _ := strconv.ParseUint(level, 8, 32)
		s.Umask = uint32(n)
	case "hostname":
		s.Hostname = level
	case "domainname":
		s.Domainname = level
	case "user":
		n, _ := strconv.ParseUint(level, 10, 32)
		s.UID, s.GID = uint32(n), uint32(n)
		s.User = policies.DefaultUser
		if uint32(n) != policies.DefaultUID {
			s.User = "rbxuser" + level
		}
	case "home":
		s.Home = level
	case "fileordering":
		s.FileOrdering = level
	case "num_cpus":
		n, _ := strconv.Atoi(level)
		s.CPUs = n
	case "kernel":
		s.Uname26 = level == "2.6"
	case "aslr":
		s.ASLR = level == "on"
	case "env":
		if level != "" {
			s.Env = append(slices.Clone(s.Env), level)
			slices.Sort(s.Env)
		}
	case "exec_path":
		s.Path = level
	}
}

// A Cell is one combination of levels, on one project and image.
type Cell struct {
	// ID is stable: a digest of the project, the image as written and the
	// levels, so results survive reordering and resume.
	ID      string `json:"id"`
	Index   int    `json:"index"`
	Project string `json:"project"`
	Image   string `json:"image"`
	// Levels maps every factor of the experiment to its level here.
	Levels map[string]string `json:"levels"`
	// Baseline is true for the cell with every factor at its first level.
	Baseline bool `json:"baseline"`
	// Varied lists the factors not at their baseline level, in factor order.
	Varied []string `json:"varied"`
}

// Label is the cell's levels that differ from the baseline, "baseline" for none.
func (c Cell) Label() string {
	if len(c.Varied) == 0 {
		return "baseline"
	}
	parts := make([]string, len(c.Varied))
	for i, f := range c.Varied {
		parts[i] = f + "=" + c.Levels[f]
	}
	return strings.Join(parts, " ")
}

// A Run is one build of a cell: its repetition number counts from 1.
type Run struct {
	Cell       Cell
	Repetition int
}

// Key names the run's result file.
func (r Run) Key() string { return fmt.Sprintf("%s-r%d", r.Cell.ID, r.Repetition) }

// Cells expands the design: for every project and image, the baseline cell
// first, then the design's other cells. one-at-a-time varies each factor
// through its other levels with every other factor at baseline; factorial is
// every combination (the last factor varies fastest); sample is the baseline
// and Samples cells drawn without replacement from the rest of the factorial
// with the seed, in factorial order. Every project and image gets the same
// levels.
func (e *Experiment) Cells() []Cell {
	var combos [][]int
	switch e.Design {
	case DesignOneAtATime:
		combos = append(combos, make([]int, len(e.Factors)))
		for i, f := range e.Factors {
			for l := 1; l < len(f.Levels); l++ {
				c := make([]int, len(e.Factors))
				c[i] = l
				combos = append(combos, c)
			}
		}
	case DesignFactorial, DesignSample:
		n := e.factorialSize()
		all := make([][]int, n)
		for k := range n {
			c := make([]int, len(e.Factors))
			rest := k
			for i := len(e.Factors) - 1; i >= 0; i-- {
				c[i] = rest % len(e.Factors[i].Levels)
				rest /= len(e.Factors[i].Levels)
			}
			all[k] = c
		}
		combos = all
		if e.Design == DesignSample {
			r := rand.New(rand.NewPCG(e.Seed, 0x7265_7072_6f62_6f78)) // "reprobox"
			picked := r.Perm(n - 1)[:e.Samples]
			slices.Sort(picked)
			combos = [][]int{all[0]}
			for _, k := range picked {
				combos = append(combos, all[k+1])
			}
		}
	}
	var cells []Cell
	for _, p := range e.Projects {
		for _, img := range e.Images {
			for _, combo := range combos {
				c := Cell{Project: p, Image: img, Levels: map[string]string{}, Varied: []string{}, Index: len(cells)}
				// The ID covers every input of the cell's builds that the
				// file or the command line gives, so that resuming never
				// reuses a result made under other inputs: the command,
				// and the seed where it decides what a "perturbed" level
				// is (elsewhere it only picks cells).
				h := sha256.New()
				fmt.Fprintf(h, "project=%s\x00image=%s\x00command=%q\x00", p, img, e.Command)
				for i, f := range e.Factors {
					if f.Levels[combo[i]] == "perturbed" {
						fmt.Fprintf(h, "seed=%d\x00", e.Seed)
						break
					}
				}
				for i, f := range e.Factors {
					lvl := f.Levels[combo[i]]
					c.Levels[f.Name] = lvl
					if combo[i] != 0 {
						c.Varied = append(c.Varied, f.Name)
					}
					fmt.Fprintf(h, "%s=%s\x00", f.Name, lvl)
				}
				c.Baseline = len(c.Varied) == 0
				c.ID = hex.EncodeToString(h.Sum(nil))[:12]
				cells = append(cells, c)
			}
		}
	}
	return cells
}

// Runs lists every build: each cell's repetitions, cell by cell.
func (e *Experiment) Runs() []Run {
	var runs []Run
	for _, c := range e.Cells() {
		for k := 1; k <= e.Repeats; k++ {
			runs = append(runs, Run{Cell: c, Repetition: k})
		}
	}
	return runs
}

// Settings is the environment of a cell's build: base (the project's
// normalized environment) with each factor at the cell's level, applied in
// factor order.
func (e *Experiment) Settings(base policies.Settings, c Cell) policies.Settings {
	s := base
	s.Env = slices.Clone(base.Env)
	for _, f := range e.Factors {
		ApplyLevel(&s, base, f.Name, c.Levels[f.Name], e.Seed)
	}
	return s
}
