package fssync

import (
	"fmt"
	"path/filepath"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// DirResult is one compared directory: its diff, or why it could not be
// compared.
type DirResult struct {
	Dir  string
	Diff Diff
	Err  error
}

// Policy is how differences are judged.
type Policy struct {
	Count threshold.Pair // on missing+extra+different
	Age   threshold.Pair // on the oldest unsynced change, in seconds
	Now   time.Time
}

// Evaluate judges each directory as a sub-result. A directory that could
// not be compared is UNKNOWN: whether the peer is up is other checks'
// verdict.
func Evaluate(dirs []DirResult, p Policy) plugin.Result {
	var r plugin.Result
	labels := perfLabels(dirs)
	for i, d := range dirs {
		r.Subs = append(r.Subs, evaluateDir(d, labels[i], p))
	}
	if len(dirs) == 1 {
		return r.Subs[0]
	}
	return r
}

func evaluateDir(d DirResult, label string, p Policy) plugin.Result {
	if d.Err != nil {
		res := plugin.Resultf(plugin.Unknown, "%s: %s", d.Dir, plugin.Clean(d.Err.Error(), 0))
		for _, l := range []string{"missing", "extra", "different", "oldest_unsynced_age"} {
			res.Perf = append(res.Perf, plugin.Perf{Label: label + l, Unknown: true})
		}
		return res
	}
	x := d.Diff
	total := float64(x.Total())
	age := 0.0
	if x.HasOldest {
		age = max(p.Now.Sub(time.Unix(0, x.Oldest)).Seconds(), 0)
	}
	st := plugin.Worst(p.Count.State(total), p.Age.State(age))
	res := plugin.Result{State: st}
	if x.Total() == 0 {
		res.Summary = fmt.Sprintf("%s: in sync (%d entries)", d.Dir, x.Local)
	} else {
		res.Summary = fmt.Sprintf("%s: %d missing on the peer, %d extra on the peer, %d different", d.Dir, x.Missing, x.Extra, x.Different)
		if s := p.Count.Describe(total); s != "" {
			res.Summary += " " + s
		}
		if x.HasOldest {
			res.Summary += fmt.Sprintf("; oldest unsynced change %s ago", time.Duration(age*float64(time.Second)).Round(time.Second))
			if s := p.Age.Describe(age); s != "" {
				res.Summary += " " + s
			}
		}
	}
	for _, l := range x.List {
		line := l.Kind + ": " + plugin.Clean(l.Path, 200)
		if l.What != "" {
			line += " (" + l.What + ")"
		}
		res.Long = append(res.Long, line)
	}
	if more := x.Total() - len(x.List); more > 0 && len(x.List) > 0 {
		res.Long = append(res.Long, fmt.Sprintf("... and %d more", more))
	}
	res.Perf = []plugin.Perf{
		p.Count.Perf(label+"missing", float64(x.Missing), ""),
		p.Count.Perf(label+"extra", float64(x.Extra), ""),
		p.Count.Perf(label+"different", float64(x.Different), ""),
		p.Age.Perf(label+"oldest_unsynced_age", age, "s"),
	}
	for i := range res.Perf {
		res.Perf[i].Min = plugin.F(0)
	}
	return res
}

// perfLabels prefixes each directory's perfdata with its base name ("sounds_"),
// or its index where two share a base name.
func perfLabels(dirs []DirResult) []string {
	seen := map[string]int{}
	for _, d := range dirs {
		seen[filepath.Base(d.Dir)]++
	}
	out := make([]string, len(dirs))
	for i, d := range dirs {
		b := filepath.Base(d.Dir)
		if seen[b] > 1 || b == "/" || b == "." {
			b = fmt.Sprintf("dir%d", i)
		}
		out[i] = b + "_"
	}
	return out
}
