package raid

import (
	"fmt"
	"strings"

	"pbxha/lib/plugin"
)

// TWData is everything read from tw_cli for one check.
type TWData struct {
	Controllers []TWControllerData
	Enclosures  []TWEnclosureData
}

// TWControllerData is one controller with what its info commands gave.
type TWControllerData struct {
	TWController
	Info      TWInfo
	UnitsErr  error // no unit table could be read
	DrivesErr error // no drive table could be read
	BBUErr    error // bbustatus failed; the BBU column of show stands in
}

// TWEnclosureData is one enclosure's `show all`.
type TWEnclosureData struct {
	ID    string // "/c0/e0"
	Items []TWEnclosureItem
	Err   error
}

// Unit states by what they mean for a failover. VERIFY is a routine scrub;
// rebuild, initialisation and migration restore or reshape redundancy while
// the unit serves; DEGRADED (no rebuild running) and INOPERABLE cannot be
// trusted.
var (
	twUnitOK      = set("OK", "VERIFYING", "VERIFY-PAUSED")
	twUnitWorking = set("REBUILDING", "REBUILD-PAUSED", "INITIALIZING", "INIT-PAUSED", "MIGRATING", "MIGRATE-PAUSED", "RECOVERY")
	twUnitBroken  = set("DEGRADED", "INOPERABLE")
	// twUnitNoRedundancy is what tw_degraded counts.
	twUnitNoRedundancy = set("DEGRADED", "INOPERABLE", "REBUILDING", "REBUILD-PAUSED")
	// twDriveOK are drive states that need no word: an empty port, a drive
	// being verified with its unit.
	twDriveOK = set("OK", "NOT-PRESENT", "VERIFYING", "VERIFY-PAUSED")
	// twEnclosureOK are enclosure component states that are no fault.
	twEnclosureOK = set("OK", "NOT-INSTALLED", "NO-DEVICE", "NOT-REPORTABLE", "NOT-PRESENT", "N/A", "-", "OFF", "DEACTIVATED")
)

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// EvaluateTW applies the 3ware policy (see the package documentation): one
// sub-result per unit, per drive outside a unit that is not OK, per BBU and
// per enclosure, and the 3ware perfdata. units is the number of units (spares
// excluded).
func EvaluateTW(d TWData) (subs []plugin.Result, perf []plugin.Perf, units int) {
	degraded, badDrives := 0, 0
	for _, c := range d.Controllers {
		if c.UnitsErr != nil {
			subs = append(subs, plugin.Result{State: plugin.Unknown, Summary: c.ID + ": " + plugin.Clean(c.UnitsErr.Error(), 0)})
			continue
		}
		if c.DrivesErr != nil {
			subs = append(subs, plugin.Result{State: plugin.Unknown, Summary: c.ID + ": " + plugin.Clean(c.DrivesErr.Error(), 0)})
		}
		known := map[string]bool{}
		for _, u := range c.Info.Units {
			known[u.ID] = true
		}
		badByUnit := map[string][]string{}
		for _, dr := range c.Info.Drives {
			if twDriveOK[dr.Status] {
				continue
			}
			badDrives++
			if known[dr.Unit] {
				badByUnit[dr.Unit] = append(badByUnit[dr.Unit], dr.Port+":"+dr.Status)
				continue
			}
			subs = append(subs, plugin.Result{State: plugin.Warning, Summary: plugin.Clean(c.ID+"/"+dr.Port+":"+dr.Status, 0)})
		}
		for _, u := range c.Info.Units {
			if u.Type != "SPARE" {
				units++
				if twUnitNoRedundancy[u.Status] {
					degraded++
				}
			}
			subs = append(subs, evaluateUnit(c.ID, u, badByUnit[u.ID]))
		}
		if r, ok := evaluateBBU(c); ok {
			subs = append(subs, r)
		}
	}
	for _, e := range d.Enclosures {
		subs = append(subs, evaluateEnclosure(e))
	}
	perf = []plugin.Perf{
		{Label: "tw_degraded", Value: float64(degraded), Min: plugin.F(0)},
		{Label: "tw_drives_not_ok", Value: float64(badDrives), Min: plugin.F(0)},
	}
	return subs, perf, units
}

