package runner

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/reprobox/reprobox/policies"
)

// ErrConfig marks errors in the user's config or flags.
var ErrConfig = errors.New("config error")

// ConfigFile is the name of the project config.
const ConfigFile = "reprobox.toml"

// Config is a project's reprobox.toml.
type Config struct {
	// Image is the pinned image reference, NAME@sha256:....
	Image string `toml:"image"`
	// Command is the build command, as an argv list.
	Command []string `toml:"command"`
	// Artifacts are globs relative to the build directory.
	Artifacts []string `toml:"artifacts"`
	// SourceDateEpoch, when set, overrides the git HEAD commit time.
	SourceDateEpoch *int64 `toml:"source_date_epoch"`
	// CPUs is the normalized CPU count (default 2).
	CPUs int `toml:"cpus"`
	// Env holds extra variables the build needs, recorded with the build.
	Env map[string]string `toml:"env"`
	// Timeout bounds one build ("90m"); empty means no limit.
	Timeout string `toml:"timeout"`
	// Exclude lists top-level entries of the project not copied into the
	// build (default: target and reprobox-out).
	Exclude []string `toml:"exclude"`
	// Vary is the default --vary of `reprobox check`.
	Vary string `toml:"vary"`
	// MaxOutput bounds the total size of one build's artifacts ("8g",
	// the default; k, m, g, t are binary units).
	MaxOutput string `toml:"max_output"`
	// Memory, Disk and Pids limit each build ("8g", "20g", 2048); empty or
	// zero means the defaults of policies.Limits.
	Memory string `toml:"memory"`
	Disk   string `toml:"disk"`
	Pids   int64  `toml:"pids"`
}

// LoadConfig reads dir/reprobox.toml. A missing file gives a zero Config and
// found=false; unknown keys are errors.
func LoadConfig(dir string) (cfg Config, found bool, err error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, false, nil
	}
	if err != nil {
		return Config{}, false, fmt.Errorf("runner: read %s: %w", path, err)
	}
	cfg, err = parseConfig(path, data)
	return cfg, true, err
}

