package disk

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Policy is what the user asked for.
type Policy struct {
	Used     threshold.Pair // space used, percent
	Inodes   threshold.Pair // inodes used, percent
	FreeWarn Size           // WARNING when less than this is free; unset: no check
	FreeCrit Size           // CRITICAL when less than this is free
	// TimeoutState is the state of a mount whose statfs did not return in
	// MountTimeout: -t's state, CRITICAL unless told otherwise, since a
	// hung mount blocks every process that touches it.
	TimeoutState plugin.State
	MountTimeout time.Duration
}

// Used is df's "Used": blocks in use, whoever holds them.
func (s Stats) Used() uint64 {
	if s.Free > s.Total {
		return 0
	}
	return s.Total - s.Free
}

// Usable is used + available: the size a user can fill. It leaves out the
// blocks reserved for root (ext4's 5%), as df's Use% and check_disk do, so
// a filesystem shows 100% when users can write no more even though root
// still can.
func (s Stats) Usable() uint64 { return s.Used() + s.Avail }

// UsedPercent is df's Use%: used / (used + available) × 100, unrounded.
func (s Stats) UsedPercent() float64 {
	if s.Usable() == 0 {
		return 0
	}
	return float64(s.Used()) * 100 / float64(s.Usable())
}

// InodePercent is df -i's IUse%; ok is false for filesystems that report no
// inodes (btrfs, vfat allocate them on demand), which get no inode check.
func (s Stats) InodePercent() (pct float64, ok bool) {
	if s.Inodes == 0 {
		return 0, false
	}
	used := s.Inodes - min(s.IFree, s.Inodes)
	return float64(used) * 100 / float64(s.Inodes), true
}

// roundUp prints a percentage the way df does, rounded up: 80.01% used is
// "81%", never the "80%" that would look within a threshold of 80.
func roundUp(pct float64) string {
	return strconv.FormatFloat(max(0, math.Ceil(pct-1e-9)), 'f', 0, 64) + "%"
}

// Evaluate turns the readings into the check's result: one sub-result per
// mount; the summary names the worst mounts, or when all are OK, the
// fullest.
func Evaluate(readings []Reading, p Policy) plugin.Result {
	if len(readings) == 0 {
		return plugin.Resultf(plugin.Unknown, "no filesystems to check")
	}
	var res plugin.Result
	fullest, fullPct := -1, -1.0
	for i, r := range readings {
		sub := EvaluateMount(r, p)
		res.Subs = append(res.Subs, sub)
		if r.Err == nil && r.Stats.UsedPercent() > fullPct {
			fullest, fullPct = i, r.Stats.UsedPercent()
		}
	}
	if len(res.Subs) == 1 {
		return res // the one mount's line is the summary
	}
	worst := res.Overall()
	if worst == plugin.OK && fullest >= 0 {
		res.Summary = fmt.Sprintf("%d mounts OK, fullest: %s", len(res.Subs), res.Subs[fullest].Summary)
		return res
	}
	var parts []string
	others := map[plugin.State]int{}
	for _, s := range res.Subs {
		switch st := s.Overall(); {
		case st == worst:
			parts = append(parts, s.Summary)
		case st != plugin.OK:
			others[st]++
		}
	}
	for _, st := range []plugin.State{plugin.Unknown, plugin.Warning} {
		if n := others[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d more %s", n, st))
		}
	}
	res.Summary = strings.Join(parts, "; ")
	return res
}

