package threshold

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"pbxha/lib/plugin"
)

// Range is one parsed range. The zero value is "not set": it never alerts.
type Range struct {
	set    bool
	text   string
	start  float64 // -Inf when the start is "~"
	end    float64 // +Inf when the end is empty
	inside bool    // "@": alert when the value is inside [start, end]
}

// number is what the guidelines allow for a range endpoint: a plain decimal,
// optionally signed. ParseFloat alone would also take "NaN", "Inf", "1e3" and
// hex floats, none of which belong in a threshold.
var number = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// Parse reads a range. The error says what was wrong with it; callers wrap
// it with the flag's name.
func Parse(s string) (Range, error) {
	orig := s
	if strings.TrimSpace(s) == "" {
		return Range{}, fmt.Errorf("empty range")
	}
	if strings.TrimSpace(s) != s {
		return Range{}, fmt.Errorf("range %q has surrounding spaces", orig)
	}
	r := Range{set: true, text: orig, start: 0, end: math.Inf(1)}
	if strings.HasPrefix(s, "@") {
		r.inside = true
		s = s[1:]
	}
	startText, endText, hasColon := strings.Cut(s, ":")
	if !hasColon {
		// "10" means 0:10.
		endText, startText = startText, ""
		if endText == "" {
			return Range{}, fmt.Errorf("range %q has no number", orig)
		}
	}
	switch {
	case startText == "~":
		r.start = math.Inf(-1)
	case startText == "":
		r.start = 0 // ":10" is 0:10, as monitoring-plugins reads it
	default:
		v, err := parseNumber(startText)
		if err != nil {
			return Range{}, fmt.Errorf("range %q: start %w", orig, err)
		}
		r.start = v
	}
	if endText != "" {
		v, err := parseNumber(endText)
		if err != nil {
			return Range{}, fmt.Errorf("range %q: end %w", orig, err)
		}
		r.end = v
	}
	if r.start > r.end {
		return Range{}, fmt.Errorf("range %q: start %s is greater than end %s", orig, fmtNum(r.start), fmtNum(r.end))
	}
	return r, nil
}

// MustParse is Parse for constants in code; it panics on a bad range.
func MustParse(s string) Range {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

func parseNumber(s string) (float64, error) {
	if !number.MatchString(s) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseFloat(s, 64)
}

// IsSet reports whether the range was given.
func (r Range) IsSet() bool { return r.set }

// String returns the range as it was written ("" when unset), which is also
// what goes into perfdata.
func (r Range) String() string { return r.text }

// Alert reports whether v breaches the range. Endpoints are inclusive: with
// "10", 10 is fine and 10.01 alerts; with "@10:20", 10 and 20 alert. An unset
// range never alerts; NaN always does (a value we could not read is no
// reason for calm).
func (r Range) Alert(v float64) bool {
	if !r.set {
		return false
	}
	if math.IsNaN(v) {
		return true
	}
	in := v >= r.start && v <= r.end
	if r.inside {
		return in
	}
	return !in
}

// Bounds returns the numeric endpoints (±Inf where open) and whether the
// range is inverted with "@".
func (r Range) Bounds() (start, end float64, inside bool) { return r.start, r.end, r.inside }

// Set, Type: Range is a flag value (pflag.Value), so a bad range is refused
// while flags are parsed and the error names the flag.
func (r *Range) Set(s string) error {
	p, err := Parse(s)
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// Type names the value in --help.
func (r *Range) Type() string { return "range" }

func fmtNum(f float64) string {
	switch {
	case math.IsInf(f, -1):
		return "~"
	case math.IsInf(f, 1):
		return "inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// Pair is a warning and a critical range, as every check's -w/-c.
type Pair struct {
	Warn, Crit Range
}

// Pairf builds a Pair from two range strings; empty means unset. Meant for
// defaults in code: it panics on a bad range.
func Pairf(warn, crit string) Pair {
	var p Pair
	if warn != "" {
		p.Warn = MustParse(warn)
	}
	if crit != "" {
		p.Crit = MustParse(crit)
	}
	return p
}

// State is CRITICAL when the critical range alerts, else WARNING when the
// warning range does, else OK. Both are always evaluated against the value,
// never short-circuited across values: every sub-result gets its own state.
func (p Pair) State(v float64) plugin.State {
	switch {
	case p.Crit.Alert(v):
		return plugin.Critical
	case p.Warn.Alert(v):
		return plugin.Warning
	}
	return plugin.OK
}

// Perf returns perfdata for v with this pair's ranges as warn and crit.
func (p Pair) Perf(label string, v float64, uom string) plugin.Perf {
	return plugin.Perf{Label: label, Value: v, UOM: uom, Warn: p.Warn.String(), Crit: p.Crit.String()}
}

// Describe says which range v breached, for a summary: "(> 90)",
// "(outside 10:20)"; "" when none.
func (p Pair) Describe(v float64) string {
	switch {
	case p.Crit.Alert(v):
		return "(critical " + p.Crit.explain(v) + ")"
	case p.Warn.Alert(v):
		return "(warning " + p.Warn.explain(v) + ")"
	}
	return ""
}

func (r Range) explain(v float64) string {
	switch {
	case r.inside:
		return "inside " + fmtNum(r.start) + ":" + fmtNum(r.end)
	case v > r.end:
		return "> " + fmtNum(r.end)
	case v < r.start:
		return "< " + fmtNum(r.start)
	}
	return r.text // NaN
}
