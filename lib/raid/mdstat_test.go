package raid

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMDStat(t *testing.T) {
	// captured with the command line; the '#' line is no kernel output
	captured := "# cat /proc/mdstat \nPersonalities : [raid1] \n" +
		"md1 : active raid1 sda2[0] sdb2[1](W)\n      972574976 blocks [2/2] [UU]\n\n" +
		"md0 : active (read-only) raid1 sda1[2](F) sdb1[1] sdc1[3](S) sdd1[4](R)\n      208704 blocks [2/1] [_U]\n" +
		"      [>....................]  recovery =  0.4% (1024/208704) finish=276.9min speed=12K/sec\n\n" +
		"unused devices: <none>\n"
	got, err := ParseMDStat([]byte(captured))
	if err != nil {
		t.Fatal(err)
	}
	want := []MDArray{
		{Name: "md1", Level: "raid1", State: "active", Total: 2, Active: 2, Status: "UU",
			Members: []MDMember{{Name: "sda2", Index: 0}, {Name: "sdb2", Index: 1, WriteMostly: true}},
			Sync:    MDSync{Percent: -1}, SysDegraded: -1, Mismatch: -1},
		{Name: "md0", Level: "raid1", State: "active", ReadOnly: "read-only", Total: 2, Active: 1, Down: 1, Status: "_U",
			Members: []MDMember{{Name: "sda1", Index: 2, Faulty: true}, {Name: "sdb1", Index: 1}, {Name: "sdc1", Index: 3, Spare: true}, {Name: "sdd1", Index: 4, Replacement: true}},
			Sync:    MDSync{Action: "recovery", Percent: 0.4}, SysDegraded: -1, Mismatch: -1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if a := got[1]; a.Degraded() != 1 || !reflect.DeepEqual(a.Failed(), []string{"sda1"}) || a.Spares() != 1 {
		t.Errorf("md0: degraded %d failed %q spares %d", a.Degraded(), a.Failed(), a.Spares())
	}

	bad := map[string]string{
		"personality not [name]": "Personalities : x\nunused devices: <none>\n",
		"device line, no status": "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n",
		"not mdstat":             "Ctl   Model\n-----\nc0    9650SE\n",
		"bad name":               "Personalities : [raid1]\nsda : active raid1 sda1[0]\n      1 blocks [1/1] [U]\n\n\n",
	}
	for name, text := range bad {
		if a, err := ParseMDStat([]byte(text)); err == nil {
			t.Errorf("%s: no error, %+v", name, a)
		} else if !strings.HasPrefix(err.Error(), "parsing mdstat: ") || strings.Contains(err.Error(), os.TempDir()) {
			t.Errorf("%s: error %q", name, err)
		}
	}
	if a, err := ParseMDStat([]byte("Personalities : \nunused devices: <none>\n")); err != nil || len(a) != 0 {
		t.Errorf("no arrays: %+v %v", a, err)
	}
}

func TestReadMDSysfs(t *testing.T) {
	root := t.TempDir()
	md := filepath.Join(root, "block", "md3", "md")
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"sync_action": "recover\n", "degraded": "1\n", "mismatch_cnt": "many\n"} {
		if err := os.WriteFile(filepath.Join(md, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	arrays := []MDArray{{Name: "md3", SysDegraded: -1, Mismatch: -1}, {Name: "md4", SysDegraded: -1, Mismatch: -1}}
	ReadMDSysfs(root, arrays)
	want := []MDArray{{Name: "md3", SysAction: "recover", SysDegraded: 1, Mismatch: -1}, {Name: "md4", SysDegraded: -1, Mismatch: -1}}
	if !reflect.DeepEqual(arrays, want) {
		t.Errorf("got %+v\nwant %+v", arrays, want)
	}
	arrays = []MDArray{{Name: "md0", SysDegraded: -1, Mismatch: -1}}
	ReadMDSysfs(filepath.Join("testdata", "sysfs", "nvme-scrub"), arrays)
	if a := arrays[0]; a.SysAction != "repair" || a.SysDegraded != 0 || a.Mismatch != 128 {
		t.Errorf("testdata: %+v", a)
	}
}

func TestBaseDisk(t *testing.T) {
	for in, want := range map[string]string{
		"sda2": "sda", "sdab11": "sdab", "vdb1": "vdb", "xvda3": "xvda", "hdc1": "hdc", "sdb": "sdb",
		"nvme0n1p2": "nvme0n1", "mmcblk0p1": "mmcblk0", "nvme0n1": "nvme0n1", "dm-15": "dm-15", "md0": "md0", "loop0p1": "loop0",
	} {
		if got := baseDisk(in); got != want {
			t.Errorf("baseDisk(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNaturalLess(t *testing.T) {
	names := []string{"md10", "md2", "md_d0", "md127", "md0", "mdx"}
	want := []string{"md0", "md2", "md10", "md127", "md_d0", "mdx"}
	sorted := append([]string(nil), names...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if naturalLess(sorted[j], sorted[i]) {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	if !reflect.DeepEqual(sorted, want) {
		t.Errorf("got %q, want %q", sorted, want)
	}
}
