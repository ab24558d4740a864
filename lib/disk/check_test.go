package disk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pbxha/lib/plugin"
)

func execute(t *testing.T, spec plugin.Spec, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("PBXHA_CONFIG", "")
	var out bytes.Buffer
	code := plugin.Execute(spec, args, &out)
	first, rest, _ := strings.Cut(out.String(), "\n")
	return code, first, rest
}

// fakeStat answers from a table; a path it does not know does not exist,
// and a path mapped to nil Stats hangs until the test ends, as statfs on
// an NFS mount whose server is gone.
func fakeStat(table map[string]*Stats) StatFunc {
	return func(path string) (Stats, error) {
		s, ok := table[path]
		switch {
		case !ok:
			return Stats{}, syscall.ENOENT
		case s == nil:
			select {}
		}
		return *s, nil
	}
}

func ptr(s Stats) *Stats { return &s }

func TestCheck(t *testing.T) {
	table := map[string]*Stats{
		"/":           ptr(stats(100, 10, 5, 1000, 900)),
		"/var":        ptr(stats(100, 85, 5, 1000, 900)),
		"/boot":       ptr(stats(1, 0.25, 0, 1000, 900)),
		"/mnt/backup": nil,
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte("[disk]\npaths = [\"/var\", \"/\"]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badCfg, []byte("[disk]\npath = [\"/var\"]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	pbx := "testdata/debian-pbx/self/mountinfo"
	tests := []struct {
		name  string
		args  []string
		code  int
		first string
		long  []string
	}{
		{
			name:  "-p paths, repeated and untidy ones once",
			args:  []string{"-p", "/", "-p", "/boot/", "-p", "/"},
			first: "PBX_DISK OK - 2 mounts OK, fullest: /boot 25% used, 768 MiB free of 1 GiB, inodes 10% | /=10737418240B;85899345920;96636764160;0;112742891520 '/ used'=10%;80;90;0;100 '/ inodes'=10%;90;95;0;100 /boot=268435456B;858993459;966367642;0;1073741824 '/boot used'=25%;80;90;0;100 '/boot inodes'=10%;90;95;0;100",
			long:  []string{`\_ [OK] / 10% used`, `\_ [OK] /boot 25% used`},
		},
		{
			name:  "missing -p path is CRITICAL, as in check_disk",
			args:  []string{"-p", "/", "-p", "/nonexist"},
			code:  2,
			first: "PBX_DISK CRITICAL - /nonexist is not accessible: no such file or directory | /=",
		},
		{
			name:  "thresholds from flags",
			args:  []string{"-p", "/var", "-w", "90", "-c", "95"},
			first: "PBX_DISK OK - /var 85% used, 15 GiB free of 100 GiB, inodes 10% | /var=91268055040B;96636764160;102005473280;0;112742891520",
		},
		{
			name:  "inode thresholds from flags",
			args:  []string{"-p", "/", "-W", "5", "-K", "50"},
			code:  1,
			first: "PBX_DISK WARNING - / 10% used, 90 GiB free of 100 GiB, inodes 10% (warning > 5) |",
		},
		{
			name:  "free space thresholds",
			args:  []string{"-p", "/var", "-w", "99", "-c", "99", "--free-warning", "20GiB", "--free-critical", "10GB"},
			code:  1,
			first: "PBX_DISK WARNING - /var 85% used, 15 GiB free of 100 GiB (warning < 20 GiB), inodes 10% |",
		},
		{
			name:  "config paths when no -p",
			args:  []string{"--config", cfg},
			code:  1,
			first: "PBX_DISK WARNING - /var 85% used (warning > 80), 15 GiB free of 100 GiB, inodes 10% |",
			long:  []string{`\_ [WARNING] /var`, `\_ [OK] /`},
		},
		{
			name:  "-p wins over config",
			args:  []string{"--config", cfg, "-p", "/boot"},
			first: "PBX_DISK OK - /boot 25% used",
		},
		{
			name:  "a bad config is UNKNOWN and named",
			args:  []string{"--config", badCfg},
			code:  3,
			first: "PBX_DISK UNKNOWN - " + badCfg + ": unknown key disk.path",
		},
		{
			name: "mountinfo: the hung NFS mount is reported and does not hide /var",
			args: []string{"--mountinfo", pbx, "--mount-timeout", "200ms", "--exclude-type", "ext2,vfat", "--exclude-type", "ext4,overlay"},
			code: 2,
			// "/" is ext4 here, excluded; /var, /srv found, /mnt/backup hangs.
			first: "PBX_DISK CRITICAL - /mnt/backup: statfs timed out after 200ms; 1 more WARNING | /var=",
			long:  []string{`\_ [WARNING] /var 85% used`, `\_ [CRITICAL] /mnt/backup: statfs timed out after 200ms`},
		},
		{
			name:  "-t's state applies to a hung mount",
			args:  []string{"--mountinfo", pbx, "--mount-timeout", "200ms", "-t", "5:UNKNOWN", "--exclude-type", "ext2,vfat,ext4,overlay"},
			code:  3,
			first: "PBX_DISK UNKNOWN - /mnt/backup: statfs timed out after 200ms; 1 more WARNING |",
		},
		{
			name: "mounts that vanished since mountinfo was read are not news",
			args: []string{"--mountinfo", pbx, "--exclude-type", "nfs4", "-v"},
			// /srv, /boot/efi, /mnt/usb, docker's overlay are not in the table.
			code:  1,
			first: "PBX_DISK WARNING - /var 85% used (warning > 80), 15 GiB free of 100 GiB, inodes 10% | /=",
			long:  []string{`\_ [OK] /boot 25% used`, "skipped /srv (btrfs): no such file or directory"},
		},
		{
			name:  "nothing left to check",
			args:  []string{"--mountinfo", "testdata/debian-pbx/1/mountinfo", "--exclude-type", "ext4,xfs"},
			code:  3,
			first: "PBX_DISK UNKNOWN - no filesystems to check in testdata/debian-pbx/1/mountinfo (3 mounts, all of types left out)",
		},
		{
			name:  "unreadable mountinfo",
			args:  []string{"--mountinfo", "testdata/none/self/mountinfo"},
			code:  3,
			first: "PBX_DISK UNKNOWN - reading testdata/none/self/mountinfo: could not read",
		},
		// Usage errors name the flag.
		{name: "bad range", args: []string{"-w", "80%"}, code: 3,
			first: `PBX_DISK UNKNOWN - usage: invalid argument "80%" for "-w, --warning" flag`},
		{name: "bad inode range", args: []string{"-K", "x"}, code: 3,
			first: `PBX_DISK UNKNOWN - usage: invalid argument "x" for "-K, --inode-critical" flag`},
		{name: "bad size", args: []string{"--free-critical", "5 gigs"}, code: 3,
			first: `PBX_DISK UNKNOWN - usage: invalid argument "5 gigs" for "--free-critical" flag: "5 gigs": unknown unit "gigs"`},
		{name: "free critical above warning", args: []string{"--free-warning", "1GiB", "--free-critical", "2GiB"}, code: 3,
			first: "PBX_DISK UNKNOWN - usage: flag --free-critical: 2GiB is more than --free-warning 1GiB"},
		{name: "mount timeout not under -t", args: []string{"--mount-timeout", "10s"}, code: 3,
			first: "PBX_DISK UNKNOWN - usage: flag --mount-timeout: 10s must be shorter than -t 10s"},
		{name: "mount timeout zero", args: []string{"--mount-timeout", "0s"}, code: 3,
			first: "PBX_DISK UNKNOWN - usage: flag --mount-timeout: 0s is not a positive duration"},
		{name: "empty path", args: []string{"-p", ""}, code: 3,
			first: "PBX_DISK UNKNOWN - usage: flag --path: empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, first, long := execute(t, newSpec(fakeStat(table)), tt.args...)
			if code != tt.code || !strings.HasPrefix(first, tt.first) {
				t.Errorf("exit %d, first line\n %q\nwant exit %d and\n %q...\nlong:\n%s", code, first, tt.code, tt.first, long)
			}
			for _, l := range tt.long {
				if !strings.Contains(long, l) {
					t.Errorf("long output lacks %q:\n%s", l, long)
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

// The default mount timeout shrinks under a short -t rather than refusing
// it, and a hung mount is still reported before the check's own deadline.
func TestDefaultMountTimeoutFitsUnderT(t *testing.T) {
	start := time.Now()
	code, first, _ := execute(t, newSpec(fakeStat(map[string]*Stats{"/": ptr(stats(1, 0, 0, 0, 0)), "/nfs": nil})), "-t", "1", "-p", "/", "-p", "/nfs")
	if code != 2 || !strings.HasPrefix(first, "PBX_DISK CRITICAL - /nfs: statfs timed out after 750ms |") {
		t.Errorf("exit %d, %q", code, first)
	}
	if d := time.Since(start); d > 950*time.Millisecond {
		t.Errorf("took %s, -t was 1s", d)
	}
}

func TestStatAllWaitsForEachAtOnce(t *testing.T) {
	var mu sync.Mutex
	var steps []string
	mounts := []Mount{{Path: "/a"}, {Path: "/hung1"}, {Path: "/b"}, {Path: "/hung2"}}
	stat := fakeStat(map[string]*Stats{"/a": ptr(Stats{Total: 1}), "/b": ptr(Stats{Total: 2}), "/hung1": nil, "/hung2": nil})
	start := time.Now()
	got := StatAll(context.Background(), mounts, 300*time.Millisecond, stat, func(p string) {
		mu.Lock()
		steps = append(steps, p)
		mu.Unlock()
	})
	// Two hung mounts cost one timeout, not two.
	if d := time.Since(start); d < 300*time.Millisecond || d > 550*time.Millisecond {
		t.Errorf("took %s for a 300ms timeout", d)
	}
	want := []string{"/a <nil> 1", "/hung1 statfs timed out 0", "/b <nil> 2", "/hung2 statfs timed out 0"}
	for i, r := range got {
		if s := fmt.Sprintf("%s %v %d", r.Path, r.Err, r.Stats.Total); s != want[i] {
			t.Errorf("reading %d: %s, want %s", i, s, want[i])
		}
	}
	if last := steps[len(steps)-1]; last != "/hung1" {
		t.Errorf("last step %q, want the first mount still pending, /hung1 (all: %q)", last, steps)
	}
}

func TestStatAllHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := StatAll(ctx, []Mount{{Path: "/hung"}}, time.Hour, fakeStat(map[string]*Stats{"/hung": nil}), func(string) {})
	if time.Since(start) > time.Second || got[0].Err != ErrTimeout {
		t.Errorf("after %s: %+v", time.Since(start), got)
	}
}

// TestTmpfs fills a real 8 MiB tmpfs and watches the state go from OK to
// WARNING to CRITICAL through statfs(2) itself.
func TestTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a tmpfs needs root, and CI=true")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	fill := filepath.Join(dir, "fill")
	for _, step := range []struct {
		mib   float64
		code  int
		state string
	}{
		// Whole pages, so that what is used is exactly what was written.
		{4, 0, "OK - " + dir + " 50% used, 4 MiB free of 8 MiB, inodes "},
		{6.75, 1, "WARNING - " + dir + " 85% used (warning > 80), 1.2 MiB free of 8 MiB, inodes "},
		{7.5, 2, "CRITICAL - " + dir + " 94% used (critical > 90), 512 KiB free of 8 MiB, inodes "},
		{8, 2, "CRITICAL - " + dir + " 100% used (critical > 90), 0 B free of 8 MiB, inodes "},
		{1, 0, "OK - " + dir + " 13% used, 7 MiB free of 8 MiB, inodes "},
	} {
		n := int64(step.mib * (1 << 20))
		// Fallocate, not Truncate: a sparse file would use no space.
		if err := os.Remove(fill); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		f, err := os.Create(fill)
		if err != nil {
			t.Fatal(err)
		}
		err = syscall.Fallocate(int(f.Fd()), 0, 0, n)
		f.Close()
		if err != nil {
			t.Fatalf("filling %.1f MiB: %v", step.mib, err)
		}
		code, first, long := execute(t, Spec(), "-p", dir)
		if code != step.code || !strings.HasPrefix(first, "PBX_DISK "+step.state) {
			t.Errorf("%.1f MiB written: exit %d, %q\nwant exit %d, %q...\n%s", step.mib, code, first, step.code, step.state, long)
		}
		wantPerf := fmt.Sprintf("| %s=%dB;", dir, n)
		if !strings.Contains(first, wantPerf) || !strings.Contains(first, ";0;8388608 ") {
			t.Errorf("%.1f MiB written: perfdata %q lacks %q or max 8388608", step.mib, first, wantPerf)
		}
	}
}
