package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Targets the table judges against: at most 1.1x a C peer's wall and CPU
// time, at most half a Perl peer's (our reading of "far below"), and a peak
// RSS of at most 15 MiB.
const (
	targetC    = 1.1
	targetPerl = 0.5
	targetRSS  = 15.0
)

type machineInfo struct {
	cpu, kernel, goHarness, goBinaries string
	load                               string
	cores                              int
	sizes                              map[string]int64
}

func machine(bin string) machineInfo {
	m := machineInfo{cores: runtime.NumCPU(), goHarness: runtime.Version(), sizes: map[string]int64{}}
	m.cpu = cpuModel()
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.kernel = utsString(u.Sysname[:]) + " " + utsString(u.Release[:]) + " " + utsString(u.Machine[:])
	}
	versions := map[string]bool{}
	paths, _ := filepath.Glob(filepath.Join(bin, "check_pbx_*"))
	for _, p := range paths {
		if bi, err := buildinfo.ReadFile(p); err == nil {
			versions[bi.GoVersion] = true
		}
		if st, err := os.Stat(p); err == nil {
			m.sizes[filepath.Base(p)] = st.Size()
		}
	}
	var vs []string
	for v := range versions {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	m.goBinaries = strings.Join(vs, ", ")
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func utsString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

func report(w io.Writer, o options, m machineInfo, rs []pairResult, fixtureNotes []string, failoverText string) {
	fmt.Fprintf(w, "## pbxha checks vs their monitoring-plugins and classic peers\n\n")
	fmt.Fprintf(w, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Machine: %s, %d cores, %s; 1-min load average %s\n", m.cpu, m.cores, m.kernel, m.load)
	fmt.Fprintf(w, "- Go: harness %s; our checks built with %s\n", m.goHarness, orNA(m.goBinaries))
	fmt.Fprintf(w, "- Method: per command %d warm-up runs, then %d measured runs alternating ours/peer (first side swapped every round); "+
		"wall = time around exec.Cmd.Run (fork+exec+wait included), CPU = user+sys from wait4's rusage, peak RSS see notes. "+
		"Ratios are of the medians.\n", o.warmup, o.n)
	if len(o.oursEnv) > 0 {
		fmt.Fprintf(w, "- Our checks ran with extra environment: %s\n", strings.Join(o.oursEnv, " "))
	}
	var notes []string
	var local, inLab []pairResult
	for _, r := range rs {
		if r.group == groupLab {
			inLab = append(inLab, r)
		} else {
			local = append(local, r)
		}
	}
	if len(local) > 0 {
		fmt.Fprintf(w, "\n### Local checks\n\n")
		notes = append(notes, writeTable(w, local, o)...)
	}
	if len(inLab) > 0 {
		fmt.Fprintf(w, "\n### Network checks, in the lab\n\n")
		fmt.Fprintf(w, "Each side runs inside node2's namespace (the slave), against node1, the VIP or infra (LAB.md), with the same target, timeouts and probe count where the peer has them. "+
			"Rows with no peer show our medians alone, judged against the issue's absolute target where there is one.\n\n")
		notes = append(notes, writeTable(w, inLab, o)...)
	}
	fmt.Fprintf(w, "\n### Failover\n\n")
	fmt.Fprintln(w, failoverPlaceholder)
	if failoverText != "" {
		fmt.Fprintln(w, failoverText)
	} else {
		fmt.Fprintln(w, "The event handler's own times need the lab (run as root).")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The end-to-end failover times (a real Icinga 2 with the shipped templates, from the fault to the VIP moved and SIP answered, beside keepalived) are in [BENCHMARKS-failover.md](BENCHMARKS-failover.md), written by `make bench-failover`.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Notes:")
	for _, n := range append(append(notes, fixtureNotes...), outputNotes(rs)...) {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(m.sizes) > 0 {
		var parts []string
		for _, k := range sortedKeys(m.sizes) {
			parts = append(parts, fmt.Sprintf("%s %.1f MiB", k, float64(m.sizes[k])/(1<<20)))
		}
		fmt.Fprintf(w, "- Our binary sizes: %s.\n", strings.Join(parts, ", "))
	}
}

// failoverPlaceholder reserves the place of the event handler's step
// times and the failover times (issue 11); another harness fills it.
const failoverPlaceholder = "<!-- failover: the event handler's own times (scripts/bench/failover.go); the end-to-end failover times with Icinga's detection come from `make bench-failover`. -->"

func writeTable(w io.Writer, rs []pairResult, o options) []string {
	fmt.Fprintln(w, "| pair | side: command | exit codes | wall ms p50 (p90) | CPU ms p50 (p90) | peak RSS MiB p50 (max) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	var notes []string
	for _, r := range rs {
		writeSide(w, r.name, "ours", r.ours, o)
		writeSide(w, "", "peer", r.peer, o)
		ratio, more := ratioRow(r)
		fmt.Fprint(w, ratio)
		if r.note != "" {
			notes = append(notes, r.name+": "+r.note)
		}
		notes = append(notes, more...)
	}
	return notes
}

func writeSide(w io.Writer, pairName, who string, s sideResult, o options) {
	cmd := displayCommand(s.side)
	if s.missing != "" || len(s.samples) == 0 {
		why := s.missing
		if why == "" {
			why = s.err
		}
		fmt.Fprintf(w, "| %s | %s: `%s` | n/a (%s) | n/a | n/a | n/a |\n", pairName, who, cmd, mdEscape(why))
		return
	}
	exits := s.exits()
	if s.err != "" {
		exits += " (" + mdEscape(s.err) + ")"
	}
	wall, cpu, rss := s.wallMS(), s.cpuMS(), s.rssMiB()
	fmt.Fprintf(w, "| %s | %s: `%s` | %s | %.2f (%.2f) | %.2f (%.2f) | %.1f (%.1f) |\n",
		pairName, who, cmd, exits,
		quantile(wall, 0.5), quantile(wall, 0.9),
		quantile(cpu, 0.5), quantile(cpu, 0.9),
		quantile(rss, 0.5), quantile(rss, 1))
}

// ratioRow judges the pair against the targets. A side that returned
// UNKNOWN, or the two sides disagreeing on the state, makes the comparison
// unfair: one of them may have skipped the work, so it is flagged.
func ratioRow(r pairResult) (string, []string) {
	var notes []string
	if r.noPeer {
		if len(r.ours.samples) == 0 {
			return "| | ours alone | | n/a | n/a | n/a |\n", notes
		}
		flag := ""
		if r.ours.anyExit(3) || !r.ours.allExit(0) {
			flag = " ⚠ not OK"
			notes = append(notes, fmt.Sprintf("%s: our check did not return OK every time (%s).", r.name, r.ours.exits()))
		}
		return fmt.Sprintf("| | ours alone%s | | %s | %s | %s |\n", flag,
			absolute(r.ours.wallMS(), r.wallMS, "ms"), absolute(r.ours.cpuMS(), r.cpuMS, "ms"), rssCell(r, "")), notes
	}
	if len(r.ours.samples) == 0 || len(r.peer.samples) == 0 {
		return "| | **ours/peer** | | n/a | n/a | n/a |\n", notes
	}
	if r.ref {
		ratio := func(a, b []float64) string {
			return fmt.Sprintf("%.2f× (reference)", quantile(a, 0.5)/quantile(b, 0.5))
		}
		return fmt.Sprintf("| | ours/peer | | %s | %s | %s |\n", ratio(r.ours.wallMS(), r.peer.wallMS()),
			ratio(r.ours.cpuMS(), r.peer.cpuMS()), ratio(r.ours.rssMiB(), r.peer.rssMiB())), notes
	}
	limit, kind := targetC, "C"
	if r.perl {
		limit, kind = targetPerl, "Perl"
	}
	flag := ""
	switch {
	case r.ours.anyExit(3) || r.peer.anyExit(3):
		flag = " ⚠ UNKNOWN"
		notes = append(notes, fmt.Sprintf("%s: a side returned UNKNOWN (ours %s, peer %s): not a fair comparison.", r.name, r.ours.exits(), r.peer.exits()))
	case r.ours.exits() != r.peer.exits():
		flag = " ⚠ states differ"
		notes = append(notes, fmt.Sprintf("%s: exit codes differ (ours %s, peer %s): the two may not have done the same work.", r.name, r.ours.exits(), r.peer.exits()))
	}
	judge := func(ours, peer []float64, abs float64) string {
		q := quantile(ours, 0.5) / quantile(peer, 0.5)
		v := "ok"
		if q > limit {
			v = "MISS"
		}
		cell := fmt.Sprintf("**%.2f×** (≤%.1f× vs %s: %s)", q, limit, kind, v)
		if abs > 0 {
			cell += "; " + absolute(ours, abs, "ms")
		}
		return cell
	}
	rss := fmt.Sprintf("**%.2f×**; %s", quantile(r.ours.rssMiB(), 0.5)/quantile(r.peer.rssMiB(), 0.5), rssCell(r, "ours "))
	return fmt.Sprintf("| | **ours/peer**%s | | %s | %s | %s |\n", flag,
		judge(r.ours.wallMS(), r.peer.wallMS(), r.wallMS), judge(r.ours.cpuMS(), r.peer.cpuMS(), r.cpuMS), rss), notes
}

// absolute judges our median against an absolute target (0: none, then
// it only shows the median).
func absolute(xs []float64, target float64, unit string) string {
	p50 := quantile(xs, 0.5)
	if target <= 0 {
		return fmt.Sprintf("ours p50 %.2f %s (no target)", p50, unit)
	}
	v := "ok"
	if p50 > target {
		v = "MISS"
	}
	return fmt.Sprintf("ours p50 **%.2f %s** (≤%g %s: %s)", p50, unit, target, unit, v)
}

// rssCell judges our largest peak RSS against the pair's ceiling.
func rssCell(r pairResult, prefix string) string {
	limit := targetRSS
	if r.rssMiB > 0 {
		limit = r.rssMiB
	}
	rssMax := quantile(r.ours.rssMiB(), 1)
	v := "ok"
	if rssMax > limit {
		v = "MISS"
	}
	return fmt.Sprintf("%smax %.1f MiB (≤%.0f: %s)", prefix, rssMax, limit, v)
}

// outputNotes shows each side's first output line, so a reader can see both
// did the same work and reached the same verdict.
func outputNotes(rs []pairResult) []string {
	var out []string
	for _, r := range rs {
		for _, s := range []struct {
			who string
			sideResult
		}{{"ours", r.ours}, {"peer", r.peer}} {
			if s.first != "" {
				out = append(out, fmt.Sprintf("%s %s said: `%s`", r.name, s.who, truncate(s.first, 160)))
			}
		}
	}
	return out
}

// displayCommand shortens the program to its base name and the harness's
// temp dir to $TMP: the table is read by people, the notes say where
// things were.
func displayCommand(s side) string {
	if len(s.argv) == 0 {
		return s.label
	}
	parts := []string{filepath.Base(s.argv[0])}
	tmp := os.TempDir()
	for _, a := range s.argv[1:] {
		if strings.HasPrefix(a, tmp+"/pbxbench-") {
			if i := strings.Index(a[len(tmp)+1:], "/"); i >= 0 {
				a = "$TMP" + a[len(tmp)+1+i:]
			} else {
				a = "$TMP"
			}
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func mdEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
