package policies

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultTZ is the normalized time zone.
const DefaultTZ = "UTC"

// perturbedTZ is 14 hours ahead of UTC: the largest offset there is, so a
// local date differs from the UTC one for most of the day.
const perturbedTZ = "Etc/GMT-14"

// timezoneFactor is TZ.
var timezoneFactor = Factor{
	Name:      "timezone",
	Doc:       "TZ; perturbed, a zone 14 hours ahead of UTC",
	Sets:      []string{"TZ"},
	Normalize: func(s *Settings) { s.TZ = DefaultTZ },
	Perturb:   func(s *Settings, _ uint64) { s.TZ = perturbedTZ },
	Value:     func(s Settings) string { return s.TZ },
	Env:       func(s Settings) []string { return []string{"TZ=" + s.TZ} },
	// The zone's name and the offset a formatted time carries.
	Evidence: func(base, vs Settings) Evidence {
		if vs.TZ == base.TZ {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.TZ, "+14"}}
	},
	Probe: Probe{
		Keys:      []string{"tz_abbrev"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			if off, ok := zoneOffset(s.TZ); ok {
				return map[string]string{"tz_abbrev": off}
			}
			return map[string]string{}
		},
	},
}

// zoneOffset is date +%z in the fixed-offset zones UTC and Etc/GMT±N (whose
// sign is POSIX's, the reverse of the offset's).
func zoneOffset(tz string) (string, bool) {
	if tz == "UTC" || tz == "Etc/UTC" {
		return "+0000", true
	}
	rest, ok := strings.CutPrefix(tz, "Etc/GMT")
	if !ok || len(rest) < 2 {
		return "", false
	}
	n, err := strconv.Atoi(rest[1:])
	if err != nil || n > 14 || strings.Trim(rest[1:], "0123456789") != "" {
		return "", false
	}
	sign := map[byte]string{'-': "+", '+': "-"}[rest[0]]
	if sign == "" {
		return "", false
	}
	return fmt.Sprintf("%s%02d00", sign, n), true
}
