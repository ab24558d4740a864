package raid

import (
	"errors"
	"strings"
	"testing"

	"pbxha/lib/plugin"
)

func md(name, level, status string, total, active int) MDArray {
	return MDArray{Name: name, Level: level, State: "active", Status: status, Total: total, Active: active,
		Down: strings.Count(status, "_"), Sync: MDSync{Percent: -1}, SysDegraded: -1, Mismatch: -1}
}

func members(names ...string) []MDMember {
	var ms []MDMember
	for i, n := range names {
		m := MDMember{Name: strings.TrimSuffix(n, "(F)"), Index: i, Faulty: strings.HasSuffix(n, "(F)")}
		ms = append(ms, m)
	}
	return ms
}

func TestEvaluateMDStates(t *testing.T) {
	raid0 := md("md0", "raid0", "", 0, 0)
	raid0.Members = members("sda1", "sdb1(F)")

	sysDegraded := md("md0", "raid1", "UU", 2, 2)
	sysDegraded.SysDegraded = 1

	checking := md("md0", "raid1", "_U", 2, 1)
	checking.Sync = MDSync{Action: "check", Percent: 10}

	lonelyDelay := md("md1", "raid1", "UU", 2, 2)
	lonelyDelay.Sync.Delayed = true
	lonelyDelay.Members = members("sdc1", "sdd1")
	otherCheck := md("md0", "raid1", "UU", 2, 2)
	otherCheck.Sync = MDSync{Action: "check", Percent: 50}
	otherCheck.Members = members("sda1", "sdb1")

	sysRecover := md("md1", "raid1", "_U", 2, 1)
	sysRecover.Sync.Delayed = true
	sysRecover.SysAction = "recover"

	mismatch := md("md0", "raid1", "UU", 2, 2)
	mismatch.Mismatch = 256

	replacing := md("md0", "raid1", "UU", 2, 2)
	replacing.Sync = MDSync{Action: "recovery", Percent: 12.5}

	cases := []struct {
		name    string
		arrays  []MDArray
		state   plugin.State
		summary string // of the first sub-result
		long    string // in the first sub-result's long output, when set
	}{
		{"raid0 lost a member", []MDArray{raid0}, plugin.Critical, "md0(raid0):active, failed sdb1", ""},
		{"sysfs knows better", []MDArray{sysDegraded}, plugin.Critical, "md0(raid1):UU degraded (1 of 2 missing), no recovery running", ""},
		{"check on a degraded array", []MDArray{checking}, plugin.Critical, "md0(raid1):_U check 10%, degraded (1 of 2 missing), no recovery running", ""},
		{"delay not near a check", []MDArray{lonelyDelay, otherCheck}, plugin.Warning, "md1(raid1):UU resync delayed", "taken for a resync"},
		{"sysfs names the delayed sync", []MDArray{sysRecover}, plugin.Warning, "md1(raid1):_U recovery delayed", ""},
		{"mismatches are reported, not alarmed", []MDArray{mismatch}, plugin.OK, "md0(raid1):UU", "mismatch_cnt 256"},
		{"replacement", []MDArray{replacing}, plugin.Warning, "md0(raid1):UU recovery 12.5%", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subs, _, _ := EvaluateMD(tc.arrays)
			r := plugin.Result{Subs: subs}
			var first plugin.Result
			for _, s := range subs {
				if s.Summary == tc.summary {
					first = s
				}
			}
			if r.Overall() != tc.state || first.Summary != tc.summary {
				t.Errorf("got %v %+v\nwant %v %q", r.Overall(), subs, tc.state, tc.summary)
			}
			if tc.long != "" && !strings.Contains(strings.Join(first.Long, "\n"), tc.long) {
				t.Errorf("long output %q lacks %q", first.Long, tc.long)
			}
		})
	}
}

