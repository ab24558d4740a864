package debpkg_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pbxha/lib/config"
	"pbxha/testharness/icinga2test"
)

const (
	root      = "../.."
	pkg       = "pbxha"
	pluginDir = "/usr/lib/nagios/plugins"
	sbinDir   = "/usr/sbin"
	icingaDir = "/usr/share/pbxha/icinga2"
	example   = "/etc/pbxha/cluster.toml.example"
	sudoers   = "/etc/sudoers.d/pbxha"
	wrapper   = "/usr/lib/pbxha/pbxha-eventhandler-sudo"
	spoolDir  = "/var/spool/pbxha"
	stateDir  = "/var/lib/pbxha"
	unitDir   = "/usr/lib/systemd/system"
	wantsDir  = "/etc/systemd/system/timers.target.wants"
)

var timers = []string{"pbxha-sync.timer", "pbxha-mail-flush.timer"}

// need skips without what the test needs, or fails under CI=true.
func need(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true, so this fails instead of skipping", what)
	}
	t.Skipf("%s; with CI=true this is a failure", what)
}

func have(prog string) bool {
	_, err := exec.LookPath(prog)
	return err == nil
}

// run runs a command (as root) and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// mains lists the folder names of dir/*/main.go, as the Makefile does.
func mains(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, dir, "*", "main.go"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no %s/*/main.go: %v", dir, err)
	}
	var out []string
	for _, f := range m {
		out = append(out, filepath.Base(filepath.Dir(f)))
	}
	return out
}

// netraw is the Makefile's NETRAW: the plugins that get cap_net_raw.
func netraw(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^NETRAW\s*:=\s*(.*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Makefile: no NETRAW")
	}
	return strings.Fields(string(m[1]))
}

// binaries is a directory with every plugin and command built: those of
// $PBXHA_BIN (make test builds there first) when it has them all, else
// built here.
func binaries(t *testing.T, names []string) string {
	t.Helper()
	if d := os.Getenv("PBXHA_BIN"); d != "" {
		all := true
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(d, n)); err != nil {
				all = false
			}
		}
		if all {
			// A copy: a `make build` running meanwhile must not change
			// what the test compares the installed files with.
			cp := t.TempDir()
			for _, n := range names {
				b, err := os.ReadFile(filepath.Join(d, n))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cp, n), b, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			return cp
		}
	}
	d := t.TempDir()
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", d + "/"}
	for _, n := range names {
		if strings.HasPrefix(n, "check_pbx_") {
			args = append(args, "./plugins/"+n)
		} else {
			args = append(args, "./eventhandler/cmd/"+n)
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return d
}

// status is dpkg's state of the package ("" when unknown to dpkg).
func status(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// pbxhaEntries lists the entries under dir (recursively) whose name
// mentions pbxha: what systemd enablement leaves behind.
func pbxhaEntries(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "pbxha") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestDebInstall builds the .deb, installs it with dpkg, checks it, and
// purges it; the purge also runs when the test fails half way.
func TestDebInstall(t *testing.T) {
	need(t, "not root: dpkg -i needs root", os.Geteuid() == 0)
	need(t, "dpkg not found: the package is installed with it", have("dpkg") && have("dpkg-deb") && have("dpkg-query"))

	plugins := mains(t, "plugins")
	commands := mains(t, "eventhandler/cmd")
	bin := binaries(t, append(slices.Clone(plugins), commands...))

	// Build it with the command `make deb` runs.
	out := t.TempDir()
	build := exec.Command("go", "run", "./scripts/deb", "-bin", abs(t, bin), "-version", "0.0.0~debtest", "-out", out)
	build.Dir = root
	res, err := build.Output()
	if err != nil {
		t.Fatalf("go run ./scripts/deb: %v\n%s%s", err, res, stderr(err))
	}
	deb := strings.TrimSpace(string(res))
	st, err := os.Stat(deb)
	if err != nil {
		t.Fatalf("scripts/deb printed %q: %v", res, err)
	}
	t.Logf("%s: %.1f MiB", filepath.Base(deb), float64(st.Size())/(1<<20))

	// What it holds, and what is on the machine now: the test must leave it
	// as it found it, so it refuses to overwrite anything.
	var files, dirs []string
	for line := range strings.SplitSeq(strings.TrimSpace(mustRun(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		p := strings.TrimPrefix(f[len(f)-1], ".")
		if strings.HasSuffix(p, "/") {
			dirs = append(dirs, strings.TrimSuffix(p, "/"))
		} else {
			files = append(files, p)
		}
	}
	if s := status(t); s != "" && s != "not-installed" {
		t.Fatalf("%s is already on this machine (%s): the test would replace and purge it; dpkg --purge %s first", pkg, s, pkg)
	}
	for _, f := range append(slices.Clone(files), spoolDir, stateDir) {
		if exists(f) {
			t.Fatalf("%s exists and is not from the package: installing would overwrite it, purging remove it", f)
		}
	}
	existed := map[string]bool{}
	for _, d := range append(slices.Clone(dirs), wantsDir, "/var/lib/systemd/deb-systemd-helper-enabled") {
		existed[d] = exists(d)
	}
	// deb-systemd-helper's record of enabled timers: it keeps the folder
	// when the last entry goes; the cleanup removes it if it made it.
	const dshWants = "/var/lib/systemd/deb-systemd-helper-enabled/timers.target.wants"
	if !exists(dshWants) {
		t.Cleanup(func() { os.Remove(dshWants) }) // only when empty
	}
	leftovers := func() []string {
		return append(pbxhaEntries("/etc/systemd/system"), pbxhaEntries("/var/lib/systemd/deb-systemd-helper-enabled")...)
	}
	if l := leftovers(); len(l) > 0 {
		t.Fatalf("systemd state of %s already on the machine: %v", pkg, l)
	}

	t.Cleanup(func() {
		if s := status(t); s != "" && s != "not-installed" {
			out, err := run(t, "dpkg", "--purge", pkg)
			t.Logf("cleanup: dpkg --purge %s: %v\n%s", pkg, err, out)
		}
	})
	inst := mustRun(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i:\n%s", inst)
	if s := status(t); s != "installed" {
		t.Fatalf("after dpkg -i the package is %q", s)
	}
	// Again, as an upgrade does: dpkg replaces the plugins (dropping
	// their capabilities) and postinst runs with the old version; what
	// follows checks the result.
	mustRun(t, "dpkg", "-i", deb)

	t.Run("files", func(t *testing.T) { checkFiles(t, bin, plugins, commands) })
	t.Run("capabilities", func(t *testing.T) { checkCaps(t, plugins) })
	t.Run("config", checkConfig)
	t.Run("sudoers", checkSudoers)
	t.Run("systemd", checkSystemd)
	t.Run("nagios", checkAsNagios)
	t.Run("icinga2", func(t *testing.T) { checkIcinga(t, plugins) })

	purge := mustRun(t, "dpkg", "--purge", pkg)
	t.Logf("dpkg --purge:\n%s", purge)
	if s := status(t); s != "" && s != "not-installed" {
		t.Errorf("after dpkg --purge the package is %q", s)
	}
	for _, f := range append(files, spoolDir, stateDir) {
		if exists(f) {
			t.Errorf("%s is still there after the purge", f)
		}
	}
	for d, was := range existed {
		if !was && exists(d) {
			t.Errorf("directory %s was made by the package and is still there after the purge", d)
		}
	}
	if l := leftovers(); len(l) > 0 {
		t.Errorf("systemd state left after the purge: %v", l)
	}
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkFiles: every plugin and command where the Makefile's install puts
// it, byte for byte the built one; the Icinga files, the docs, the example
// config; modes and owners; dpkg's own verification; the conffiles.
func checkFiles(t *testing.T, bin string, plugins, commands []string) {
	same := func(installed, src string, mode fs.FileMode) {
		t.Helper()
		st, err := os.Stat(installed)
		if err != nil {
			t.Errorf("not installed: %v", err)
			return
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", installed, st.Mode().Perm(), mode)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want root", installed, sys.Uid, sys.Gid)
		}
		if sum(t, installed) != sum(t, src) {
			t.Errorf("%s differs from %s", installed, src)
		}
	}
	for _, p := range plugins {
		same(filepath.Join(pluginDir, p), filepath.Join(bin, p), 0o755)
	}
	for _, c := range commands {
		same(filepath.Join(sbinDir, c), filepath.Join(bin, c), 0o755)
	}
	confs, _ := filepath.Glob(filepath.Join(root, "icinga-conf", "*.conf"))
	zones, _ := filepath.Glob(filepath.Join(root, "icinga-conf", "zones.conf.*"))
	if len(confs) < 5 || len(zones) != 2 {
		t.Fatalf("icinga-conf: %v %v", confs, zones)
	}
	for _, f := range append(append(confs, zones...), filepath.Join(root, "icinga-conf", "README.md")) {
		same(filepath.Join(icingaDir, filepath.Base(f)), f, 0o644)
	}
	same(filepath.Join(icingaDir, "HOWTO.md"), filepath.Join(root, "packaging", "icinga2-HOWTO.md"), 0o644)
	same("/usr/share/doc/pbxha/README.md", filepath.Join(root, "README.md"), 0o644)
	same(example, filepath.Join(root, "packaging", "cluster.toml.example"), 0o644)
	same(sudoers, filepath.Join(root, "packaging", "sudoers"), 0o440)
	same(wrapper, filepath.Join(root, "packaging", "pbxha-eventhandler-sudo"), 0o755)
	for _, u := range []string{"pbxha-sync.service", "pbxha-sync.timer", "pbxha-mail-flush.service", "pbxha-mail-flush.timer"} {
		same(filepath.Join(unitDir, u), filepath.Join(root, "packaging", u), 0o644)
	}
	if exists(filepath.Join(sbinDir, "pbxlab")) || exists(filepath.Join(pluginDir, "pbxlab")) {
		t.Error("the lab's pbxlab was installed")
	}

	// dpkg's md5sums against the disk: every file as shipped.
	if out, err := run(t, "dpkg", "--verify", pkg); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("dpkg --verify %s: %v\n%s", pkg, err, out)
	}
	conff := mustRun(t, "dpkg-query", "-W", "-f=${Conffiles}\n", pkg)
	for _, c := range []string{example, sudoers} {
		if !strings.Contains(conff, " "+c+" ") {
			t.Errorf("%s is not a conffile:\n%s", c, conff)
		}
	}
	st, err := os.Stat(stateDir)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v %v, want a 0755 directory", stateDir, err, st)
	}
}

// checkCaps: the Makefile's NETRAW plugins have cap_net_raw, the others
// nothing.
func checkCaps(t *testing.T, plugins []string) {
	need(t, "getcap not found (libcap2-bin)", have("getcap"))
	raw := netraw(t)
	for _, p := range plugins {
		path := filepath.Join(pluginDir, p)
		out := strings.TrimSpace(mustRun(t, "getcap", path))
		want := ""
		if slices.Contains(raw, p) {
			want = path + " cap_net_raw=ep"
		}
		if out != want {
			t.Errorf("getcap %s = %q, want %q", path, out, want)
		}
	}
}

// checkConfig: the installed example loads with lib/config as a whole
// two-node cluster.
func checkConfig(t *testing.T) {
	cfg, err := config.Load(example, true)
	if err != nil {
		t.Fatalf("the installed example does not load: %v", err)
	}
	if len(cfg.Nodes) != 2 || cfg.Self() == nil || cfg.Peer() == nil || len(cfg.Services) == 0 || cfg.VIP.Address == "" {
		t.Errorf("the example is not a whole cluster: %+v", cfg)
	}
}

// checkSudoers: visudo accepts the drop-in (when sudo is installed), and
// it allows the nagios user the handler's handle and flush and nothing
// else.
func checkSudoers(t *testing.T) {
	b, err := os.ReadFile(sudoers)
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for line := range strings.SplitSeq(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			rules = append(rules, strings.Join(strings.Fields(line), " "))
		}
	}
	want := []string{
		"Cmnd_Alias PBXHA_HANDLER = /usr/sbin/pbxha-eventhandler handle *, /usr/sbin/pbxha-eventhandler flush, /usr/sbin/pbxha-eventhandler flush *",
		"nagios ALL = (root) NOPASSWD: PBXHA_HANDLER",
	}
	if !slices.Equal(rules, want) {
		t.Errorf("sudoers rules:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}
	if b, err := os.ReadFile(wrapper); err != nil || !strings.Contains(string(b), "\nexec sudo -n /usr/sbin/pbxha-eventhandler \"$@\"\n") {
		t.Errorf("%s: %v\n%s", wrapper, err, b)
	}
	if !have("visudo") {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and visudo not found (scripts/deps installs sudo): the drop-in's syntax cannot be checked")
		}
		t.Log("visudo not found (sudo is not installed): the drop-in's syntax is not checked here")
		return
	}
	if out, err := run(t, "visudo", "-cf", sudoers); err != nil {
		t.Errorf("visudo -cf %s: %v\n%s", sudoers, err, out)
	}
}

// checkSystemd: the units verify, the timers are enabled the Debian way,
// and the services do nothing without a cluster.toml.
func checkSystemd(t *testing.T) {
	need(t, "deb-systemd-helper not found (init-system-helpers)", have("deb-systemd-helper"))
	for _, tm := range timers {
		// deb-systemd-helper links to /lib/systemd/system, /usr/lib's
		// alias on a merged /usr.
		link := filepath.Join(wantsDir, tm)
		got, err := filepath.EvalSymlinks(link)
		want, _ := filepath.EvalSymlinks(filepath.Join(unitDir, tm))
		if err != nil || got != want {
			t.Errorf("%s is not enabled: %s resolves to %q (%v), want %s", tm, link, got, err, want)
		}
	}
	for _, u := range []string{"pbxha-sync.service", "pbxha-mail-flush.service"} {
		b, _ := os.ReadFile(filepath.Join(unitDir, u))
		if !strings.Contains(string(b), "\nConditionPathExists=/etc/pbxha/cluster.toml\n") {
			t.Errorf("%s runs without /etc/pbxha/cluster.toml", u)
		}
		m := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no ExecStart", u)
		} else if st, err := os.Stat(string(m[1])); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s runs %s: %v", u, m[1], err)
		}
	}
	if !have("systemd-analyze") {
		t.Log("systemd-analyze not found: the units are not verified")
		return
	}
	var units []string
	for _, u := range []string{"pbxha-sync.service", "pbxha-sync.timer", "pbxha-mail-flush.service", "pbxha-mail-flush.timer"} {
		units = append(units, filepath.Join(unitDir, u))
	}
	out, err := run(t, "systemd-analyze", append([]string{"verify"}, units...)...)
	if err != nil || strings.Contains(out, "pbxha") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// nagios is the nagios user, as Icinga runs the plugins.
func nagios(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nagios")
	need(t, "no nagios user (icinga2-common or monitoring-plugins create it)", err == nil)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		n, _ := strconv.Atoi(g)
		cred.Groups = append(cred.Groups, uint32(n))
	}
	return cred
}

// asNagios runs a program as the nagios user, with Icinga's bare
// environment, and returns its exit code and output.
func asNagios(t *testing.T, cred *syscall.Credential, prog string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s: %v\n%s", prog, err, out)
	return -1, ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// checkAsNagios runs installed plugins from their installed path as the
// nagios user: a disk check that must be CRITICAL (nothing on / is 0%
// used), and an ICMP check that works only through the capability the
// postinst gave it, against a copy without it that must fail.
func checkAsNagios(t *testing.T) {
	cred := nagios(t)
	code, out := asNagios(t, cred, filepath.Join(pluginDir, "check_pbx_disk"), "--config", example, "-p", "/", "-w", "0", "-c", "0", "-t", "10")
	if want := regexp.MustCompile(`^PBX_DISK CRITICAL - / \d+% used \(critical > 0\), .* free of .* \| /=\d+B;0;0;0;\d+ `); code != 2 || !want.MatchString(firstLine(out)) {
		t.Errorf("check_pbx_disk as nagios: exit %d, want 2 and %s:\n%s", code, want, out)
	}

	alive := []string{"--role", "any", "--method", "icmp", "--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.2", "-t", "10"}
	code, out = asNagios(t, cred, filepath.Join(pluginDir, "check_pbx_master_alive"), alive...)
	if want := "PBX_MASTER_ALIVE OK - master reachable on telephony 127.0.0.1 and cluster 127.0.0.2 | "; code != 0 || !strings.HasPrefix(firstLine(out), want) {
		t.Errorf("check_pbx_master_alive (cap_net_raw) as nagios: exit %d, want 0 and %q:\n%s", code, want, out)
	}

	// The control: the same binary without the capability.
	if pingGroupAdmits(t, cred) {
		t.Log("net.ipv4.ping_group_range admits nagios: ICMP works without the capability, so no control run")
		return
	}
	dir, err := os.MkdirTemp("", "debpkg-nocap-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(pluginDir, "check_pbx_master_alive"))
	if err != nil {
		t.Fatal(err)
	}
	nocap := filepath.Join(dir, "check_pbx_master_alive")
	if err := os.WriteFile(nocap, b, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out = asNagios(t, cred, nocap, alive...)
	// UNKNOWN, not CRITICAL: a slave that cannot probe must not start a
	// failover; the capability is what makes it work.
	first, _, _ := strings.Cut(out, "\n")
	if code != 3 || !strings.Contains(first, "cannot probe master") || !strings.Contains(first, "CAP_NET_RAW") {
		t.Errorf("check_pbx_master_alive without cap_net_raw as nagios: exit %d, want 3 (UNKNOWN) naming CAP_NET_RAW:\n%s", code, out)
	}
}

func pingGroupAdmits(t *testing.T, cred *syscall.Credential) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	lo, _ := strconv.ParseUint(f[0], 10, 32)
	hi, _ := strconv.ParseUint(f[1], 10, 32)
	for _, g := range append([]uint32{cred.Gid}, cred.Groups...) {
		if uint64(g) >= lo && uint64(g) <= hi {
			return true
		}
	}
	return false
}

// howto reads the installed HOWTO.md's recipe: the include lines it adds
// to icinga2.conf and the hosts.conf it shows.
func howto(t *testing.T) (includes []string, host string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(icingaDir, "HOWTO.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if in && len(block) > 0 && strings.HasPrefix(block[0], "object Host ") {
				host = strings.Join(block, "\n") + "\n"
			}
			in, block = !in, nil
			continue
		}
		if !in {
			continue
		}
		block = append(block, line)
		if strings.HasPrefix(line, "include ") || strings.HasPrefix(line, "include_recursive ") {
			includes = append(includes, line)
		}
	}
	if len(includes) < 5 || host == "" {
		t.Fatalf("HOWTO.md: includes %v, host %q: the recipe is not where the test reads it", includes, host)
	}
	return includes, host
}

// checkIcinga follows HOWTO.md on a scratch Icinga 2 configuration: the
// installed files included from /usr/share/pbxha/icinga2, users.conf
// copied, the how-to's host; `icinga2 daemon -C` must accept it, and every
// installed plugin's CheckCommand must run the installed binary.
func checkIcinga(t *testing.T, plugins []string) {
	var icinga string
	for _, p := range []string{"icinga2", "/usr/sbin/icinga2"} {
		if b, err := exec.LookPath(p); err == nil {
			icinga = b
			break
		}
	}
	need(t, "icinga2 not found (Debian: icinga2-bin)", icinga != "")
	includes, host := howto(t)

	// Every installed .conf is included by the recipe, copied by it
	// (users.conf), or the example hosts.
	installed, _ := filepath.Glob(filepath.Join(icingaDir, "*.conf"))
	for _, f := range installed {
		base := filepath.Base(f)
		if base == "users.conf" || base == "example-hosts.conf" {
			continue
		}
		if !slices.Contains(includes, fmt.Sprintf("include %q", f)) {
			t.Errorf("HOWTO.md does not include %s", f)
		}
	}

	dir, err := os.MkdirTemp("", "debpkg-icinga-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write("zones.conf", read(filepath.Join(icingaDir, "zones.conf.standalone")))
	write("pbxha/users.conf", read(filepath.Join(icingaDir, "users.conf")))
	write("pbxha/hosts.conf", host)
	conf := fmt.Sprintf("const PluginDir = %q\nconst ZoneName = NodeName\ninclude \"zones.conf\"\ninclude <itl>\ninclude <plugins>\nobject CheckerComponent \"checker\" { }\n", pluginDir)
	write("icinga2.conf", conf+strings.Join(includes, "\n")+"\n")

	args := icinga2test.Args(t, dir, true)
	out, err := run(t, icinga, args...)
	if err != nil || strings.Contains(out, "critical/") {
		t.Fatalf("icinga2 daemon -C on the installed configuration: %v\n%s", err, out)
	}

	objs := icinga2test.Objects(t, dir)
	commands := map[string]string{}
	services := 0
	var hostVars map[string]any
	for _, o := range objs {
		switch o.Type {
		case "CheckCommand":
			if c, ok := o.Properties["command"].([]any); ok && len(c) > 0 {
				commands[o.Name], _ = c[0].(string)
			}
		case "Service":
			if o.Properties["host_name"] == "pbx1" {
				services++
			}
		case "Host":
			if o.Name == "pbx1" {
				hostVars, _ = o.Properties["vars"].(map[string]any)
			}
		}
	}
	for _, p := range plugins {
		name := "pbx_" + strings.TrimPrefix(p, "check_pbx_")
		if got, want := commands[name], filepath.Join(pluginDir, p); got != want {
			t.Errorf("CheckCommand %s runs %q, want the installed %s", name, got, want)
		}
	}
	if services < len(plugins)-1 {
		t.Errorf("the how-to's host gets %d services for %d plugins", services, len(plugins))
	}
	eh, _ := hostVars["pbxha_eventhandler"].(string)
	if st, err := os.Stat(eh); eh == "" || err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("the how-to's host runs the event handler %q: %v", eh, err)
	}
}
