package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"pbxha/lib/config"
)

const root = "../.."

func TestDebVersion(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"v1.2.0", "1.2.0"},
		{"1.2.0", "1.2.0"},
		{"v1.2.0-3-gabc1234", "1.2.0+3.gabc1234"},
		{"v1.2.0-3-gabc1234-dirty", "1.2.0+3.gabc1234.dirty"},
		{"v0.9.0-rc1", "0.9.0+rc1"},
		{"74b63fa", "0~74b63fa"},
		{"74b63fa-dirty", "0~74b63fa+dirty"},
		{"abc1234", "0~abc1234"},
		{"dev", "0~dev"},
		{"vagrant", "0~vagrant"},
	} {
		got, err := DebVersion(c.in)
		if err != nil || got != c.want {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "1.0 beta", "1.0/2", "v1_0"} {
		if got, err := DebVersion(bad); err == nil {
			t.Errorf("DebVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// tomlKeys lists every key of a config struct as table.key, recursing into
// tables and arrays of tables.
func tomlKeys(prefix string, typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[config.Duration]() && ft != reflect.TypeFor[config.Secret]() {
			out = append(out, tomlKeys(prefix+tag+".", ft)...)
			continue
		}
		out = append(out, prefix+tag)
	}
	return out
}

// TestExampleConfig loads packaging/cluster.toml.example with lib/config
// and requires every key lib/config knows to be in it, set or commented
// out under its table, so a new key cannot go undocumented.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join(root, "packaging", "cluster.toml.example")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, path)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if len(cfg.Nodes) != 2 || cfg.Self() == nil || cfg.Peer() == nil || cfg.VIP.Address == "" || len(cfg.Services) == 0 {
		t.Errorf("the example is not a whole cluster: nodes %d, self %v, vip %q, services %d", len(cfg.Nodes), cfg.Self(), cfg.VIP.Address, len(cfg.Services))
	}
	// Which table each line is in ("" before the first), commented or not.
	header := regexp.MustCompile(`^#?\s*\[\[?([a-z_]+)\]\]?\s*(#.*)?$`)
	keyLine := regexp.MustCompile(`^#?\s*([a-z_0-9]+)\s*=`)
	seen := map[string]bool{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := header.FindStringSubmatch(line); m != nil {
			table = m[1] + "."
			seen[m[1]] = true
			continue
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			seen[table+m[1]] = true
		}
	}
	keys := tomlKeys("", reflect.TypeFor[config.Config]())
	if len(keys) < 50 {
		t.Fatalf("found only %d keys in config.Config: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !seen[k] {
			t.Errorf("%s: key %s of lib/config is missing (add it, commented out with its default if need be)", path, k)
		}
	}
}

// netraw reads a space-separated list assigned to name in a Makefile or a
// shell script.
func netraw(t *testing.T, file, pattern string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)` + pattern).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no %s", file, pattern)
	}
	l := strings.Fields(string(m[1]))
	slices.Sort(l)
	return l
}

// TestNetrawMatchesMakefile keeps postinst's setcap list the Makefile's.
func TestNetrawMatchesMakefile(t *testing.T) {
	mk := netraw(t, filepath.Join(root, "Makefile"), `^NETRAW\s*:=\s*(.*)$`)
	pi := netraw(t, filepath.Join(root, "packaging", "postinst"), `^NETRAW="([^"]*)"$`)
	if !slices.Equal(mk, pi) {
		t.Errorf("NETRAW: Makefile %v, packaging/postinst %v", mk, pi)
	}
	plugins, err := Plugins(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range mk {
		if !slices.Contains(plugins, p) {
			t.Errorf("NETRAW names %s, which is not a plugin folder", p)
		}
	}
}

// fakeBin writes what checkBinary takes for an ELF executable of arch.
func fakeBin(t *testing.T, path, arch string) {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[18:], elfMachine[arch])
	if err := os.WriteFile(path, append(h, path...), 0o755); err != nil {
		t.Fatal(err)
	}
}

// entry is one member of the data or control tarball.
type entry struct {
	mode  int64
	owner string
	body  []byte
}

// readDeb opens a .deb (ar of debian-binary, control.tar.gz, data.tar.*).
func readDeb(t *testing.T, path string) (control, data map[string]entry) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		t.Fatalf("%s is not an ar archive", path)
	}
	b = b[8:]
	var names []string
	for len(b) >= 60 {
		name := strings.TrimRight(strings.TrimSpace(string(b[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(b[48:58])))
		if err != nil || 60+size > len(b) {
			t.Fatalf("bad ar member %q", name)
		}
		body := b[60 : 60+size]
		names = append(names, name)
		var r io.Reader = bytes.NewReader(body)
		switch {
		case strings.HasSuffix(name, ".gz"):
			if r, err = gzip.NewReader(r); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(name, ".zst"):
			d, err := zstd.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			r = d
		}
		switch {
		case strings.HasPrefix(name, "control.tar"):
			control = untar(t, r)
		case strings.HasPrefix(name, "data.tar"):
			data = untar(t, r)
		}
		b = b[60+size+size%2:]
	}
	if !slices.Equal(names, []string{"debian-binary", "control.tar.gz", "data.tar.zst"}) {
		t.Fatalf("ar members %v", names)
	}
	return control, data
}

func untar(t *testing.T, r io.Reader) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, ".")
		if h.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/") + "/"
		}
		out[name] = entry{mode: h.Mode & 0o7777, owner: h.Uname + ":" + h.Gname, body: body}
	}
}