func TestEvaluateTWStates(t *testing.T) {
	unit := func(id, typ, status string) TWUnit {
		return TWUnit{ID: id, Type: typ, Status: status, Rebuild: -1, Progress: -1}
	}
	ctl := func(units ...TWUnit) TWControllerData {
		return TWControllerData{TWController: TWController{ID: "c0", BBU: "-"}, Info: TWInfo{Units: units, HasUnits: true, HasDrives: true}}
	}
	withBBU := func(col string, b *TWBBU) TWControllerData {
		c := ctl(unit("u0", "RAID-1", "OK"))
		c.BBU, c.Info.BBU = col, b
		return c
	}
	strayDrive := ctl(unit("u0", "RAID-1", "OK"))
	strayDrive.Info.Drives = []TWDrive{{Port: "p4", Status: "ECC-ERROR", Unit: "u7"}}
	drivesErr := ctl(unit("u0", "RAID-1", "OK"))
	drivesErr.DrivesErr = errors.New("tw_cli info c0 drivestatus: exit status 1")
	bbuErr := withBBU("OK", nil)
	bbuErr.BBUErr = errors.New("tw_cli info c0 bbustatus: exit status 1")

	cases := []struct {
		name  string
		data  TWData
		state plugin.State
		want  []string // every sub-result's summary
	}{
		{"inoperable", TWData{Controllers: []TWControllerData{ctl(unit("u0", "RAID-5", "INOPERABLE"))}}, plugin.Critical,
			[]string{"c0/u0(RAID-5):INOPERABLE"}},
		{"state not known", TWData{Controllers: []TWControllerData{ctl(unit("u0", "RAID-5", "CONFUSED"))}}, plugin.Unknown,
			[]string{"c0/u0(RAID-5):CONFUSED (state not known to this check)"}},
		{"spare degraded is a warning", TWData{Controllers: []TWControllerData{ctl(unit("u0", "RAID-1", "OK"), unit("u1", "SPARE", "DEGRADED"))}}, plugin.Warning,
			[]string{"c0/u0(RAID-1):OK", "c0/u1(SPARE):DEGRADED"}},
		{"migration paused", TWData{Controllers: []TWControllerData{ctl(TWUnit{ID: "u0", Type: "RAID-5", Status: "MIGRATE-PAUSED", Rebuild: -1, Progress: 40})}}, plugin.Warning,
			[]string{"c0/u0(RAID-5):MIGRATE-PAUSED 40%"}},
		{"no unit table", TWData{Controllers: []TWControllerData{{TWController: TWController{ID: "c1"}, UnitsErr: errors.New("tw_cli info c1 unitstatus: exit status 1")}}}, plugin.Unknown,
			[]string{"c1: tw_cli info c1 unitstatus: exit status 1"}},
		{"no drive table", TWData{Controllers: []TWControllerData{drivesErr}}, plugin.Unknown,
			[]string{"c0: tw_cli info c0 drivestatus: exit status 1", "c0/u0(RAID-1):OK"}},
		{"drive of an unlisted unit", TWData{Controllers: []TWControllerData{strayDrive}}, plugin.Warning,
			[]string{"c0/p4:ECC-ERROR", "c0/u0(RAID-1):OK"}},
		{"BBU column only", TWData{Controllers: []TWControllerData{withBBU("Fault", nil)}}, plugin.Warning,
			[]string{"c0/u0(RAID-1):OK", "c0/bbu:Fault"}},
		{"bbustatus failed, column stands in", TWData{Controllers: []TWControllerData{bbuErr}}, plugin.OK,
			[]string{"c0/u0(RAID-1):OK", "c0/bbu:OK"}},
		{"BBU charging is routine", TWData{Controllers: []TWControllerData{withBBU("Charging", &TWBBU{Online: "On", Ready: "No", Status: "Charging", Volt: "OK", Temp: "OK", Hours: "3", LastCapTest: "xx-xxx-xxxx"})}}, plugin.OK,
			[]string{"c0/u0(RAID-1):OK", "c0/bbu:Charging (no capacity test yet)"}},
		{"BBU offline", TWData{Controllers: []TWControllerData{withBBU("OK", &TWBBU{Online: "Off", Ready: "No", Status: "OK", Volt: "LOW", Temp: "OK"})}}, plugin.Warning,
			[]string{"c0/u0(RAID-1):OK", "c0/bbu:online state Off, not ready, voltage LOW"}},
		{"enclosure unreadable", TWData{Enclosures: []TWEnclosureData{{ID: "/c0/e0", Err: errors.New("tw_cli /c0/e0 show all: exit status 1")}}}, plugin.Unknown,
			[]string{"c0/e0: tw_cli /c0/e0 show all: exit status 1"}},
		{"enclosure not understood", TWData{Enclosures: []TWEnclosureData{{ID: "/c0/e0"}}}, plugin.Unknown,
			[]string{"c0/e0: tw_cli /c0/e0 show all printed no status table"}},
		{"fan failed", TWData{Enclosures: []TWEnclosureData{{ID: "/c0/e0", Items: []TWEnclosureItem{{"Encl", "/c0/e0", "OK"}, {"Fan", "fan1", "FAILED"}, {"Slot", "slot1", "NO-DEVICE"}}}}}, plugin.Warning,
			[]string{"c0/e0:fan1:FAILED"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subs, _, _ := EvaluateTW(tc.data)
			var got []string
			for _, s := range subs {
				got = append(got, s.Summary)
			}
			if st := (plugin.Result{Subs: subs}).Overall(); st != tc.state || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %v %q\nwant %v %q", st, got, tc.state, tc.want)
			}
		})
	}
}
