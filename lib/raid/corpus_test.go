package raid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkCase is one run of the whole check over captured output.
type checkCase struct {
	name  string
	code  int
	first string   // the first line without perfdata
	perf  []string // perfdata items that must be present
}

// TestCorpusMD runs every mdstat of the shared corpus through the check;
// the expected states are the corpus README's policy table.
func TestCorpusMD(t *testing.T) {
	root := filepath.Join(corpusDir(t), "mdstat")
	cases := []checkCase{
		{"mdstat-centos6.2", 0, "PBX_RAID OK - md0(raid1):UU, md1(raid0):active, md2(raid1):UU, md3(raid1):UU, md4(raid1):UU", []string{"md_degraded=0;;;0", "md_failed_members=0;;;0"}},
		{"mdstat-linear", 0, "PBX_RAID OK - md0(linear):active, md1(raid1):UU", nil},
		{"mdstat-raid0", 0, "PBX_RAID OK - md2(raid0):active", nil},
		{"issue64", 0, "PBX_RAID OK - md0(raid1):UU, md1(raid1):UU, md2(raid1):UU", nil},
		{"issue34", 0, "PBX_RAID OK - md0(imsm container):OK, md127(raid1):UU", nil},
		{"issue34_2", 0, "PBX_RAID OK - md126(raid1):UU, md127(imsm container):OK", nil},
		{"mdstat-none", 3, "PBX_RAID UNKNOWN - no RAID array found: md: " + filepath.Join(root, "mdstat-none") + " lists no array", nil},
		{"mdstat-resync", 1, "PBX_RAID WARNING - md1(raid1):UU resync 9.9%, md2(raid1):UU resync 11.2%", []string{"md1_rebuild=9.9%;;;0;100", "md2_rebuild=11.2%;;;0;100"}},
		{"pr28_2", 1, "PBX_RAID WARNING - md0(raid1):_U recovery 3.9%, md1(raid1):_U recovery delayed", []string{"md_degraded=2;;;0"}},
		{"pr24", 0, "PBX_RAID OK - md0(raid1):UU, md1(raid1):UU, md2(raid1):UU check 98.3%", []string{"md2_check=98.3%;;;0;100"}},
		{"pr77", 0, "PBX_RAID OK - md0(raid1):UU check 6.4%, md1(raid1):UU check delayed", []string{"md0_check=6.4%;;;0;100"}},
		{"pr28_0", 1, "PBX_RAID WARNING - md0(raid1):_U recovery 0.4%", []string{"md_degraded=1;;;0", "md0_rebuild=0.4%;;;0;100"}},
		{"issue43/recovery", 1, "PBX_RAID WARNING - md0(raid6):UUUU__ recovery 19.6%", []string{"md0_rebuild=19.6%;;;0;100"}},
		{"issue43/mdstat-readd", 1, "PBX_RAID WARNING - md0(raid6):U_UUUU recovery 0.2%", nil},
		{"issue43/reshape", 1, "PBX_RAID WARNING - md0(raid6):UUUU__ reshape 48.4%", []string{"md0_rebuild=48.4%;;;0;100"}},
		{"mdstat-failed", 2, "PBX_RAID CRITICAL - md0(raid5):U_U degraded (1 of 3 missing), no recovery running, failed sdc1", []string{"md_degraded=1;;;0", "md_failed_members=1;;;0"}},
		{"issue43/mdstat-rebuilt", 2, "PBX_RAID CRITICAL - md0(raid6):U_UUUU degraded (1 of 6 missing), no recovery running", nil},
		{"pr28_1", 2, "PBX_RAID CRITICAL - md1(raid1):_U degraded (1 of 2 missing), no recovery running", []string{"md_degraded=2;;;0", "md0_rebuild=3.6%;;;0;100"}},
		{"issue164", 1, "PBX_RAID WARNING - md1(raid1):UUUUU failed sdh1 (array complete)", []string{"md_failed_members=1;;;0"}},
		{"pr185_0", 0, "PBX_RAID OK - md1(raid5):UUUUU (1 spare)", nil},
		{"pr185_1", 0, "PBX_RAID OK - md1(raid5):UUUUU (1 spare), md2(raid5):UUUUU (2 spares)", nil},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			runMD(t, filepath.Join(root, tc.name), t.TempDir(), tc)
		})
	}
	t.Run("no-arrays=ok", func(t *testing.T) {
		runMD(t, filepath.Join(root, "mdstat-none"), t.TempDir(), checkCase{
			code: 0, first: "PBX_RAID OK - no RAID array found: md: " + filepath.Join(root, "mdstat-none") + " lists no array",
		}, "--no-arrays=ok")
	})
	// every corpus file must have a case: a new capture is a new test
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			if !seen[rel] {
				t.Errorf("corpus file mdstat/%s has no case", rel)
			}
		}
		return nil
	})
}