// parseConfig decodes a reprobox.toml read from path (named in errors).
func parseConfig(path string, data []byte) (cfg Config, err error) {
	md, err := toml.Decode(string(data), &cfg)
	if perr := (toml.ParseError{}); errors.As(err, &perr) {
		return Config{}, fmt.Errorf("%w: %s:%d:%d: %s", ErrConfig, path, perr.Position.Line, perr.Position.Col, perr.Message)
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %s", ErrConfig, path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if md.IsDefined("cpus") && cfg.CPUs < 1 {
		return Config{}, fmt.Errorf("%w: %s: cpus = %d: a build needs at least 1 CPU (leave cpus out for the default, 2)", ErrConfig, path, cfg.CPUs)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("%w: %s: unknown key(s) %s (known: image, command, artifacts, source_date_epoch, cpus, env, timeout, exclude, vary, max_output, memory, disk, pids)", ErrConfig, path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// Validate checks a config after flags were merged into it.
func (c *Config) Validate() error {
	switch {
	case c.Image == "":
		return fmt.Errorf("%w: no image: set image = \"NAME@sha256:...\" in %s or pass --image (reprobox image ls lists local images)", ErrConfig, ConfigFile)
	case len(c.Command) == 0:
		return fmt.Errorf("%w: no build command: set command = [\"cargo\", \"build\", ...] in %s or give it after --", ErrConfig, ConfigFile)
	case len(c.Artifacts) == 0:
		return fmt.Errorf("%w: no artifacts: set artifacts = [\"target/release/NAME\"] in %s or pass --artifact", ErrConfig, ConfigFile)
	case c.CPUs < 0:
		return fmt.Errorf("%w: cpus = %d: a build needs at least 1 CPU", ErrConfig, c.CPUs)
	case c.CPUs > runtime.NumCPU():
		return fmt.Errorf("%w: cpus = %d, but this machine has %d CPUs (nproc): choose at most %d", ErrConfig, c.CPUs, runtime.NumCPU(), runtime.NumCPU())
	case c.SourceDateEpoch != nil && (*c.SourceDateEpoch <= 0 || *c.SourceDateEpoch > maxSourceDateEpoch):
		return fmt.Errorf("%w: source_date_epoch = %d is not a time after 1970 and before the year 10000 in seconds since the epoch (git log -1 --format=%%ct prints one)", ErrConfig, *c.SourceDateEpoch)
	case c.Command[0] == "":
		return fmt.Errorf("%w: the build command's program is an empty string: command = [\"cargo\", \"build\", ...]", ErrConfig)
	}
	if err := noNUL(c); err != nil {
		return err
	}
	for _, a := range c.Artifacts {
		if a == "" {
			return fmt.Errorf("%w: an artifact glob is empty: artifacts = [\"target/release/NAME\"]", ErrConfig)
		}
		if filepath.IsAbs(a) || slices.Contains(strings.Split(filepath.ToSlash(a), "/"), "..") {
			return fmt.Errorf("%w: artifact %q must be relative to the build directory, without \"..\" components", ErrConfig, a)
		}
		if _, err := filepath.Match(a, ""); err != nil {
			return fmt.Errorf("%w: artifact glob %q: %v", ErrConfig, a, err)
		}
	}
	for _, e := range c.Exclude {
		if strings.Contains(e, "/") || e == "." || e == ".." || e == "" {
			return fmt.Errorf("%w: exclude %q must name a top-level entry of the project", ErrConfig, e)
		}
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: env key %q", ErrConfig, k)
		}
		if why := reservedEnv(k); why != "" {
			return fmt.Errorf("%w: env.%s in %s: reprobox sets it (%s); remove it from [env]", ErrConfig, k, ConfigFile, why)
		}
	}
	if _, err := c.timeout(); err != nil {
		return err
	}
	if _, err := c.maxOutput(); err != nil {
		return err
	}
	if _, err := c.limits(); err != nil {
		return err
	}
	return nil
}

// maxSourceDateEpoch is 9999-12-31T23:59:59Z: later times have no four-digit
// year, which tar, zip and ar headers and most tools cannot represent.
const maxSourceDateEpoch = 253402300799

// noNUL refuses NUL bytes in what reaches the build as C strings or becomes a
// path: a NUL would cut the string short or fail deep in the sandbox.
func noNUL(c *Config) error {
	check := func(what, v string) error {
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("%w: %s %q contains a NUL byte", ErrConfig, what, v)
		}
		return nil
	}
	var errs []error
	errs = append(errs, check("image", c.Image))
	for _, a := range c.Command {
		errs = append(errs, check("command argument", a))
	}
	for _, a := range c.Artifacts {
		errs = append(errs, check("artifact", a))
	}
	for _, e := range c.Exclude {
		errs = append(errs, check("exclude", e))
	}
	for k, v := range c.Env {
		errs = append(errs, check("env."+k, v))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// DefaultMaxOutput is the default bound on one build's artifacts.
const DefaultMaxOutput = 8 << 30

func (c *Config) maxOutput() (int64, error) {
	if c.MaxOutput == "" {
		return DefaultMaxOutput, nil
	}
	n, err := ParseSize(c.MaxOutput)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: max_output %q is not a positive size such as \"8g\" or \"512m\"", ErrConfig, c.MaxOutput)
	}
	return n, nil
}

// limits parses memory, disk and pids; zero fields mean the defaults.
func (c *Config) limits() (policies.Limits, error) {
	var l policies.Limits
	for _, f := range []struct {
		key, value string
		dst        *int64
	}{{"memory", c.Memory, &l.MemoryBytes}, {"disk", c.Disk, &l.DiskBytes}} {
		if f.value == "" {
			continue
		}
		n, err := parseSize(f.value)
		if err != nil {
			return l, fmt.Errorf("%w: %s = %q in %s: %v", ErrConfig, f.key, f.value, ConfigFile, err)
		}
		*f.dst = n
	}
	l.Pids = c.Pids
	if err := l.Validate(); err != nil {
		return l, fmt.Errorf("%w: %s: %w", ErrConfig, ConfigFile, err)
	}
	return l, nil
}

// parseSize reads a positive size in binary units: "8g" and "8GiB" are 8 GiB,
// "512m" 512 MiB, a plain number is bytes (ParseSize).
func parseSize(s string) (int64, error) {
	n, err := ParseSize(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size such as \"8g\", \"512m\" or \"20GiB\"")
	}
	return n, nil
}

// ParseSize reads a size in bytes: digits, optionally followed by k, m, g or
// t (binary units, any case) and an optional "b" or "ib": "8g", "512MiB",
// "1048576".
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	unit := strings.TrimLeft(t, "0123456789")
	digits := t[:len(t)-len(unit)]
	shift := -1
	switch strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i") {
	case "":
		if unit == "" || unit == "b" {
			shift = 0
		}
	case "k":
		shift = 10
	case "m":
		shift = 20
	case "g":
		shift = 30
	case "t":
		shift = 40
	}
	if digits == "" || shift < 0 {
		return 0, fmt.Errorf("size %q: want digits and an optional unit k, m, g or t", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}

// reservedEnv says why reprobox itself sets a variable in a build, or ""
// when it does not: a config that set it too would shadow a factor's value.
func reservedEnv(k string) string {
	if k == "SOURCE_DATE_EPOCH" {
		return "from source_date_epoch in the config, else git, else 1700000000"
	}
	if f, ok := policies.EnvOwners()[k]; ok {
		return "the " + f + " factor"
	}
	return ""
}

func (c *Config) timeout() (time.Duration, error) {
	if c.Timeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: timeout %q is not a positive duration such as \"90m\"", ErrConfig, c.Timeout)
	}
	return d, nil
}

func (c *Config) excludes(outDir string) []string {
	ex := c.Exclude
	if ex == nil {
		ex = []string{"target", "reprobox-out"}
	}
	if outDir != "" {
		ex = append(slices.Clone(ex), outDir)
	}
	return ex
}

// envList is the config's env as sorted KEY=VALUE entries.
func (c *Config) envList() []string {
	var out []string
	for k, v := range c.Env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
