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
)

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
