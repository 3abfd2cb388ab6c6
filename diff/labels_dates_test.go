package diff

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The time factor's range in these tests: a clock moved back by 398d6h23m
// from SOURCE_DATE_EPOCH 1700000000 (2023-11-14T22:13:20Z), from an hour
// before it to two days after, as policies gives it.
var (
	movedFrom = time.Date(2022, 10, 12, 14, 50, 20, 0, time.UTC)
	movedTo   = time.Date(2022, 10, 14, 15, 50, 20, 0, time.UTC)
)

// dateForms are real-looking lines holding a date or time, as the variant
// (moved clock) and the control (SOURCE_DATE_EPOCH) print them.
var dateForms = []struct {
	name             string
	variant, control string
}{
	{"date(1)", "Built on Wed Oct 12 15:50:20 UTC 2022 by builder", "Built on Tue Nov 14 22:13:20 UTC 2023 by builder"},
	{"ctime", "Wed Oct 12 15:50:20 2022\n", "Tue Nov 14 22:13:20 2023\n"},
	{"date with offset", "Wed Oct 12 15:50:20 +0200 2022", "Tue Nov 14 22:13:20 +0000 2023"},
	{"RFC 2822", "Date: Wed, 12 Oct 2022 15:50:20 +0000", "Date: Tue, 14 Nov 2023 22:13:20 +0000"},
	{"ls -l", "-rwxr-xr-x 1 builder builder 16K Oct 12 15:50 hello", "-rwxr-xr-x 1 builder builder 16K Nov 14 22:13 hello"},
	{"man .TH", `.TH HELLO 1 "October 2022" "hello 0.1" "User Commands"`, `.TH HELLO 1 "November 2023" "hello 0.1" "User Commands"`},
	{"month abbreviation", "Release: Oct. 2022", "Release: Nov. 2023"},
	{"day first", "generated 12/10/2022", "generated 14/11/2023"},
	{"month first", "generated 10/12/2022", "generated 11/14/2023"},
	{"dotted", "Stand: 12.10.2022", "Stand: 14.11.2023"},
	{"copyright", "Copyright (C) 2022 The Authors", "Copyright (C) 2023 The Authors"},
	{"copyright range", "© 2019-2022 Example Corp.", "© 2019-2023 Example Corp."},
}

// TestLabelerDateForms checks that each common date form names the time
// factor in the variant's line and not in the control's.
func TestLabelerDateForms(t *testing.T) {
	l := newLabeler(nil, []TimeRange{{Factor: "time", From: movedFrom, To: movedTo}})
	for _, tc := range dateForms {
		for _, side := range []struct {
			s    string
			want bool
		}{{tc.variant, true}, {tc.control, false}} {
			set := map[string]bool{}
			l.scan(side.s, set)
			if set["time"] != side.want {
				t.Errorf("%s: scan(%q) labelled %v, want %v", tc.name, side.s, set["time"], side.want)
			}
		}
	}
	// Not dates: a version, a size, an impossible day.
	for _, s := range []string{"version 2022.1.0", "size 2022 bytes", "31/02/2022", "Oct 32 15:50", "Copyright holders: see AUTHORS"} {
		set := map[string]bool{}
		l.scan(s, set)
		if set["time"] {
			t.Errorf("scan(%q) labelled time", s)
		}
	}
}

// FuzzLabelerScan checks that the labeler never panics and names only the
// factors it was given, seeded from the date forms and the text fixtures.
func FuzzLabelerScan(f *testing.F) {
	for _, tc := range dateForms {
		f.Add(tc.variant)
		f.Add(tc.control)
	}
	if files, err := filepath.Glob("testdata/text/*"); err == nil {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
				f.Add(string(b))
			}
		}
	}
	l := newLabeler([]Label{{Factor: "user", Values: []string{"rbxuser2042"}}},
		[]TimeRange{{Factor: "time", From: movedFrom, To: movedTo}})
	f.Fuzz(func(t *testing.T, s string) {
		set := map[string]bool{}
		l.scan(s, set)
		for k := range set {
			if k != "time" && k != "user" {
				t.Errorf("scan(%q) labelled unknown factor %q", s, k)
			}
		}
	})
}
