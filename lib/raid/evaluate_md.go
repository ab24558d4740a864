package raid

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"pbxha/lib/plugin"
)

// EvaluateMD applies the md policy (see the package documentation): one
// sub-result per array, in natural name order, and the md perfdata.
// Containers are reported but are not arrays: count says how many real
// arrays there were.
func EvaluateMD(arrays []MDArray) (subs []plugin.Result, perf []plugin.Perf, count int) {
	sorted := append([]MDArray(nil), arrays...)
	sort.SliceStable(sorted, func(i, j int) bool { return naturalLess(sorted[i].Name, sorted[j].Name) })
	degraded, failed := 0, 0
	for _, a := range sorted {
		if a.Container == "" {
			count++
		}
		if a.Degraded() > 0 {
			degraded++
		}
		failed += len(a.Failed())
		subs = append(subs, evaluateArray(a, sorted))
	}
	perf = []plugin.Perf{
		{Label: "md_degraded", Value: float64(degraded), Min: plugin.F(0)},
		{Label: "md_failed_members", Value: float64(failed), Min: plugin.F(0)},
	}
	return subs, perf, count
}

func evaluateArray(a MDArray, all []MDArray) plugin.Result {
	r := arrayResult(a, all)
	r.Summary = plugin.Clean(r.Summary, 0)
	return r
}

func arrayResult(a MDArray, all []MDArray) plugin.Result {
	label := a.Name
	switch {
	case a.Container != "":
		label += "(" + a.Container + " container)"
	case a.Level != "":
		label += "(" + a.Level + ")"
	}
	r := plugin.Result{State: plugin.OK}
	if a.ReadOnly != "" {
		r.Long = append(r.Long, a.Name+" is "+a.ReadOnly)
	}
	if a.Mismatch >= 0 {
		r.Perf = append(r.Perf, plugin.Perf{Label: a.Name + "_mismatch_cnt", Value: float64(a.Mismatch), Min: plugin.F(0)})
		if a.Mismatch > 0 {
			r.Long = append(r.Long, fmt.Sprintf("%s: mismatch_cnt %d after the last check (not an alarm: raid1/10 count in-flight writes of swap and O_DIRECT)", a.Name, a.Mismatch))
		}
	}
	failed := a.Failed()
	switch {
	case a.Container != "":
		// mdstat always shows a container inactive: it is metadata and
		// disks; its volumes are arrays of their own
		r.Summary = label + ":OK"
		return r
	case a.State == "inactive":
		r.State = plugin.Critical
		r.Summary = label + ":inactive (not running, serves nothing)"
		return r
	case a.State == "broken":
		r.State = plugin.Critical
		r.Summary = label + ":broken (a member is missing)"
		return r
	case a.Level == "raid0" || a.Level == "linear":
		// no redundancy: any failed member is data lost
		r.Summary = label + ":" + a.State
		if len(failed) > 0 {
			r.State = plugin.Critical
			r.Summary += ", failed " + strings.Join(failed, ",")
		}
		return r
	}

	body := a.Status
	if body == "" {
		body = a.State
	}
	action, waiting, guess := a.syncAction(all)
	restoring := action == "recovery" || action == "resync" || action == "reshape"
	var parts []string
	switch {
	case action != "" && waiting:
		if a.Sync.Pending {
			parts = append(parts, action+" pending")
		} else {
			parts = append(parts, action+" delayed")
		}
		if guess != "" {
			r.Long = append(r.Long, a.Name+": "+guess)
		}
	case action != "":
		parts = append(parts, action+percentText(a.Sync.Percent))
		if a.Sync.Percent >= 0 {
			lbl := a.Name + "_rebuild"
			if !restoring {
				lbl = a.Name + "_check"
			}
			r.Perf = append(r.Perf, plugin.Perf{Label: lbl, Value: a.Sync.Percent, UOM: "%", Min: plugin.F(0), Max: plugin.F(100)})
		}
	}
	deg := a.Degraded()
	switch {
	case deg > 0 && restoring:
		r.State = plugin.Warning
	case deg > 0:
		r.State = plugin.Critical
		missing := fmt.Sprintf("%d missing", deg)
		if a.Total > 0 {
			missing = fmt.Sprintf("%d of %d missing", deg, a.Total)
		}
		parts = append(parts, "degraded ("+missing+"), no recovery running")
	case restoring:
		r.State = plugin.Warning
	case len(failed) > 0:
		r.State = plugin.Warning
	}
	if len(failed) > 0 {
		f := "failed " + strings.Join(failed, ",")
		if deg == 0 {
			f += " (array complete)"
		}
		parts = append(parts, f)
	}
	if n := a.Spares(); n > 0 && deg == 0 {
		parts = append(parts, "("+plural(n, "spare")+")")
	}
	if len(parts) > 0 {
		body += " " + strings.Join(parts, ", ")
	}
	r.Summary = label + ":" + body
	return r
}

