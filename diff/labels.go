package diff

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// labeler finds perturbed values in differing content.
type labeler struct {
	values []labelValue
	times  []TimeRange
}

type labelValue struct{ factor, value string }

func newLabeler(labels []Label, times []TimeRange) *labeler {
	l := &labeler{}
	for _, lb := range labels {
		for _, v := range lb.Values {
			if v != "" && lb.Factor != "" {
				l.values = append(l.values, labelValue{lb.Factor, v})
			}
		}
	}
	for _, t := range times {
		if t.Factor != "" && !t.To.Before(t.From) {
			l.times = append(l.times, t)
		}
	}
	return l
}

var (
	reDigits   = regexp.MustCompile(`[0-9]+`)
	reDateTime = regexp.MustCompile(`\b(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`)
	reDate     = regexp.MustCompile(`\b(\d{4}-\d{2}-\d{2})\b`)
	reCDate    = regexp.MustCompile(`\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ 0-3]?\d) (\d{4})\b`)
	// date(1)'s and ctime's "Nov 14 22:13:20 UTC 2023" (the weekday
	// before it is not needed).
	reCtime = regexp.MustCompile(`\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +([0-3]?\d) (\d{2}:\d{2}:\d{2})(?: [A-Za-z]{1,5}| [+-]\d{2,4})? (\d{4})\b`)
	// RFC 2822 and HTTP dates, "14 Nov 2023 22:13:20".
	reRFC2822 = regexp.MustCompile(`\b([0-3]?\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}:\d{2}:\d{2})\b`)
	// ls -l and tar tv's "Nov 14 22:13": a recent time without its year.
	reLsTime = regexp.MustCompile(`\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +([0-3]?\d) (\d{2}:\d{2})\b`)
	// A month and year, as man pages' .TH and changelogs write them:
	// "November 2023", "Nov. 2023".
	reMonthYear = regexp.MustCompile(`\b(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.? (\d{4})\b`)
	// Day, month and year with slashes or dots: 14/11/2023, 14.11.2023,
	// 11/14/2023 (both readings are tried).
	reNumDate = regexp.MustCompile(`\b([0-3]?\d)[/.]([0-3]?\d)[/.](\d{4})\b`)
	// A copyright year or range: "Copyright (C) 2021-2023", "© 2023".
	reCopyright = regexp.MustCompile(`(?i)(?:copyright|\(c\)|©)[^0-9\n]{0,24}(\d{4})(?:\s*[-–,]\s*(\d{4}))?`)
)

// months are the month names the date forms above use, in full and
// abbreviated.
var months = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Sept": 9, "Oct": 10, "Nov": 11, "Dec": 12,
	"January": 1, "February": 2, "March": 3, "April": 4, "June": 6, "July": 7, "August": 8, "September": 9, "October": 10, "November": 11, "December": 12,
}

// zoneSlack widens a time read without its zone: it may be in any zone from
// UTC-12 to UTC+14.
const zoneSlack = 14 * time.Hour