// EvaluateMount is one mount's sub-result:
// "/var 93% used (critical > 90), 1.7 GiB free of 24.8 GiB, inodes 4%".
func EvaluateMount(r Reading, p Policy) plugin.Result {
	switch {
	case errors.Is(r.Err, ErrTimeout):
		return plugin.Resultf(p.TimeoutState, "%s: statfs timed out after %s", r.Path, p.MountTimeout)
	case r.Err != nil:
		// check_disk's words, so existing notification filters still match.
		return plugin.Resultf(plugin.Critical, "%s is not accessible: %v", r.Path, r.Err)
	}
	s := r.Stats
	var b strings.Builder
	pct := s.UsedPercent()
	state := p.Used.State(pct)
	fmt.Fprintf(&b, "%s %s used", r.Path, roundUp(pct))
	if d := p.Used.Describe(pct); d != "" {
		b.WriteString(" " + d)
	}
	fmt.Fprintf(&b, ", %s free of %s", FormatBytes(s.Avail), FormatBytes(s.Usable()))
	switch {
	case p.FreeCrit.IsSet() && s.Avail < p.FreeCrit.Bytes:
		fmt.Fprintf(&b, " (critical < %s)", FormatBytes(p.FreeCrit.Bytes))
		state = plugin.Worst(state, plugin.Critical)
	case p.FreeWarn.IsSet() && s.Avail < p.FreeWarn.Bytes:
		fmt.Fprintf(&b, " (warning < %s)", FormatBytes(p.FreeWarn.Bytes))
		state = plugin.Worst(state, plugin.Warning)
	}
	ipct, hasInodes := s.InodePercent()
	if hasInodes {
		state = plugin.Worst(state, p.Inodes.State(ipct))
		fmt.Fprintf(&b, ", inodes %s", roundUp(ipct))
		if d := p.Inodes.Describe(ipct); d != "" {
			b.WriteString(" " + d)
		}
	}

	// Perfdata: the used bytes under the bare path with the percent
	// thresholds converted to bytes, as check_disk prints them, so graphs
	// made for check_disk draw the same lines; the conversion is against
	// used+available, the base of the percentage, so a line and the state
	// agree. The percentages follow with the ranges as given.
	base := float64(s.Usable())
	perf := []plugin.Perf{
		{Label: r.Path, Value: float64(s.Used()), UOM: "B",
			Warn: bytesRange(p.Used.Warn, base), Crit: bytesRange(p.Used.Crit, base),
			Min: plugin.F(0), Max: plugin.F(float64(s.Total))},
		pctPerf(r.Path+" used", pct, p.Used),
	}
	if hasInodes {
		perf = append(perf, pctPerf(r.Path+" inodes", ipct, p.Inodes))
	}
	if p.FreeWarn.IsSet() || p.FreeCrit.IsSet() {
		perf = append(perf, plugin.Perf{Label: r.Path + " free", Value: float64(s.Avail), UOM: "B",
			Warn: atLeast(p.FreeWarn), Crit: atLeast(p.FreeCrit),
			Min: plugin.F(0), Max: plugin.F(base)})
	}
	return plugin.Result{State: state, Summary: b.String(), Perf: perf}
}

func pctPerf(label string, v float64, pair threshold.Pair) plugin.Perf {
	p := pair.Perf(label, math.Round(v*100)/100, "%")
	p.Min, p.Max = plugin.F(0), plugin.F(100)
	return p
}

// atLeast is a free-space minimum as a range: "N:" alerts below N bytes.
func atLeast(s Size) string {
	if !s.IsSet() {
		return ""
	}
	return strconv.FormatUint(s.Bytes, 10) + ":"
}

// bytesRange converts a percent range to bytes of base, keeping its shape:
// "80" → "0:80%" → "N", "10:" → "N:", "@~:5" → "@~:N".
func bytesRange(r threshold.Range, base float64) string {
	if !r.IsSet() {
		return ""
	}
	start, end, inside := r.Bounds()
	conv := func(v float64) string { return plugin.FormatNumber(math.Round(v * base / 100)) }
	var s string
	switch {
	case math.IsInf(start, -1):
		s = "~:"
	case start != 0 || math.IsInf(end, 1):
		s = conv(start) + ":"
	}
	if !math.IsInf(end, 1) {
		s += conv(end)
	}
	if inside {
		s = "@" + s
	}
	return s
}
