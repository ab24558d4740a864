package disk

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

const gib = 1 << 30

// stats builds a filesystem of usable GiB with usedGiB in use and reserved
// GiB kept for root, like ext4's 5%.
func stats(usable, used, reserved float64, inodes, ifree uint64) Stats {
	return Stats{
		Total:  uint64((usable + reserved) * gib),
		Free:   uint64((usable - used + reserved) * gib),
		Avail:  uint64((usable - used) * gib),
		Inodes: inodes,
		IFree:  ifree,
	}
}

func defaultPolicy() Policy {
	o := defaultOptions()
	return Policy{Used: o.used, Inodes: o.inodes, TimeoutState: plugin.Critical, MountTimeout: 2 * time.Second}
}

func TestEvaluateMount(t *testing.T) {
	withFree := defaultPolicy()
	withFree.FreeWarn = Size{Bytes: 2 * gib, set: true, text: "2GiB"}
	withFree.FreeCrit = Size{Bytes: gib / 2, set: true, text: "512MiB"}
	inverted := defaultPolicy()
	inverted.Used = threshold.Pairf("@~:5", "")
	unknownOnTimeout := defaultPolicy()
	unknownOnTimeout.TimeoutState = plugin.Unknown

	tests := []struct {
		name    string
		r       Reading
		p       Policy
		state   plugin.State
		summary string
		perf    string
	}{
		{
			name:    "healthy",
			r:       Reading{Mount: Mount{Path: "/"}, Stats: stats(100, 10, 5, 1000, 960)},
			p:       defaultPolicy(),
			state:   plugin.OK,
			summary: "/ 10% used, 90 GiB free of 100 GiB, inodes 4%",
			perf:    "/=10737418240B;85899345920;96636764160;0;112742891520 '/ used'=10%;80;90;0;100 '/ inodes'=4%;90;95;0;100",
		},
		{
			name: "80% is within -w 80, as in check_disk",
			r:    Reading{Mount: Mount{Path: "/var"}, Stats: stats(100, 80, 0, 0, 0)},
			p:    defaultPolicy(), state: plugin.OK,
			summary: "/var 80% used, 20 GiB free of 100 GiB",
		},
		{
			name: "80.5% is above -w 80 and shows as 81%, rounded up like df",
			r:    Reading{Mount: Mount{Path: "/var"}, Stats: stats(100, 80.5, 0, 0, 0)},
			p:    defaultPolicy(), state: plugin.Warning,
			summary: "/var 81% used (warning > 80), 19.5 GiB free of 100 GiB",
		},
		{
			name: "reserved blocks are not free: 95 of 100 usable is 95% although 10 more are reserved",
			r:    Reading{Mount: Mount{Path: "/var"}, Stats: stats(100, 95, 10, 100, 90)},
			p:    defaultPolicy(), state: plugin.Critical,
			summary: "/var 95% used (critical > 90), 5 GiB free of 100 GiB, inodes 10%",
			perf:    "/var=102005473280B;85899345920;96636764160;0;118111600640 '/var used'=95%;80;90;0;100 '/var inodes'=10%;90;95;0;100",
		},
		{
			name: "full: users can write nothing more",
			r:    Reading{Mount: Mount{Path: "/"}, Stats: stats(50, 50, 2.5, 100, 50)},
			p:    defaultPolicy(), state: plugin.Critical,
			summary: "/ 100% used (critical > 90), 0 B free of 50 GiB, inodes 50%",
		},
		{
			name: "inodes exhausted while space is fine",
			r:    Reading{Mount: Mount{Path: "/var/spool"}, Stats: stats(100, 10, 0, 1000, 30)},
			p:    defaultPolicy(), state: plugin.Critical,
			summary: "/var/spool 10% used, 90 GiB free of 100 GiB, inodes 97% (critical > 95)",
		},
		{
			name: "inodes at warning",
			r:    Reading{Mount: Mount{Path: "/"}, Stats: stats(100, 10, 0, 1000, 80)},
			p:    defaultPolicy(), state: plugin.Warning,
			summary: "/ 10% used, 90 GiB free of 100 GiB, inodes 92% (warning > 90)",
		},
		{
			name: "no inode table (btrfs): no inode figure, no inode perfdata",
			r:    Reading{Mount: Mount{Path: "/srv"}, Stats: stats(10, 1, 0, 0, 0)},
			p:    defaultPolicy(), state: plugin.OK,
			summary: "/srv 10% used, 9 GiB free of 10 GiB",
			perf:    "/srv=1073741824B;8589934592;9663676416;0;10737418240 '/srv used'=10%;80;90;0;100",
		},
		{
			name: "free space below --free-warning on a big disk at 99%",
			r:    Reading{Mount: Mount{Path: "/"}, Stats: stats(1000, 998.5, 0, 0, 0)},
			p:    withFree, state: plugin.Critical, // the percentage is critical too
			summary: "/ 100% used (critical > 90), 1.5 GiB free of 1000 GiB (warning < 2 GiB)",
		},
		{
			name: "free space alone",
			r:    Reading{Mount: Mount{Path: "/"}, Stats: stats(2, 1.75, 0, 0, 0)},
			p:    withFree, state: plugin.Critical,
			summary: "/ 88% used (warning > 80), 256 MiB free of 2 GiB (critical < 512 MiB)",
			perf:    "/=1879048192B;1717986918;1932735283;0;2147483648 '/ used'=87.5%;80;90;0;100 '/ free'=268435456B;2147483648:;536870912:;0;2147483648",
		},
		{
			name: "inverted range converted to bytes keeps its shape",
			r:    Reading{Mount: Mount{Path: "/tmp"}, Stats: stats(100, 1, 0, 0, 0)},
			p:    inverted, state: plugin.Warning,
			summary: "/tmp 1% used (warning inside ~:5), 99 GiB free of 100 GiB",
			perf:    "/tmp=1073741824B;@~:5368709120;;0;107374182400 '/tmp used'=1%;@~:5;;0;100",
		},
		{
			name: "an empty filesystem of size 0 is 0% used",
			r:    Reading{Mount: Mount{Path: "/empty"}},
			p:    defaultPolicy(), state: plugin.OK,
			summary: "/empty 0% used, 0 B free of 0 B",
		},
		{
			name:    "missing path: check_disk's words",
			r:       Reading{Mount: Mount{Path: "/nonexist"}, Err: syscall.ENOENT},
			p:       defaultPolicy(),
			state:   plugin.Critical,
			summary: "/nonexist is not accessible: no such file or directory",
		},
		{
			name: "stale NFS handle",
			r:    Reading{Mount: Mount{Path: "/mnt/backup"}, Err: syscall.ESTALE},
			p:    defaultPolicy(), state: plugin.Critical,
			summary: "/mnt/backup is not accessible: stale file handle",
		},
		{
			name: "hung mount, -t's state",
			r:    Reading{Mount: Mount{Path: "/mnt/backup"}, Err: ErrTimeout},
			p:    unknownOnTimeout, state: plugin.Unknown,
			summary: "/mnt/backup: statfs timed out after 2s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EvaluateMount(tt.r, tt.p)
			if got.State != tt.state || got.Summary != tt.summary {
				t.Errorf("got %s %q\nwant %s %q", got.State, got.Summary, tt.state, tt.summary)
			}
			perf := formatPerf(got.Perf)
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Errorf("perfdata %q: %v", perf, err)
			}
			if tt.perf != "" && perf != tt.perf {
				t.Errorf("perfdata\n got %s\nwant %s", perf, tt.perf)
			}
		})
	}
}