// syncAction says which sync the array runs or waits for. For a waiting
// sync without sysfs it guesses, and says so in guess: md recovers a
// degraded array onto a spare; a complete array that waits while an array
// on the same disks runs a check is part of that scheduled scrub
// (checkarray, mdcheck and raid-check start every array at once and md runs
// them one disk set at a time); anything else waits for a resync.
func (a MDArray) syncAction(all []MDArray) (action string, waiting bool, guess string) {
	sys := a.SysAction
	if sys == "recover" {
		sys = "recovery"
	}
	if a.Sync.Action != "" {
		// mdstat prints a repair as "resync"; sysfs tells them apart
		if a.Sync.Action == "resync" && (sys == "repair" || sys == "check") {
			return sys, false, ""
		}
		return a.Sync.Action, false, ""
	}
	if !a.Sync.Delayed && !a.Sync.Pending {
		return "", false, ""
	}
	switch sys {
	case "recovery", "resync", "check", "repair", "reshape":
		return sys, true, ""
	}
	switch {
	case a.Sync.Pending:
		return "resync", true, "" // the kernel prints PENDING only for a resync
	case a.Degraded() > 0:
		return "recovery", true, "resync=DELAYED on a degraded array: taken for a recovery (no sysfs sync_action)"
	case sharesDisksWithCheck(a, all):
		return "check", true, "resync=DELAYED while an array on the same disks runs a check: taken for the same scheduled check (no sysfs sync_action)"
	}
	return "resync", true, "resync=DELAYED: taken for a resync (no sysfs sync_action)"
}

func sharesDisksWithCheck(a MDArray, all []MDArray) bool {
	mine := map[string]bool{}
	for _, m := range a.Members {
		mine[baseDisk(m.Name)] = true
	}
	for _, o := range all {
		if o.Name == a.Name || o.Sync.Action != "check" {
			continue
		}
		for _, m := range o.Members {
			if mine[baseDisk(m.Name)] {
				return true
			}
		}
	}
	return false
}

var (
	partSuffixP = regexp.MustCompile(`^(.*[0-9])p[0-9]+$`) // nvme0n1p2, mmcblk0p1, loop0p1
	partSuffix  = regexp.MustCompile(`^((?:sd|hd|vd|xvd)[a-z]+)[0-9]+$`)
)

// baseDisk is the whole disk a partition is on (sda2, vdb1, xvda3,
// nvme0n1p2); other names stand for themselves (dm-15, md0, a whole sdb).
func baseDisk(dev string) string {
	if m := partSuffixP.FindStringSubmatch(dev); m != nil {
		return m[1]
	}
	if m := partSuffix.FindStringSubmatch(dev); m != nil {
		return m[1]
	}
	return dev
}

func percentText(p float64) string {
	if p < 0 {
		return ""
	}
	return " " + strconv.FormatFloat(p, 'f', -1, 64) + "%"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// naturalLess orders md2 before md10.
func naturalLess(a, b string) bool {
	pa, na := splitNum(a)
	pb, nb := splitNum(b)
	if pa != pb || na < 0 || nb < 0 {
		if pa == pb {
			return a < b
		}
		return pa < pb
	}
	return na < nb
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil || len(s)-i > 9 {
		return s, -1
	}
	return s[:i], n
}