// scanDates labels the times of the date forms beyond ISO 8601 and epoch
// seconds that s holds.
func (l *labeler) scanDates(s string, set map[string]bool) {
	day := func(y int, m time.Month, d int) (time.Time, bool) {
		t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return t, t.Day() == d && t.Month() == m // not 31/02
	}
	for _, m := range reCtime.FindAllStringSubmatch(s, 64) {
		if t, err := time.Parse("Jan 2 15:04:05 2006", m[1]+" "+m[2]+" "+m[3]+" "+m[4]); err == nil {
			l.time(t.Add(-zoneSlack), t.Add(zoneSlack), set)
		}
	}
	for _, m := range reRFC2822.FindAllStringSubmatch(s, 64) {
		if t, err := time.Parse("2 Jan 2006 15:04:05", m[1]+" "+m[2]+" "+m[3]+" "+m[4]); err == nil {
			l.time(t.Add(-zoneSlack), t.Add(zoneSlack), set)
		}
	}
	for _, m := range reLsTime.FindAllStringSubmatch(s, 64) {
		d, _ := strconv.Atoi(m[2])
		hm, err := time.Parse("15:04", m[3])
		if err != nil {
			continue
		}
		// The year is the one of any range it could fall in.
		for _, r := range l.times {
			for _, y := range []int{r.From.Year(), r.To.Year()} {
				if t, ok := day(y, months[m[1]], d); ok {
					t = t.Add(time.Duration(hm.Hour())*time.Hour + time.Duration(hm.Minute())*time.Minute)
					l.time(t.Add(-zoneSlack), t.Add(zoneSlack+time.Minute), set)
				}
			}
		}
	}
	for _, m := range reMonthYear.FindAllStringSubmatch(s, 64) {
		y, _ := strconv.Atoi(m[2])
		if t, ok := day(y, months[m[1]], 1); ok {
			l.time(t.Add(-zoneSlack), t.AddDate(0, 1, 0).Add(zoneSlack), set)
		}
	}
	for _, m := range reNumDate.FindAllStringSubmatch(s, 64) {
		a, _ := strconv.Atoi(m[1])
		b, _ := strconv.Atoi(m[2])
		y, _ := strconv.Atoi(m[3])
		for _, dm := range [][2]int{{a, b}, {b, a}} {
			if dm[1] < 1 || dm[1] > 12 {
				continue
			}
			if t, ok := day(y, time.Month(dm[1]), dm[0]); ok {
				l.time(t.Add(-zoneSlack), t.Add(24*time.Hour+zoneSlack), set)
			}
		}
	}
	for _, m := range reCopyright.FindAllStringSubmatch(s, 64) {
		for _, ys := range m[1:] {
			if y, err := strconv.Atoi(ys); err == nil && ys != "" {
				from := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
				l.time(from.Add(-zoneSlack), from.AddDate(1, 0, 0).Add(zoneSlack), set)
			}
		}
	}
}

// scan adds to set the factors whose values or times occur in s.
func (l *labeler) scan(s string, set map[string]bool) {
	if s == "" {
		return
	}
	l.scanValues(s, set)
	if len(l.times) == 0 || !strings.ContainsAny(s, "0123456789") {
		return
	}
	for _, m := range reDigits.FindAllString(s, 256) {
		// Epoch seconds: 9 to 11 digits (1973 to 5138).
		if len(m) < 9 || len(m) > 11 || m[0] == '0' {
			continue
		}
		if v, err := strconv.ParseInt(m, 10, 64); err == nil {
			l.time(time.Unix(v, 0), time.Unix(v, 0), set)
		}
	}
	for _, m := range reDateTime.FindAllStringSubmatch(s, 64) {
		zone := m[4]
		if zone == "" {
			zone = "Z"
		} else if len(zone) == 5 {
			zone = zone[:3] + ":" + zone[3:]
		}
		if t, err := time.Parse(time.RFC3339Nano, m[1]+"T"+m[2]+m[3]+zone); err == nil {
			l.time(t, t, set)
		}
	}
	for _, m := range reDate.FindAllStringSubmatch(s, 64) {
		if t, err := time.Parse("2006-01-02", m[1]); err == nil {
			l.time(t, t.Add(24*time.Hour-time.Second), set)
		}
	}
	for _, m := range reCDate.FindAllStringSubmatch(s, 64) {
		if t, err := time.Parse("Jan 2 2006", m[1]+" "+strings.TrimSpace(m[2])+" "+m[3]); err == nil {
			l.time(t, t.Add(24*time.Hour-time.Second), set)
		}
	}
	l.scanDates(s, set)
}

// scanValues finds label values in s. A value found only inside a longer value
// of another factor (a user name inside a build path) does not count for its
// own factor: the longer value explains those bytes.
func (l *labeler) scanValues(s string, set map[string]bool) {
	type occ struct {
		start, end int
		factor     string
	}
	var found []occ
	for _, v := range l.values {
		for off, n := 0, 0; n < 64; n++ {
			i := strings.Index(s[off:], v.value)
			if i < 0 {
				break
			}
			found = append(found, occ{off + i, off + i + len(v.value), v.factor})
			off += i + 1
		}
	}
	if len(found) == 0 {
		return
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].end-found[i].start > found[j].end-found[j].start })
	var kept []occ
	for _, o := range found {
		inside := false
		for _, k := range kept {
			if k.factor != o.factor && k.start <= o.start && o.end <= k.end {
				inside = true
				break
			}
		}
		if !inside {
			kept = append(kept, o)
			set[o.factor] = true
		}
	}
}

// time adds the factors of the ranges that overlap [from, to].
func (l *labeler) time(from, to time.Time, set map[string]bool) {
	for _, r := range l.times {
		if !to.Before(r.From) && !from.After(r.To) {
			set[r.Factor] = true
		}
	}
}
