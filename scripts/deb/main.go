// Command deb builds pbxha's Debian package with nfpm (as a library) from
// the binaries of `make build`:
//
//	go run ./scripts/deb -bin bin -version "$(git describe --tags)" -out dist/
//
// What goes in is found the way the Makefile builds it: every
// plugins/*/main.go is a plugin in /usr/lib/nagios/plugins, every
// eventhandler/cmd/*/main.go a command in /usr/sbin; each must be in -bin.
// The rest comes from packaging/ and icinga-conf/. It prints the path of
// the .deb it wrote.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Where things go on the node.
const (
	PluginDir  = "/usr/lib/nagios/plugins"
	SbinDir    = "/usr/sbin"
	IcingaDir  = "/usr/share/pbxha/icinga2"
	DocDir     = "/usr/share/doc/pbxha"
	UnitDir    = "/usr/lib/systemd/system"
	LibDir     = "/usr/lib/pbxha"
	ConfigDir  = "/etc/pbxha"
	SudoersDst = "/etc/sudoers.d/pbxha"
)

// Units are the systemd units in packaging/.
var Units = []string{"pbxha-sync.service", "pbxha-sync.timer", "pbxha-mail-flush.service", "pbxha-mail-flush.timer"}

type options struct {
	src, bin, version, out, arch string
}

func main() {
	var o options
	flag.StringVar(&o.src, "src", ".", "the repository's root")
	flag.StringVar(&o.bin, "bin", "bin", "the built binaries (make build)")
	flag.StringVar(&o.version, "version", "", "the version: a tag (v1.2.0), git describe output, or anything; made a Debian version")
	flag.StringVar(&o.out, "out", "dist", "directory the .deb is written to")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "GOARCH of the binaries")
	flag.Parse()
	if flag.NArg() > 0 || o.version == "" {
		fmt.Fprintln(os.Stderr, "usage: deb -version V [-bin bin] [-out dist] [-src .] [-arch GOARCH]")
		os.Exit(2)
	}
	path, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// build writes the package into o.out and returns its path.
func build(o options) (string, error) {
	info, err := spec(o)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.out, deb.Default.ConventionalFileName(info))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// names lists the folder names matching pattern/*/main.go under src, as