// TestOwnMD runs the fixtures of testdata/mdstat.
func TestOwnMD(t *testing.T) {
	cases := []struct {
		checkCase
		sysfs string
	}{
		{checkCase{"pr28_1", 2, "PBX_RAID CRITICAL - md1(raid1):_U degraded (1 of 2 missing), no recovery running", []string{"md_degraded=2;;;0"}}, ""},
		{checkCase{"pr77", 0, "PBX_RAID OK - md0(raid1):UU check 6.4%, md1(raid1):UU check delayed", nil}, ""},
		{checkCase{"issue34", 0, "PBX_RAID OK - md0(imsm container):OK, md127(raid1):UU", nil}, ""},
		{checkCase{"mdstat-failed", 2, "PBX_RAID CRITICAL - md0(raid5):U_U degraded (1 of 3 missing), no recovery running, failed sdc1", nil}, ""},
		{checkCase{"issue164", 1, "PBX_RAID WARNING - md1(raid1):UUUUU failed sdh1 (array complete)", nil}, ""},
		{checkCase{"inactive", 2, "PBX_RAID CRITICAL - md0:inactive (not running, serves nothing)", nil}, ""},
		{checkCase{"broken", 2, "PBX_RAID CRITICAL - md0(raid0):broken (a member is missing)", nil}, ""},
		{checkCase{"pending", 1, "PBX_RAID WARNING - md0(raid1):UU resync pending", nil}, ""},
		// without sysfs the repair reads as a resync and the waiting check
		// as a resync too; sysfs says what they are
		{checkCase{"nvme-scrub", 1, "PBX_RAID WARNING - md0(raid1):UU resync 22.5%, md1(raid10):UUUU resync delayed", []string{"md0_rebuild=22.5%;;;0;100"}}, ""},
		{checkCase{"nvme-scrub", 0, "PBX_RAID OK - md0(raid1):UU repair 22.5%, md1(raid10):UUUU check delayed", []string{"md0_check=22.5%;;;0;100", "md0_mismatch_cnt=128;;;0", "md1_mismatch_cnt=0;;;0"}}, "testdata/sysfs/nvme-scrub"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.sysfs, func(t *testing.T) {
			sysfs := tc.sysfs
			if sysfs == "" {
				sysfs = t.TempDir()
			}
			runMD(t, filepath.Join("testdata", "mdstat", tc.name), sysfs, tc.checkCase)
		})
	}
}

func runMD(t *testing.T, mdstat, sysfs string, tc checkCase, extra ...string) {
	t.Helper()
	args := append([]string{"--source", "md", "--mdstat", mdstat, "--sysfs", sysfs}, extra...)
	code, first, perf, rest := execute(t, args...)
	assertRun(t, tc, code, first, perf, rest)
}

func assertRun(t *testing.T, tc checkCase, code int, first, perf string, rest []string) {
	t.Helper()
	if code != tc.code || first != tc.first {
		t.Errorf("got %d %q\nwant %d %q\nlong output:\n%s", code, first, tc.code, tc.first, strings.Join(rest, "\n"))
	}
	items := " " + perf + " "
	for _, p := range tc.perf {
		if !strings.Contains(items, " "+p+" ") {
			t.Errorf("perfdata %q lacks %q", perf, p)
		}
	}
}

// TestCorpusTWCLI runs every machine of the shared corpus through the check
// with a fake tw_cli that serves its files.
func TestCorpusTWCLI(t *testing.T) {
	root := filepath.Join(corpusDir(t), "tw_cli")
	cases := []struct {
		checkCase
		dirs []string // corpus folders, later ones overlaying earlier ones
	}{
		{checkCase{"1", 0, "PBX_RAID OK - c0/u0(RAID-6):OK, c0/bbu:OK", []string{"tw_degraded=0;;;0", "tw_drives_not_ok=0;;;0"}}, nil},
		{checkCase{"2", 0, "PBX_RAID OK - c0/u0(RAID-5):VERIFYING 16%, c0/bbu:OK", []string{"c0_u0_verify=16%;;;0;100"}}, nil},
		{checkCase{"lumpy", 1, "PBX_RAID WARNING - c0/u0(RAID-1):REBUILDING 98% (p0:DEGRADED)", []string{"tw_degraded=1;;;0", "tw_drives_not_ok=1;;;0", "c0_u0_rebuild=98%;;;0;100"}}, nil},
		{checkCase{"ichy", 0, "PBX_RAID OK - c0/u0(RAID-5):OK, c0/bbu:OK", nil}, nil},
		{checkCase{"black", 0, "PBX_RAID OK - c0/u0(RAID-1):OK", nil}, nil},
		{checkCase{"rover", 0, "PBX_RAID OK - c0/u0(RAID-5):OK", nil}, nil},
		{checkCase{"bootc", 0, "PBX_RAID OK - c0/u0(RAID-6):VERIFYING 29%, c0/u1(RAID-6):VERIFYING 18%, c0/u2(SPARE):VERIFYING 14%, c0/u3(SPARE):VERIFYING 0%", []string{"c0_u0_verify=29%;;;0;100"}}, nil},
		// bootc-enc holds only show and the enclosure; its units are bootc's
		{checkCase{"bootc-enc", 0, "PBX_RAID OK - c0/u0(RAID-6):VERIFYING 29%, c0/u1(RAID-6):VERIFYING 18%, c0/u2(SPARE):VERIFYING 14%, c0/u3(SPARE):VERIFYING 0%, c0/e0:OK", nil}, []string{"bootc", "bootc-enc"}},
		{checkCase{"sysiphus", 0, "PBX_RAID OK - c0/u0(RAID-10):VERIFYING 25%, c0/u1(SPARE):VERIFY-PAUSED 0%, c0/u2(SPARE):VERIFY-PAUSED 0%, c0/bbu:OK", nil}, nil},
		{checkCase{"grubbs", 1, "PBX_RAID WARNING - c0/e0:ALARM-ACTIVATED alm0:ACTIVATED, c0/e1:ALARM-ACTIVATED alm0:ACTIVATED", []string{"tw_degraded=0;;;0"}}, nil},
		{checkCase{"bohr", 0, "PBX_RAID OK - c0/u0(RAID-10):OK, c0/u1(JBOD):OK, c0/u2(JBOD):OK, c0/bbu:OK (no capacity test yet)", nil}, nil},
		{checkCase{"unsupported", 3, `PBX_RAID UNKNOWN - 3ware: tw_cli show lists no controller (output not understood: "Encl Controllers")`, nil}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dirs := tc.dirs
			if dirs == nil {
				dirs = []string{tc.name}
			}
			for i := range dirs {
				dirs[i] = filepath.Join(root, dirs[i])
			}
			files := corpusTWFiles(t, dirs...)
			if tc.name == "unsupported" {
				// its only file is an enclosure listing, given for show
				b, err := os.ReadFile(filepath.Join(root, "unsupported", "e0.show"))
				if err != nil {
					t.Fatal(err)
				}
				files["show"] = b
			}
			runTW(t, files, tc.checkCase)
		})
	}
}

