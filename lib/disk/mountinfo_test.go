package disk

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func selected(t *testing.T, path string, include, exclude []string) []string {
	t.Helper()
	infos, err := ReadMountinfo(path)
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := Select(infos, SkipTypes(include, exclude))
	var out []string
	for _, m := range sel {
		out = append(out, m.Path+" "+m.FSType+" "+m.Device)
	}
	return out
}

func TestSelect(t *testing.T) {
	pbx := "testdata/debian-pbx/self/mountinfo"
	tests := []struct {
		name             string
		path             string
		include, exclude []string
		want             []string
	}{
		{
			name: "debian host: pseudo, tmpfs, squashfs out; bind mount of /var once; over-mounted /mnt/usb only the top; escaped space",
			path: pbx,
			want: []string{
				"/ ext4 254:1",
				"/boot ext2 8:1",
				"/boot/efi vfat 8:2",
				"/var xfs 254:2",
				"/srv btrfs 0:40",
				"/mnt/backup nfs4 0:50",
				"/mnt/usb ext4 0:54",
				"/var/lib/docker/overlay2/abc/merged overlay 0:55",
			},
		},
		{
			name:    "tmpfs included, nfs4 and overlay excluded",
			path:    pbx,
			include: []string{"tmpfs"},
			exclude: []string{"nfs4", "overlay"},
			want: []string{
				"/run tmpfs 0:23",
				"/ ext4 254:1",
				"/dev/shm tmpfs 0:24",
				"/run/lock tmpfs 0:25",
				"/boot ext2 8:1",
				"/boot/efi vfat 8:2",
				"/var xfs 254:2",
				"/srv btrfs 0:40",
				"/run/user/0 tmpfs 0:51",
				"/mnt/usb ext4 0:54",
			},
		},
		{
			name: "pid 1's view",
			path: "testdata/debian-pbx/1/mountinfo",
			want: []string{"/ ext4 254:1", "/var xfs 254:2"},
		},
		{
			name: "container: only the root filesystem",
			path: "testdata/container/self/mountinfo",
			want: []string{"/ ext4 254:0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := selected(t, tt.path, tt.include, tt.exclude)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSelectExplainsSkips(t *testing.T) {
	infos, err := ReadMountinfo("testdata/debian-pbx/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	_, skipped := Select(infos, SkipTypes(nil, nil))
	for _, want := range []string{
		"/proc (proc): type not checked",
		"/var/lib/asterisk/monitor (xfs): device 254:2 already checked as /var",
		"/srv/call recordings (btrfs): device 0:40 already checked as /srv",
		"/mnt/usb (ext4): mounted over later",
		"/snap/core22/1380 (squashfs): type not checked",
	} {
		if !slices.Contains(skipped, want) {
			t.Errorf("skipped lacks %q:\n%s", want, strings.Join(skipped, "\n"))
		}
	}
}

func TestEscapedMountPoint(t *testing.T) {
	got := selected(t, "testdata/debian-pbx/self/mountinfo", nil, []string{"btrfs"})
	if slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "/srv") }) {
		t.Fatalf("btrfs excluded but still selected: %q", got)
	}
	infos, _ := ReadMountinfo("testdata/debian-pbx/self/mountinfo")
	// Each subvolume its own device, as on kernels that give each one an
	// anonymous device number.
	for _, m := range infos {
		if m.MountPoint == `/srv/call\040recordings` {
			m.MajorMinorVer = "0:41"
		}
	}
	sel, _ := Select(infos, SkipTypes(nil, nil))
	if !slices.ContainsFunc(sel, func(m Mount) bool { return m.Path == "/srv/call recordings" }) {
		t.Errorf("escaped mount point not unescaped: %+v", sel)
	}
}

func TestReadMountinfoErrors(t *testing.T) {
	for _, path := range []string{
		"testdata/debian-pbx/mountinfo",     // not in a proc tree
		"testdata/debian-pbx/self/mounts",   // not a mountinfo file
		"testdata/debian-pbx/abc/mountinfo", // neither self nor a pid
		"testdata/missing/self/mountinfo",   // no such tree
		"testdata/malformed/self/mountinfo", // a line procfs cannot parse
		"mountinfo",                         // no directory at all
	} {
		if m, err := ReadMountinfo(path); err == nil {
			t.Errorf("%s: no error, %d mounts", path, len(m))
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error does not name the file: %v", path, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/":                       "/",
		`/srv/call\040recordings`: "/srv/call recordings",
		`/a\011b\012c\134d`:       "/a\tb\nc\\d",
		`/trailing\04`:            `/trailing\04`,
		`/not\999octal`:           `/not\999octal`,
		`/too\400big`:             `/too\400big`,
		`\\040`:                   `\ `,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// mangle is the kernel's escaping (fs/proc_namespace.c).
func mangle(s string) string {
	return strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`).Replace(s)
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"/", "/srv/call recordings", "a\\b", "\t\n\\040"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := Unescape(mangle(s)); got != s {
			t.Fatalf("Unescape(mangle(%q)) = %q", s, got)
		}
		if !strings.Contains(s, `\`) && Unescape(s) != s {
			t.Fatalf("Unescape changed %q without a backslash", s)
		}
		Unescape(s)
	})
}

// FuzzSelect feeds kernel-shaped text through procfs and Select: whatever
// the text, the selection has each device and each mount point once, and
// no skipped type.
func FuzzSelect(f *testing.F) {
	for _, p := range []string{"testdata/debian-pbx/self/mountinfo", "testdata/container/self/mountinfo", "testdata/malformed/self/mountinfo"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "self"), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "self", "mountinfo")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		infos, err := ReadMountinfo(path)
		if err != nil {
			return
		}
		skip := SkipTypes(nil, nil)
		sel, skipped := Select(infos, skip)
		if len(sel)+len(skipped) != len(infos) {
			t.Fatalf("%d selected + %d skipped != %d mounts", len(sel), len(skipped), len(infos))
		}
		devs, paths := map[string]bool{}, map[string]bool{}
		for _, m := range sel {
			if devs[m.Device] || paths[m.Path] || skip[m.FSType] {
				t.Fatalf("duplicate or skipped type selected: %+v in %+v", m, sel)
			}
			devs[m.Device], paths[m.Path] = true, true
		}
	})
}
