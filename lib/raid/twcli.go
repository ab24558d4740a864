package raid

import (
	"regexp"
	"strconv"
	"strings"
)

// Names tw_cli gives its objects. Only names of these shapes are passed
// back to tw_cli as arguments or used in perfdata labels.
var (
	twControllerID = regexp.MustCompile(`^c[0-9]{1,3}$`)
	twEnclosureID  = regexp.MustCompile(`^/c[0-9]{1,3}/e[0-9]{1,3}$`)
	twUnitID       = regexp.MustCompile(`^u[0-9]{1,3}$`)
	twPortID       = regexp.MustCompile(`^p[0-9]{1,3}$`)
)

// TWController is one 3ware controller as `tw_cli show` lists it.
type TWController struct {
	ID     string // "c0"
	Model  string
	NotOpt string // units tw_cli counts as not optimal
	BBU    string // the BBU column: a state, "-" for none, "" when not printed
}

// HasBBU says whether the controller reports a battery backup unit.
func (c TWController) HasBBU() bool { return c.BBU != "" && c.BBU != "-" }

// TWShow is what `tw_cli show` lists: controllers and, on 9.5 and later
// firmware with an expander, enclosures.
type TWShow struct {
	Controllers []TWController
	Enclosures  []string // "/c0/e0"
}

// TWUnit is one row of a unit table.
type TWUnit struct {
	ID     string // "u0"
	Type   string // RAID-1, RAID-5, SPARE, JBOD ...
	Status string // OK, VERIFYING, REBUILDING, DEGRADED ...
	// Rebuild is the %RCmpl column (older firmware: %Cmpl), -1 when "-".
	Rebuild int
	// Progress is the %V/I/M column (verify, initialize, migrate), -1 when "-".
	Progress int
}

// TWDrive is one row of a port (drive) table.
type TWDrive struct {
	Port   string // "p0"
	Status string // OK, NOT-PRESENT, DEGRADED, SMART-FAILURE ...
	Unit   string // "u0", or "-" when the drive belongs to no unit
}

// TWBBU is the row of a battery backup unit table.
type TWBBU struct {
	Online, Ready, Status, Volt, Temp, Hours, LastCapTest string
}

// TWInfo is what `tw_cli info cN` prints, or any of its parts:
// `info cN unitstatus|drivestatus|bbustatus` and `/cN show all` use the
// same tables.
type TWInfo struct {
	Units     []TWUnit
	HasUnits  bool // a unit table was printed (it may have no rows)
	Drives    []TWDrive
	HasDrives bool
	BBU       *TWBBU
}

// TWEnclosureItem is one component of `tw_cli /cN/eM show all`: the
// enclosure itself, a fan, temperature sensor, power supply, slot or alarm.
type TWEnclosureItem struct {
	Kind   string // the table's first header: Encl, Fan, TempSensor, PowerSupply, Slot, Alarm
	Name   string
	Status string
}

// ParseTWShow reads the output of `tw_cli show` (or `tw_cli info`).
func ParseTWShow(text string) TWShow {
	var s TWShow
	for _, t := range splitTables(text) {
		switch t.header[0] {
		case "Ctl":
			for _, r := range t.rows {
				if !twControllerID.MatchString(r[0]) {
					continue
				}
				s.Controllers = append(s.Controllers, TWController{
					ID: r[0], Model: t.cell(r, "Model"), NotOpt: t.cell(r, "NotOpt"), BBU: t.cell(r, "BBU"),
				})
			}
		case "Encl", "Enclosure":
			for _, r := range t.rows {
				if twEnclosureID.MatchString(r[0]) {
					s.Enclosures = append(s.Enclosures, r[0])
				}
			}
		}
	}
	return s
}

// ParseTWInfo reads the unit, drive and BBU tables of one controller.
func ParseTWInfo(text string) TWInfo {
	var in TWInfo
	for _, t := range splitTables(text) {
		switch {
		case t.header[0] == "Unit" && t.col("Status") >= 0:
			in.HasUnits = true
			rebuild := "%RCmpl"
			if t.col(rebuild) < 0 {
				rebuild = "%Cmpl" // 7000/8000-series tw_cli
			}
			for _, r := range t.rows {
				if !twUnitID.MatchString(r[0]) {
					continue
				}
				in.Units = append(in.Units, TWUnit{
					ID: r[0], Type: t.cell(r, "UnitType"), Status: t.cell(r, "Status"),
					Rebuild: percent(t.cell(r, rebuild)), Progress: percent(t.cell(r, "%V/I/M")),
				})
			}
		case (t.header[0] == "Port" || t.header[0] == "VPort") && t.col("Status") >= 0:
			in.HasDrives = true
			for _, r := range t.rows {
				if !twPortID.MatchString(r[0]) {
					continue
				}
				d := TWDrive{Port: r[0], Status: t.cell(r, "Status"), Unit: t.cell(r, "Unit")}
				if !twUnitID.MatchString(d.Unit) {
					d.Unit = "-"
				}
				in.Drives = append(in.Drives, d)
			}
		case t.header[0] == "Name" && t.col("OnlineState") >= 0:
			for _, r := range t.rows {
				if r[0] != "bbu" {
					continue
				}
				in.BBU = &TWBBU{
					Online: t.cell(r, "OnlineState"), Ready: t.cell(r, "BBUReady"), Status: t.cell(r, "Status"),
					Volt: t.cell(r, "Volt"), Temp: t.cell(r, "Temp"), Hours: t.cell(r, "Hours"),
					LastCapTest: t.cell(r, "LastCapTest"),
				}
			}
		}
	}
	return in
}

// ParseTWEnclosure reads `tw_cli /cN/eM show all`: every table whose second
// column is Status. Concatenated output of several enclosures is fine.
func ParseTWEnclosure(text string) []TWEnclosureItem {
	var items []TWEnclosureItem
	for _, t := range splitTables(text) {
		if len(t.header) < 2 || t.header[1] != "Status" {
			continue
		}
		switch t.header[0] {
		case "Unit", "Port", "VPort", "Name", "Ctl":
			continue
		}
		for _, r := range t.rows {
			if len(r) < 2 {
				continue
			}
			items = append(items, TWEnclosureItem{Kind: t.header[0], Name: r[0], Status: r[1]})
		}
	}
	return items
}

// percent reads "98%", "29%(A)" (the A marks an automatic verify) or a bare
// "98"; "-" and anything else is -1.
func percent(s string) int {
	num, _, _ := strings.Cut(s, "%")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 100 {
		return -1
	}
	return n
}