func evaluateUnit(ctl string, u TWUnit, badDrives []string) plugin.Result {
	r := plugin.Result{State: plugin.OK}
	text := u.Status
	pct := u.Progress
	if strings.HasPrefix(u.Status, "REBUILD") {
		pct = u.Rebuild
	}
	if pct >= 0 {
		text += fmt.Sprintf(" %d%%", pct)
		kind := "rebuild"
		if strings.HasPrefix(u.Status, "VERIFY") {
			kind = "verify"
		}
		r.Perf = append(r.Perf, plugin.Perf{Label: ctl + "_" + u.ID + "_" + kind, Value: float64(pct), UOM: "%", Min: plugin.F(0), Max: plugin.F(100)})
	}
	switch {
	case twUnitOK[u.Status]:
	case twUnitWorking[u.Status]:
		r.State = plugin.Warning
	case twUnitBroken[u.Status]:
		r.State = plugin.Critical
	default:
		r.State = plugin.Unknown
		text += " (state not known to this check)"
	}
	if u.Type == "SPARE" && r.State != plugin.OK {
		// a spare that is not ready leaves the units as they are
		r.State = plugin.Warning
	}
	if len(badDrives) > 0 {
		text += " (" + strings.Join(badDrives, " ") + ")"
		r.State = plugin.Worst(r.State, plugin.Warning)
	}
	r.Summary = plugin.Clean(fmt.Sprintf("%s/%s(%s):%s", ctl, u.ID, u.Type, text), 0)
	return r
}

// evaluateBBU reports the battery backup unit, when there is one. A BBU
// problem is a WARNING at most: the BBU protects the write cache, and the
// controller without it falls back to write-through, slower but serving.
func evaluateBBU(c TWControllerData) (plugin.Result, bool) {
	label := c.ID + "/bbu:"
	var long []string
	if c.BBUErr != nil {
		long = append(long, plugin.Clean(c.BBUErr.Error(), 0)+" (using the BBU column of tw_cli show)")
	}
	b := c.Info.BBU
	if b == nil {
		if !c.HasBBU() {
			return plugin.Result{}, false
		}
		st, _ := bbuStatus(c.BBU)
		return plugin.Result{State: st, Summary: plugin.Clean(label+c.BBU, 0), Long: long}, true
	}
	st, routine := bbuStatus(b.Status)
	var problems []string
	if st != plugin.OK {
		problems = append(problems, b.Status)
	}
	if b.Online != "" && !strings.EqualFold(b.Online, "On") {
		problems = append(problems, "online state "+b.Online)
	}
	if strings.EqualFold(b.Ready, "No") && !routine {
		problems = append(problems, "not ready")
	}
	for _, v := range []struct{ name, val string }{{"voltage", b.Volt}, {"temperature", b.Temp}} {
		if v.val != "" && v.val != "-" && !strings.EqualFold(v.val, "OK") {
			problems = append(problems, v.name+" "+v.val)
		}
	}
	r := plugin.Result{State: plugin.OK, Long: long, Summary: label + b.Status}
	if len(problems) > 0 {
		r.State = plugin.Warning
		r.Summary = label + strings.Join(problems, ", ")
	}
	if strings.HasPrefix(strings.ToLower(b.LastCapTest), "xx") {
		// a new or replaced battery: the controller schedules the first
		// capacity test itself; nothing to do yet
		r.Summary += " (no capacity test yet)"
	}
	r.Summary = plugin.Clean(r.Summary, 0)
	r.Long = append(r.Long, fmt.Sprintf("%s/bbu: online %s, ready %s, status %s, voltage %s, temperature %s, %s hours, last capacity test %s",
		c.ID, b.Online, b.Ready, b.Status, b.Volt, b.Temp, b.Hours, b.LastCapTest))
	return r, true
}

// bbuStatus maps a BBU status word; a test or a charge is routine.
func bbuStatus(s string) (st plugin.State, routine bool) {
	switch strings.ToUpper(s) {
	case "OK":
		return plugin.OK, false
	case "TESTING", "CHARGING":
		return plugin.OK, true
	}
	return plugin.Warning, false
}

// evaluateEnclosure reports fans, sensors, power supplies, slots and the
// alarm. An enclosure fault is a WARNING: the disks still answer.
func evaluateEnclosure(e TWEnclosureData) plugin.Result {
	label := strings.TrimPrefix(e.ID, "/")
	if e.Err != nil {
		return plugin.Result{State: plugin.Unknown, Summary: label + ": " + plugin.Clean(e.Err.Error(), 0)}
	}
	if len(e.Items) == 0 {
		return plugin.Result{State: plugin.Unknown, Summary: label + ": tw_cli " + e.ID + " show all printed no status table"}
	}
	var bad []string
	for _, it := range e.Items {
		if twEnclosureOK[strings.ToUpper(it.Status)] {
			continue
		}
		if it.Kind == "Encl" {
			bad = append(bad, it.Status)
		} else {
			bad = append(bad, it.Name+":"+it.Status)
		}
	}
	if len(bad) == 0 {
		return plugin.Result{State: plugin.OK, Summary: label + ":OK"}
	}
	return plugin.Result{State: plugin.Warning, Summary: label + ":" + plugin.Clean(strings.Join(bad, " "), 0)}
}