func formatPerf(ps []plugin.Perf) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

func TestEvaluate(t *testing.T) {
	ok1 := Reading{Mount: Mount{Path: "/"}, Stats: stats(100, 10, 0, 100, 90)}
	ok2 := Reading{Mount: Mount{Path: "/boot"}, Stats: stats(1, 0.5, 0, 100, 90)}
	warn := Reading{Mount: Mount{Path: "/srv"}, Stats: stats(100, 85, 0, 0, 0)}
	crit := Reading{Mount: Mount{Path: "/var"}, Stats: stats(24.8, 23.1, 0, 100, 96)}
	hung := Reading{Mount: Mount{Path: "/mnt/backup"}, Err: ErrTimeout}
	unknown := defaultPolicy()
	unknown.TimeoutState = plugin.Unknown

	tests := []struct {
		name     string
		readings []Reading
		p        Policy
		first    string
	}{
		{"one mount: its line", []Reading{ok1}, defaultPolicy(),
			"PBX_DISK OK - / 10% used, 90 GiB free of 100 GiB, inodes 10% | "},
		{"all OK: count and the fullest", []Reading{ok1, ok2}, defaultPolicy(),
			"PBX_DISK OK - 2 mounts OK, fullest: /boot 50% used, 512 MiB free of 1 GiB, inodes 10% | "},
		{"the worst is named, the rest counted", []Reading{ok1, warn, crit, ok2}, defaultPolicy(),
			"PBX_DISK CRITICAL - /var 94% used (critical > 90), 1.7 GiB free of 24.8 GiB, inodes 4%; 1 more WARNING | "},
		{"a hung mount does not hide a full one", []Reading{hung, crit, warn}, defaultPolicy(),
			"PBX_DISK CRITICAL - /mnt/backup: statfs timed out after 2s; /var 94% used (critical > 90), 1.7 GiB free of 24.8 GiB, inodes 4%; 1 more WARNING | "},
		{"UNKNOWN ranks below CRITICAL", []Reading{hung, crit}, unknown,
			"PBX_DISK CRITICAL - /var 94% used (critical > 90), 1.7 GiB free of 24.8 GiB, inodes 4%; 1 more UNKNOWN | "},
		{"nothing to check", nil, defaultPolicy(), "PBX_DISK UNKNOWN - no filesystems to check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Evaluate(tt.readings, tt.p).Format("PBX_DISK")
			first, long, _ := strings.Cut(out, "\n")
			if !strings.HasPrefix(first+"\n", tt.first) {
				t.Errorf("first line\n got %q\nwant %q...", first, tt.first)
			}
			if len(tt.readings) > 1 {
				for _, r := range tt.readings {
					if !strings.Contains(long, "] "+r.Path) {
						t.Errorf("mount %s missing from long output:\n%s", r.Path, long)
					}
				}
			}
			if _, perf, ok := strings.Cut(first, " | "); ok {
				if _, err := plugin.SplitPerfdata(perf); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestBytesRange(t *testing.T) {
	for in, want := range map[string]string{
		"80":     "800",
		"0:80":   "800",
		"10:":    "100:",
		"0:":     "0:",
		"~:80":   "~:800",
		"10:20":  "100:200",
		"@10:20": "@100:200",
		"@~:5":   "@~:50",
		"33.3":   "333",
	} {
		if got := bytesRange(threshold.MustParse(in), 1000); got != want {
			t.Errorf("bytesRange(%q) = %q, want %q", in, got, want)
		}
	}
	if got := bytesRange(threshold.Range{}, 1000); got != "" {
		t.Errorf("unset range: %q", got)
	}
}