// TestOwnTWCLI runs the fixtures of testdata/tw_cli, stored under the
// names the fake serves.
func TestOwnTWCLI(t *testing.T) {
	cases := []struct {
		checkCase
		calls []string // when set, exactly the tw_cli calls expected
	}{
		{checkCase{"lumpy", 1, "PBX_RAID WARNING - c0/u0(RAID-1):REBUILDING 98% (p0:DEGRADED)", []string{"c0_u0_rebuild=98%;;;0;100"}}, nil},
		{checkCase{"bohr", 0, "PBX_RAID OK - c0/u0(RAID-10):OK, c0/u1(JBOD):OK, c0/u2(JBOD):OK, c0/bbu:OK (no capacity test yet)", nil}, nil},
		// one `info c0` gives units, drives and BBU: no sub-command is run
		{checkCase{"info-c0", 0, "PBX_RAID OK - c0/u0(RAID-5):VERIFYING 16%, c0/bbu:OK", []string{"c0_u0_verify=16%;;;0;100"}}, []string{"show", "info c0"}},
		{checkCase{"degraded", 2, "PBX_RAID CRITICAL - c0/u0(RAID-5):DEGRADED (p2:DEVICE-ERROR)", []string{"tw_degraded=1;;;0", "tw_drives_not_ok=1;;;0"}}, []string{"show", "info c0"}},
		{checkCase{"old-8006", 1, "PBX_RAID WARNING - c0/u0(RAID-1):REBUILDING 45% (p1:REBUILDING)", []string{"c0_u0_rebuild=45%;;;0;100"}}, []string{"show", "info c0", "info c0 unitstatus", "info c0 drivestatus"}},
		{checkCase{"initializing", 1, "PBX_RAID WARNING - c0/u0(RAID-10):INITIALIZING 63% (p0:INITIALIZING p1:INITIALIZING p2:INITIALIZING p3:INITIALIZING), c0/u2(RAID-5):INITIALIZING 0% (p4:INITIALIZING p5:INITIALIZING p6:INITIALIZING)", []string{"c0_u0_rebuild=63%;;;0;100", "tw_degraded=0;;;0"}}, nil},
		{checkCase{"bbu-smart", 1, "PBX_RAID WARNING - c0/p3:SMART-FAILURE, c0/bbu:WeakBat, not ready, temperature HIGH", []string{"tw_drives_not_ok=1;;;0"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := runTW(t, readDir(t, filepath.Join("testdata", "tw_cli", tc.name)), tc.checkCase)
			if tc.calls != nil {
				if got := fakeCalls(t, fake); strings.Join(got, ",") != strings.Join(tc.calls, ",") {
					t.Errorf("tw_cli calls %q, want %q", got, tc.calls)
				}
			}
		})
	}
}

func runTW(t *testing.T, files map[string][]byte, tc checkCase) string {
	t.Helper()
	fake := writeFake(t, files)
	code, first, perf, rest := execute(t, "--source", "3ware", "--tw-cli", fake, "--mdstat", filepath.Join(t.TempDir(), "none"))
	assertRun(t, tc, code, first, perf, rest)
	return fake
}
