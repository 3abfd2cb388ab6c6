package published

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Stage0 is what a rustc source tree's src/stage0 (or the older
// src/stage0.json) pins: the compiler release that builds this one, and the
// SHA-256 of every tarball of it.
type Stage0 struct {
	DistServer      string
	CompilerDate    string
	CompilerVersion string
	// Tarballs are sorted by path ("dist/DATE/rustc-VERSION-TRIPLE.tar.xz").
	Tarballs []Stage0Tarball
}

// A Stage0Tarball is one pinned tarball.
type Stage0Tarball struct {
	Path   string
	SHA256 string
}

// ParseStage0 reads src/stage0 (key=value lines, "#" comments, and
// "dist/…=SHA256" checksum lines) or src/stage0.json.
func ParseStage0(data []byte) (*Stage0, error) {
	s := &Stage0{}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("{")) {
		var j struct {
			Config struct {
				DistServer string `json:"dist_server"`
			} `json:"config"`
			Compiler struct {
				Date    string `json:"date"`
				Version string `json:"version"`
			} `json:"compiler"`
			Checksums map[string]string `json:"checksums_sha256"`
		}
		if err := json.Unmarshal(trimmed, &j); err != nil {
			return nil, fmt.Errorf("stage0.json: %w", err)
		}
		s.DistServer, s.CompilerDate, s.CompilerVersion = j.Config.DistServer, j.Compiler.Date, j.Compiler.Version
		for p, h := range j.Checksums {
			sum, err := hexSum(h)
			if err != nil {
				return nil, fmt.Errorf("stage0.json: %s: %w", p, err)
			}
			s.Tarballs = append(s.Tarballs, Stage0Tarball{Path: p, SHA256: sum})
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("stage0 line %d: not key=value", n)
			}
			switch {
			case k == "dist_server":
				s.DistServer = v
			case k == "compiler_date":
				s.CompilerDate = v
			case k == "compiler_version":
				s.CompilerVersion = v
			case strings.HasPrefix(k, "dist/"):
				sum, err := hexSum(v)
				if err != nil {
					return nil, fmt.Errorf("stage0 line %d: %w", n, err)
				}
				s.Tarballs = append(s.Tarballs, Stage0Tarball{Path: k, SHA256: sum})
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if s.CompilerVersion == "" && len(s.Tarballs) == 0 {
		return nil, errors.New("stage0: no compiler_version and no checksums")
	}
	slices.SortFunc(s.Tarballs, func(a, b Stage0Tarball) int { return strings.Compare(a.Path, b.Path) })
	return s, nil
}
