package services

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"pbxha/lib/plugin"
)

// Evaluate counts the processes of each service and compares the count with
// its range: a required PBX service below its count is CRITICAL.
func Evaluate(svcs []Service, procs []Proc) plugin.Result {
	var r plugin.Result
	for _, s := range svcs {
		var pids []int
		for _, p := range procs {
			if s.Matches(p) {
				pids = append(pids, p.PID)
			}
		}
		sort.Ints(pids)
		n := float64(len(pids))
		sub := plugin.Result{State: plugin.OK}
		word := "processes"
		if len(pids) == 1 {
			word = "process"
		}
		sub.Summary = fmt.Sprintf("%s: %d %s", s.Name, len(pids), word)
		if len(pids) > 0 {
			sub.Summary += " (pid " + joinPids(pids, 5) + ")"
		}
		if s.Count.Alert(n) {
			sub.State = plugin.Critical
			sub.Summary += " (expected " + s.Count.String() + ")"
		}
		sub.Perf = []plugin.Perf{{Label: s.Name, Value: n, Crit: s.Count.String(), Min: plugin.F(0)}}
		r.Subs = append(r.Subs, sub)
	}
	return r
}

func joinPids(p []int, max int) string {
	var parts []string
	for i, pid := range p {
		if i == max {
			parts = append(parts, fmt.Sprintf("+%d more", len(p)-max))
			break
		}
		parts = append(parts, strconv.Itoa(pid))
	}
	return strings.Join(parts, ", ")
}
