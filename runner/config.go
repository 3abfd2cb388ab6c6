package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	units "github.com/docker/go-units"

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
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return Config{}, true, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return Config{}, true, fmt.Errorf("%w: %s: unknown key(s) %s (known: image, command, artifacts, source_date_epoch, cpus, env, timeout, exclude, vary, memory, disk, pids)", ErrConfig, path, strings.Join(keys, ", "))
	}
	return cfg, true, nil
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
		return fmt.Errorf("%w: cpus = %d", ErrConfig, c.CPUs)
	}
	for _, a := range c.Artifacts {
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
		if why, ok := reservedEnv[k]; ok {
			return fmt.Errorf("%w: env.%s in %s: reprobox sets it (%s); remove it from [env]", ErrConfig, k, ConfigFile, why)
		}
	}
	if _, err := c.timeout(); err != nil {
		return err
	}
	if _, err := c.limits(); err != nil {
		return err
	}
	return nil
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

// parseSize reads a size in binary units: "8g" and "8GiB" are 8 GiB, "512m"
// 512 MiB, a plain number is bytes (docker's --memory syntax, by docker's own
// parser).
func parseSize(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size such as \"8g\", \"512m\" or \"20GiB\"")
	}
	return n, nil
}

// reservedEnv are the variables reprobox itself sets in a build, with what
// sets them: a config that set them too would shadow a factor's value.
var reservedEnv = map[string]string{
	"PATH":              "the exec_path factor",
	"HOME":              "the home factor",
	"CARGO_HOME":        "the home factor: $HOME/.cargo",
	"USER":              "the user factor",
	"LOGNAME":           "the user factor",
	"LANG":              "the locale factor",
	"LC_ALL":            "the locale factor",
	"LANGUAGE":          "the locale factor",
	"TZ":                "the timezone factor",
	"SOURCE_DATE_EPOCH": "from source_date_epoch in the config, else git, else 1700000000",
	"LD_PRELOAD":        "the time factor's clock shim",
	"REPROBOX_CLOCK":    "the time factor's clock shim",
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