// the Makefile's wildcard does.
func names(src, pattern string) ([]string, error) {
	mains, err := filepath.Glob(filepath.Join(src, pattern, "*", "main.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mains {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(out)
	return out, nil
}

// Plugins are the plugin binaries' names (check_pbx_*).
func Plugins(src string) ([]string, error) {
	all, err := names(src, "plugins")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range all {
		if strings.HasPrefix(n, "check_pbx_") {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no plugins/check_pbx_*/main.go under %s (run from the repository's root or give -src)", src)
	}
	return out, nil
}

// Commands are the /usr/sbin programs (pbxha-*).
func Commands(src string) ([]string, error) {
	out, err := names(src, "eventhandler/cmd")
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no eventhandler/cmd/*/main.go under %s", src)
	}
	return out, err
}

// IcingaFiles are the files of icinga-conf/ that are installed.
func IcingaFiles(src string) ([]string, error) {
	var out []string
	for _, p := range []string{"*.conf", "*.distributed", "*.standalone", "README.md"} {
		m, err := filepath.Glob(filepath.Join(src, "icinga-conf", p))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			out = append(out, filepath.Base(f))
		}
	}
	sort.Strings(out)
	if len(out) < 3 {
		return nil, fmt.Errorf("icinga-conf/ under %s has only %v", src, out)
	}
	return out, nil
}

// elfMachine is e_machine for each GOARCH we package.
var elfMachine = map[string]uint16{"amd64": 62, "arm64": 183, "386": 3, "arm": 40}

// debArch is Debian's name for each GOARCH.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf"}

// checkBinary refuses what is not an ELF executable for arch: a stale or
// cross-built bin/ would otherwise be packaged silently.
func checkBinary(path, arch string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	defer f.Close()
	var h [20]byte
	if _, err := f.Read(h[:]); err != nil || !bytes.Equal(h[:4], []byte("\x7fELF")) {
		return fmt.Errorf("%s is not an ELF executable", path)
	}
	if m := binary.LittleEndian.Uint16(h[18:]); m != elfMachine[arch] {
		return fmt.Errorf("%s is built for ELF machine %d, not %s", path, m, arch)
	}
	return nil
}

var (
	debVersionOK = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
	// gitHash is `git describe --always` without a tag: a bare commit.
	gitHash = regexp.MustCompile(`^[0-9a-f]{7,40}(-|$)`)
)

// DebVersion makes a Debian upstream version of a tag or `git describe`
// output that sorts as they do: v1.2.0 → 1.2.0, v1.2.0-3-gabc1234-dirty →
// 1.2.0+3.gabc1234.dirty (after 1.2.0), and one without a tag (a bare
// commit such as 74b63fa-dirty, or dev) → 0~74b63fa+dirty, before any
// release.
func DebVersion(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	if v == "" {
		return "", errors.New("empty version")
	}
	if v[0] < '0' || v[0] > '9' || gitHash.MatchString(v) {
		v = "0~" + v
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v = v[:i] + "+" + strings.ReplaceAll(v[i+1:], "-", ".")
	}
	if !debVersionOK.MatchString(v) {
		return "", fmt.Errorf("version %q: only letters, digits and . + ~ - may appear", v)
	}
	return v, nil
}

// file is one packaged file: from src to dst, with its mode.
func file(src, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode}}
}

func conffile(src, dst string, mode os.FileMode) *files.Content {
	c := file(src, dst, mode)
	c.Type = files.TypeConfig
	return c
}

// spec is the package.
func spec(o options) (*nfpm.Info, error) {
	arch, ok := debArch[o.arch]
	if !ok {
		return nil, fmt.Errorf("-arch %s: not one of amd64, arm64, 386, arm", o.arch)
	}
	version, err := DebVersion(o.version)
	if err != nil {
		return nil, err
	}
	src := func(p ...string) string { return filepath.Join(append([]string{o.src}, p...)...) }
	var contents files.Contents

	plugins, err := Plugins(o.src)
	if err != nil {
		return nil, err
	}
	commands, err := Commands(o.src)
	if err != nil {
		return nil, err
	}
	for _, list := range []struct {
		names []string
		dir   string
	}{{plugins, PluginDir}, {commands, SbinDir}} {
		for _, n := range list.names {
			b := filepath.Join(o.bin, n)
			if err := checkBinary(b, o.arch); err != nil {
				return nil, err
			}
			contents = append(contents, file(b, list.dir+"/"+n, 0o755))
		}
	}

	icinga, err := IcingaFiles(o.src)
	if err != nil {
		return nil, err
	}
	for _, f := range icinga {
		contents = append(contents, file(src("icinga-conf", f), IcingaDir+"/"+f, 0o644))
	}
	contents = append(contents,
		file(src("packaging", "icinga2-HOWTO.md"), IcingaDir+"/HOWTO.md", 0o644),
		file(src("README.md"), DocDir+"/README.md", 0o644),
		conffile(src("packaging", "cluster.toml.example"), ConfigDir+"/cluster.toml.example", 0o644),
		conffile(src("packaging", "sudoers"), SudoersDst, 0o440),
		file(src("packaging", "pbxha-eventhandler-sudo"), LibDir+"/pbxha-eventhandler-sudo", 0o755),
	)
	for _, u := range Units {
		contents = append(contents, file(src("packaging", u), UnitDir+"/"+u, 0o644))
	}
	for _, c := range contents {
		if _, err := os.Stat(c.Source); err != nil {
			return nil, err
		}
	}

	info := &nfpm.Info{
		Name:          "pbxha",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "pbxha maintainers <pbxha@example.net>",
		Description: "Icinga-native monitoring and failover for two-node Asterisk clusters\n" +
			"Monitoring plugins (check_pbx_*) for Icinga 2 and Nagios, the event\n" +
			"handler that fails the PBX over to the slave when the master dies,\n" +
			"the mail notifications, and the Icinga 2 configuration for them.",
		Homepage: "https://example.net/pbxha",
		License:  "proprietary",
		// Reproducible: SOURCE_DATE_EPOCH when set, else the build time.
		MTime: mtime(),
		Overridables: nfpm.Overridables{
			Recommends: []string{"libcap2-bin"},
			Suggests:   []string{"icinga2", "sudo", "rsync"},
			Contents:   contents,
			Umask:      0o022,
			Scripts: nfpm.Scripts{
				PostInstall: src("packaging", "postinst"),
				PreRemove:   src("packaging", "prerm"),
				PostRemove:  src("packaging", "postrm"),
			},
			Deb: nfpm.Deb{Compression: "zstd"},
		},
	}
	return nfpm.WithDefaults(info), nil
}

func mtime() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var n int64
		if _, err := fmt.Sscan(s, &n); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}
