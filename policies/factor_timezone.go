package policies

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTZ is the normalized time zone.
const DefaultTZ = "UTC"

// perturbedTZ is the Chatham Islands' zone: UTC+12:45, and +13:45 in its
// summer (late September to early April), so it is far from UTC (a local date
// differs from the UTC one for most of the day), its offset is not a whole
// number of hours (code that keeps offsets in hours gets it wrong), and it has
// a daylight saving rule on the southern calendar (code that assumes a fixed
// offset, or northern summers, gets it wrong). reprotest uses GMT+12 and
// GMT-14, whole hours without DST.
const perturbedTZ = "Pacific/Chatham"

// timezoneFactor is TZ.
var timezoneFactor = Factor{
	Name:      "timezone",
	Doc:       "TZ; perturbed, Pacific/Chatham: UTC+12:45, +13:45 with daylight saving from September to April (far from UTC, not a whole hour, a southern DST rule)",
	Sets:      []string{"TZ"},
	Normalize: func(s *Settings) { s.TZ = DefaultTZ },
	Perturb:   func(s *Settings, _ uint64) { s.TZ = perturbedTZ },
	Value:     func(s Settings) string { return s.TZ },
	Env:       func(s Settings) []string { return []string{"TZ=" + s.TZ} },
	// The zone's name and the offsets a formatted time carries, in the
	// forms date(1), strftime's %z and RFC 3339 print them.
	Evidence: func(base, vs Settings) Evidence {
		if vs.TZ == base.TZ {
			return Evidence{}
		}
		ev := Evidence{Values: []string{vs.TZ}}
		if vs.TZ == perturbedTZ {
			ev.Values = append(ev.Values, "+1245", "+12:45", "+1345", "+13:45")
		} else if off, ok := zoneOffset(vs.TZ); ok {
			ev.Values = append(ev.Values, off[:3])
		}
		return ev
	},
	Probe: Probe{
		Keys:      []string{"tz_abbrev"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			if off, ok := zoneOffset(s.TZ); ok {
				return map[string]string{"tz_abbrev": off}
			}
			// date +%z at the frozen clock, from the host's zone data.
			if loc, err := time.LoadLocation(s.TZ); err == nil && s.Clock != 0 {
				return map[string]string{"tz_abbrev": s.ClockTime().In(loc).Format("-0700")}
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
