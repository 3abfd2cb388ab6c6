package policies

import (
	"strconv"
	"time"
)

// TimeShift is how far the time factor moves the clock: 398 days, 6 hours and
// 23 minutes, as the Reproducible Builds test network does. It moves the clock
// back, where the test network moves it forward: a frozen clock ahead of the
// real one puts files the build writes at their real, varying times (the
// file-time clamp is min(real, clock)), and an absolute wait computed from it
// (pthread_cond_timedwait on CLOCK_REALTIME) would sleep until the real clock
// catches up. Behind the real one, both are deterministic and immediate.
const TimeShift = 398*24*3600 + 6*3600 + 23*60

// timeFactor is the wall clock, frozen by the time shim (shim/time.c).
var timeFactor = Factor{
	Name:  "time",
	Doc:   "reprobox's time shim (LD_PRELOAD) freezes the wall clock and clamps the file times stat(2) reports to it; perturbed it is moved back by 398d6h23m. SOURCE_DATE_EPOCH is unchanged",
	Needs: []Need{NeedFiles},
	Sets:  []string{"Clock"},
	Normalize: func(s *Settings) {
		s.Clock = s.SourceDateEpoch
	},
	Perturb: func(s *Settings, _ uint64) {
		s.Clock = s.SourceDateEpoch - TimeShift
		if s.Clock <= 0 { // a SOURCE_DATE_EPOCH within TimeShift of 1970
			s.Clock = s.SourceDateEpoch + TimeShift
		}
	},
	Value: func(s Settings) string { return s.ClockTime().Format("2006-01-02T15:04:05Z") },
	Env: func(s Settings) []string {
		if s.Clock == 0 {
			return nil
		}
		return []string{"LD_PRELOAD=" + TimeShim, "REPROBOX_CLOCK=" + strconv.FormatInt(s.Clock, 10)}
	},
	// A time near the shifted clock: from an hour before it (a clock read
	// while the build starts) to two days after (a long build's file times,
	// a date formatted in any zone).
	Evidence: func(base, vs Settings) Evidence {
		if vs.Clock == base.Clock {
			return Evidence{}
		}
		from := time.Unix(vs.Clock, 0)
		return Evidence{Times: []TimeSpan{{From: from.Add(-time.Hour), To: from.Add(48 * time.Hour)}}}
	},
	Probe: Probe{
		Keys:      []string{"clock", "file_mtime"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			c := strconv.FormatInt(s.Clock, 10)
			return map[string]string{"clock": c, "file_mtime": c}
		},
	},
}