// TestPackage builds the package from stand-in binaries and reads it back:
// every file where it belongs with its mode, the conffiles, the scripts,
// the control fields.
func TestPackage(t *testing.T) {
	bin := t.TempDir()
	plugins, err := Plugins(root)
	if err != nil {
		t.Fatal(err)
	}
	commands, err := Commands(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(slices.Clone(plugins), commands...) {
		fakeBin(t, filepath.Join(bin, n), "amd64")
	}
	fakeBin(t, filepath.Join(bin, "pbxlab"), "amd64") // a test tool: never packaged
	out := t.TempDir()
	path, err := build(options{src: root, bin: bin, version: "v1.2.3-4-gdeadbee", out: out, arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "pbxha_1.2.3+4.gdeadbee_amd64.deb" {
		t.Errorf("package file %s", path)
	}
	control, data := readDeb(t, path)

	want := map[string]int64{
		"/etc/pbxha/cluster.toml.example":                 0o644,
		"/etc/sudoers.d/pbxha":                            0o440,
		"/usr/lib/pbxha/pbxha-eventhandler-sudo":          0o755,
		"/usr/share/doc/pbxha/README.md":                  0o644,
		"/usr/share/pbxha/icinga2/HOWTO.md":               0o644,
		"/usr/share/pbxha/icinga2/README.md":              0o644,
		"/usr/share/pbxha/icinga2/commands.conf":          0o644,
		"/usr/share/pbxha/icinga2/zones.conf.standalone":  0o644,
		"/usr/share/pbxha/icinga2/zones.conf.distributed": 0o644,
	}
	for _, p := range plugins {
		want[PluginDir+"/"+p] = 0o755
	}
	for _, c := range commands {
		want[SbinDir+"/"+c] = 0o755
	}
	for _, u := range Units {
		want[UnitDir+"/"+u] = 0o644
	}
	icinga, err := IcingaFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range icinga {
		want[IcingaDir+"/"+f] = 0o644
	}
	for p, mode := range want {
		e, ok := data[p]
		if !ok {
			t.Errorf("%s is not in the package", p)
			continue
		}
		if e.mode != mode || e.owner != "root:root" {
			t.Errorf("%s: mode %o owner %s, want %o root:root", p, e.mode, e.owner, mode)
		}
	}
	for p := range data {
		if _, ok := want[p]; !ok && !strings.HasSuffix(p, "/") {
			t.Errorf("%s is in the package but not expected", p)
		}
	}
	if got := string(data[PluginDir+"/check_pbx_disk"].body); !strings.HasSuffix(got, filepath.Join(bin, "check_pbx_disk")) {
		t.Errorf("check_pbx_disk is not the -bin one")
	}
	src, _ := os.ReadFile(filepath.Join(root, "packaging", "sudoers"))
	if !bytes.Equal(data["/etc/sudoers.d/pbxha"].body, src) {
		t.Error("sudoers differs from packaging/sudoers")
	}

	if got := string(control["/conffiles"].body); got != "/etc/pbxha/cluster.toml.example\n/etc/sudoers.d/pbxha\n" {
		t.Errorf("conffiles:\n%s", got)
	}
	for _, s := range []string{"/postinst", "/prerm", "/postrm"} {
		if e, ok := control[s]; !ok || e.mode != 0o755 || !bytes.HasPrefix(e.body, []byte("#!/bin/sh\n")) {
			t.Errorf("control %s: present %v, mode %o", s, ok, e.mode)
		}
	}
	ctl := string(control["/control"].body)
	for _, line := range []string{"Package: pbxha\n", "Version: 1.2.3+4.gdeadbee\n", "Architecture: amd64\n", "Recommends: libcap2-bin\n"} {
		if !strings.Contains(ctl, line) {
			t.Errorf("control lacks %q:\n%s", line, ctl)
		}
	}
	if strings.Contains(ctl, "Depends:") {
		t.Errorf("the package depends on something:\n%s", ctl)
	}
}

// TestRefusesStaleBin: a missing or foreign binary stops the build.
func TestRefusesStaleBin(t *testing.T) {
	plugins, _ := Plugins(root)
	commands, _ := Commands(root)
	for _, c := range []struct {
		name, arch, want string
	}{
		{"missing", "", "no such file"},
		{"arm64", "arm64", "not amd64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			for i, n := range append(slices.Clone(plugins), commands...) {
				arch := "amd64"
				if i == 0 {
					if c.arch == "" {
						continue
					}
					arch = c.arch
				}
				fakeBin(t, filepath.Join(bin, n), arch)
			}
			_, err := build(options{src: root, bin: bin, version: "1.0", out: t.TempDir(), arch: "amd64"})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), plugins[0]) {
				t.Errorf("error %v, want one naming %s and %q", err, plugins[0], c.want)
			}
		})
	}
	if _, err := spec(options{src: root, bin: "x", version: "1.0", arch: "mips"}); err == nil {
		t.Error("-arch mips accepted")
	}
}
