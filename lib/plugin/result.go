package plugin

import (
	"fmt"
	"strings"
)

// Result is what a check returns. A check of many things (mounts, arrays,
// servers) puts one Result per thing in Subs; the overall state is the worst
// of its own and theirs, and an empty Summary is made from them.
type Result struct {
	State   State
	Summary string   // the first line's text after "STATE - "
	Long    []string // long output, one entry per line
	Perf    []Perf
	Subs    []Result
}

// Resultf returns a result with a formatted summary.
func Resultf(s State, format string, args ...any) Result {
	return Result{State: s, Summary: fmt.Sprintf(format, args...)}
}

// Overall is the worst state of the result and all its sub-results.
func (r Result) Overall() State {
	s := r.State
	for _, sub := range r.Subs {
		s = Worst(s, sub.Overall())
	}
	return s
}

// AllPerf is the result's perfdata followed by its sub-results'.
func (r Result) AllPerf() []Perf {
	out := append([]Perf(nil), r.Perf...)
	for _, sub := range r.Subs {
		out = append(out, sub.AllPerf()...)
	}
	return out
}

// summary is the result's own text, or, when it has none, the summaries of
// its worst sub-results (all of them when everything is OK).
func (r Result) summary() string {
	if r.Summary != "" || len(r.Subs) == 0 {
		return r.Summary
	}
	worst := r.Overall()
	var parts []string
	for _, sub := range r.Subs {
		if worst == OK || sub.Overall() == worst {
			parts = append(parts, sub.summary())
		}
	}
	return strings.Join(parts, ", ")
}

// Format renders the result as plugin output under the given check name
// ("PBX_DISK"). The text always ends with a newline.
func (r Result) Format(name string) string {
	var b strings.Builder
	state := r.Overall()
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(state.String())
	if s := oneLine(r.summary()); s != "" {
		b.WriteString(" - ")
		b.WriteString(s)
	}
	if perf := r.AllPerf(); len(perf) > 0 {
		b.WriteString(" |")
		for _, p := range perf {
			b.WriteByte(' ')
			b.WriteString(p.String())
		}
	}
	b.WriteByte('\n')
	if len(r.Subs) > 0 && r.Summary != "" || len(r.Subs) > 1 || hasNested(r) {
		writeSubs(&b, r.Subs, 0)
	}
	for _, l := range r.Long {
		b.WriteString(strings.ReplaceAll(l, "|", "/"))
		b.WriteByte('\n')
	}
	return b.String()
}

func hasNested(r Result) bool {
	for _, s := range r.Subs {
		if len(s.Subs) > 0 || len(s.Long) > 0 {
			return true
		}
	}
	return false
}

// writeSubs prints sub-results the way NETWAYS/go-check does; Icinga Web
// renders the [STATE] tags as state badges.
func writeSubs(b *strings.Builder, subs []Result, depth int) {
	indent := strings.Repeat("    ", depth)
	for _, s := range subs {
		fmt.Fprintf(b, "%s\\_ [%s] %s\n", indent, s.Overall(), oneLine(s.summary()))
		for _, l := range s.Long {
			fmt.Fprintf(b, "%s    %s\n", indent, strings.ReplaceAll(l, "|", "/"))
		}
		writeSubs(b, s.Subs, depth+1)
	}
}

// oneLine keeps a summary on the first line: newlines become spaces and a
// '|' cannot start perfdata early.
func oneLine(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "|", "/").Replace(s)
	return strings.TrimSpace(s)
}
