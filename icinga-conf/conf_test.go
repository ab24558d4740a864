package icingaconf_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pbxha/testharness/icinga2test"
)

// pluginDir is PluginDir in the configs that are only validated, where no
// check runs.
const pluginDir = "/usr/lib/nagios/plugins"

// failoverClass is DESIGN.md's failover class: these services import
// pbxha-failover-check (tight timing, the event handler); every other
// check is notify class.
var failoverClass = map[string]bool{
	"pbx_master_alive": true, "pbx_cluster": true, "pbx_net_failover": true, "pbx_raid": true,
}

var tmpRoot string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "icingaconf-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// icingaBin finds icinga2; without it the test skips, unless CI=true,
// where a missing icinga2 is a failure.
func icingaBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"icinga2", "/usr/sbin/icinga2"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("icinga2 not found (Debian: apt-get install icinga2-bin); CI=true, so this fails instead of skipping")
	}
	t.Skip("icinga2 not found; with CI=true this is a failure")
	return ""
}

// confFiles is every *.conf of this folder (example-hosts.conf included),
// as absolute paths.
func confFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, "example-hosts.conf") || !slices.Contains(files, "commands.conf") {
		t.Fatalf("icinga-conf/*.conf is %v: commands.conf or example-hosts.conf missing", files)
	}
	for i, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = abs
	}
	return files
}

// plugins maps each plugin folder's binary name (check_pbx_disk) to its
// built binary: from $PBXHA_BIN (make test builds there first) when it has
// them all, else built once for the whole test run.
func plugins(t *testing.T) map[string]string {
	t.Helper()
	mains, err := filepath.Glob("../plugins/check_pbx_*/main.go")
	if err != nil || len(mains) == 0 {
		t.Fatalf("no plugin folders under ../plugins: %v", err)
	}
	var names []string
	for _, m := range mains {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	dir, err := buildPlugins(names)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = filepath.Join(dir, n)
	}
	return out
}

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

func buildPlugins(names []string) (string, error) {
	buildOnce.Do(func() {
		if d := os.Getenv("PBXHA_BIN"); d != "" {
			all := true
			for _, n := range names {
				if _, err := os.Stat(filepath.Join(d, n)); err != nil {
					all = false
				}
			}
			if all {
				builtDir = d
				return
			}
		}
		builtDir = filepath.Join(tmpRoot, "bin")
		args := []string{"build", "-o", builtDir + "/"}
		for _, n := range names {
			args = append(args, "./plugins/"+n)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	return builtDir, buildErr
}

// flag is one line of a plugin's -h.
type flag struct {
	short, long, typ, desc string
}

var flagLine = regexp.MustCompile(`^\s+(?:-([A-Za-z0-9]), )?--([a-z0-9][a-z0-9-]*)(?: (\S+))?\s{2,}(.*)$`)

// helpFlags reads a plugin's flags from its -h.
func helpFlags(t *testing.T, bin string) []flag {
	t.Helper()
	out, _ := exec.Command(bin, "-h").Output()
	var flags []flag
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flags = append(flags, flag{short: m[1], long: m[2], typ: m[3], desc: m[4]})
		}
	}
	if len(flags) < 5 {
		t.Fatalf("%s -h lists %d flags; expected the common ones at least:\n%s", bin, len(flags), out)
	}
	return flags
}

func (f flag) isSwitch() bool { return f.typ == "" || f.typ == "count" }

func (f flag) repeatable() bool {
	return f.typ == "stringArray" || f.typ == "strings" || f.typ == "ints" || strings.Contains(f.desc, "repeatable") || strings.Contains(f.desc, "repeat for several")
}

// key is the flag as the CheckCommand passes it: the long form, except -t
// and -v, which every plugin has and every Nagios plugin spells short.
func (f flag) key() string {
	switch f.long {
	case "timeout":
		return "-t"
	case "verbose":
		return "-v"
	}
	return "--" + f.long
}

// varName is the custom variable of a flag: pbx_<check>_<option>, and the
// one pbx_config shared by every command.
func varName(check string, f flag) string {
	if f.long == "config" {
		return "pbx_config"
	}
	return "pbx_" + check + "_" + strings.ReplaceAll(f.long, "-", "_")
}

// instance is one Icinga 2 configuration directory with its own state
// directories, run as LAB.md says, as the current user.
type instance struct {
	dir  string
	icin string
}

func newInstance(t *testing.T, icinga string) *instance {
	t.Helper()
	return &instance{dir: t.TempDir(), icin: icinga}
}

func (in *instance) write(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(in.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (in *instance) args(t *testing.T, validate bool) []string {
	return icinga2test.Args(t, in.dir, validate)
}

// validate runs `icinga2 daemon -C` and returns its output.
func (in *instance) validate(t *testing.T) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, in.icin, in.args(t, true)...).CombinedOutput()
	return string(out), err
}

func (in *instance) mustValidate(t *testing.T) []object {
	t.Helper()
	out, err := in.validate(t)
	if err != nil {
		t.Fatalf("icinga2 daemon -C: %v\n%s", err, out)
	}
	if strings.Contains(out, "critical/") {
		t.Fatalf("icinga2 daemon -C exited 0 but logged a critical line:\n%s", out)
	}
	return in.objects(t)
}

type object = icinga2test.Object

func (in *instance) objects(t *testing.T) []object { return icinga2test.Objects(t, in.dir) }

var byType = icinga2test.ByType

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// standaloneConf is the icinga2.conf of one node running its own Icinga:
// LAB.md's minimal config, Debian's constants, zones.conf.standalone and
// every file of this folder.
func standaloneConf(plugDir string, files []string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "const PluginDir = %q\n", plugDir)
	b.WriteString("const ZoneName = NodeName\n") // as Debian's constants.conf
	b.WriteString("include \"zones.conf\"\ninclude <itl>\ninclude <plugins>\n")
	b.WriteString("object CheckerComponent \"checker\" { }\n")
	for _, f := range files {
		fmt.Fprintf(&b, "include %q\n", f)
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// raidHost is a test host that asks for check_pbx_raid, so the apply rule
// that only some nodes match is checked too.
const raidHost = `object Host "raid-node" {
	import "pbxha-node"
	address = "127.0.0.1"
	vars.pbx_cluster_ip = "127.0.0.2"
	vars.pbx_raid = true
}`

func standalone(t *testing.T) []object {
	t.Helper()
	in := newInstance(t, icingaBin(t))
	in.write(t, "zones.conf", readFile(t, "zones.conf.standalone"))
	in.write(t, "raid-host.conf", raidHost)
	in.write(t, "icinga2.conf", standaloneConf(pluginDir, confFiles(t), `include "raid-host.conf"`))
	return in.mustValidate(t)
}

// TestStandaloneValidates loads every file of the folder, the example
// hosts and zones.conf.standalone into the real icinga2.
func TestStandaloneValidates(t *testing.T) {
	objs := standalone(t)
	if len(byType(objs, "Service")) == 0 {
		t.Fatal("the configuration validates but creates no Service")
	}
}

// TestBrokenConfigFails proves that the validation can fail: each copy of
// the folder has one mistake, and icinga2 must refuse it, naming it.
func TestBrokenConfigFails(t *testing.T) {
	icinga := icingaBin(t)
	cases := []struct {
		file, from, to, want string
	}{
		{"templates.conf", `template Service "pbxha-failover-check"`, `template Service "pbxha-failover-chek"`, "pbxha-failover-check"},
		{"templates.conf", `event_command = "pbxha-failover"`, `event_command = "pbxha-failovr"`, "pbxha-failovr"},
		{"commands.conf", `repeat_key = true`, `repeat_key = ture`, "ture"},
		{"services.conf", `check_command = "pbx_disk"`, `check_command = "pbx_dsk"`, "pbx_dsk"},
		{"notifications.conf", `object NotificationCommand "pbxha-mail-service"`, `object NotificationCommand "pbxha-mail-servic"`, "pbxha-mail-service"},
	}
	for _, c := range cases {
		t.Run(c.file+"/"+c.to, func(t *testing.T) {
			in := newInstance(t, icinga)
			var files []string
			for _, f := range confFiles(t) {
				text := readFile(t, f)
				if filepath.Base(f) == c.file {
					if !strings.Contains(text, c.from) {
						t.Fatalf("%s no longer contains %q: update this test", c.file, c.from)
					}
					text = strings.Replace(text, c.from, c.to, 1)
				}
				in.write(t, "pbxha/"+filepath.Base(f), text)
				files = append(files, filepath.Join(in.dir, "pbxha", filepath.Base(f)))
			}
			in.write(t, "zones.conf", readFile(t, "zones.conf.standalone"))
			in.write(t, "icinga2.conf", standaloneConf(pluginDir, files))
			out, err := in.validate(t)
			if err == nil {
				t.Fatalf("icinga2 daemon -C accepted %s with %q:\n%s", c.file, c.to, out)
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("icinga2 refused the config but does not name %q:\n%s", c.want, out)
			}
		})
	}
}

// TestCheckCommandsMatchPlugins: every plugin folder has its CheckCommand,
// every CheckCommand its plugin, and each CheckCommand passes exactly the
// plugin's flags (from its -h), each in the ITL's style: a description,
// set_if for a switch, repeat_key for a repeatable flag, variables named
// pbx_<check>_<option>.
func TestCheckCommandsMatchPlugins(t *testing.T) {
	bins := plugins(t)
	objs := standalone(t)
	cmds := map[string]object{}
	for _, o := range byType(objs, "CheckCommand") {
		if strings.HasPrefix(o.Name, "pbx_") {
			cmds[o.Name] = o
		}
	}
	for name := range cmds {
		if _, ok := bins["check_"+name]; !ok {
			t.Errorf("CheckCommand %q has no plugin folder plugins/check_%s", name, name)
		}
	}
	for bin, path := range bins {
		check := strings.TrimPrefix(bin, "check_pbx_")
		name := "pbx_" + check
		t.Run(name, func(t *testing.T) {
			o, ok := cmds[name]
			if !ok {
				t.Fatalf("plugins/%s has no CheckCommand %q in commands.conf", bin, name)
			}
			p := o.Properties
			if cmd, _ := p["command"].([]any); len(cmd) != 1 || str(cmd[0]) != pluginDir+"/"+bin {
				t.Errorf("command = %v, want [ PluginDir + \"/%s\" ]", p["command"], bin)
			}
			vars, _ := p["vars"].(map[string]any)
			if str(vars["pbx_"+check+"_timeout"]) != "$pbx_timeout$" || num(vars["pbx_timeout"]) != 10 {
				t.Errorf("vars.pbx_%s_timeout = %v, vars.pbx_timeout = %v; want \"$pbx_timeout$\" and 10", check, vars["pbx_"+check+"_timeout"], vars["pbx_timeout"])
			}
			if str(vars["pbx_config"]) != "/etc/pbxha/cluster.toml" {
				t.Errorf("vars.pbx_config = %v, want /etc/pbxha/cluster.toml", vars["pbx_config"])
			}
			args, _ := p["arguments"].(map[string]any)
			flags := helpFlags(t, path)
			known := map[string]bool{}
			for _, f := range flags {
				if f.long == "help" || f.long == "version" {
					continue
				}
				known[f.key()] = true
				if f.short != "" {
					known["-"+f.short] = true
				}
				key := f.key()
				a, ok := args[key].(map[string]any)
				if !ok {
					t.Errorf("%s has no argument %q for %s's flag --%s (%s)", name, key, bin, f.long, f.desc)
					continue
				}
				if str(a["description"]) == "" {
					t.Errorf("%s %q: no description", name, key)
				}
				want := "$" + varName(check, f) + "$"
				_, valueFn := a["value"].(map[string]any)
				switch {
				case f.isSwitch():
					if str(a["set_if"]) != want || a["value"] != nil {
						t.Errorf("%s %q is a switch: want set_if = %q and no value, have set_if = %v, value = %v", name, key, want, a["set_if"], a["value"])
					}
				case valueFn:
					// A function (a list joined for a flag that takes one
					// list); TestIcingaRunsThePlugins checks what it renders.
				case str(a["value"]) != want:
					t.Errorf("%s %q: value = %v, want %q", name, key, a["value"], want)
				}
				if f.repeatable() && a["repeat_key"] != true {
					t.Errorf("%s %q: --%s is repeatable (%s %s): want repeat_key = true", name, key, f.long, f.typ, f.desc)
				}
			}
			for key := range args {
				if !known[key] {
					t.Errorf("%s passes %q, which %s -h does not list", name, key, bin)
				}
				if !strings.HasPrefix(key, "--") && key != "-t" && key != "-v" {
					t.Errorf("%s %q: use the long flag (only -t and -v are short)", name, key)
				}
				if (strings.Contains(key, "password") || strings.Contains(key, "secret")) && !strings.HasSuffix(key, "-file") {
					t.Errorf("%s %q: a secret must never be a command-line argument", name, key)
				}
			}
		})
	}
}

// TestApplyRules: every PBX node gets every check under the check's name,
// failover class with the failover template, the rest with the notify
// template, pbx_raid only where asked for, and mail for each.
func TestApplyRules(t *testing.T) {
	bins := plugins(t)
	objs := standalone(t)
	services := map[string]map[string]map[string]any{} // host -> service -> properties
	for _, o := range byType(objs, "Service") {
		h := str(o.Properties["host_name"])
		if services[h] == nil {
			services[h] = map[string]map[string]any{}
		}
		services[h][str(o.Properties["name"])] = o.Properties
	}
	notes := map[string]map[string]any{}
	for _, o := range byType(objs, "Notification") {
		notes[str(o.Properties["__name"])] = o.Properties
	}
	for _, host := range []string{"node1", "node2", "raid-node"} {
		for bin := range bins {
			name := strings.TrimPrefix(bin, "check_")
			p, ok := services[host][name]
			if name == "pbx_raid" && host != "raid-node" {
				if ok {
					t.Errorf("%s has pbx_raid without vars.pbx_raid", host)
				}
				continue
			}
			if !ok {
				t.Errorf("host %s has no service %q", host, name)
				continue
			}
			if str(p["check_command"]) != name {
				t.Errorf("%s!%s: check_command = %v", host, name, p["check_command"])
			}
			type timing struct {
				interval, retry, attempts float64
				handler                   string
			}
			got := timing{num(p["check_interval"]), num(p["retry_interval"]), num(p["max_check_attempts"]), str(p["event_command"])}
			want := timing{60, 15, 3, ""}
			if failoverClass[name] {
				want = timing{2, 1, 3, "pbxha-failover"}
				switch name {
				case "pbx_raid":
					want.interval = 30
				case "pbx_master_alive":
					want.interval, want.retry = 1, 0.5
				}
			}
			if got != want {
				t.Errorf("%s!%s: interval/retry/attempts/event_command = %+v, want %+v", host, name, got, want)
			}
			if p["enable_notifications"] != true || p["enable_event_handler"] != true {
				t.Errorf("%s!%s: enable_notifications = %v, enable_event_handler = %v", host, name, p["enable_notifications"], p["enable_event_handler"])
			}
			if ce := str(p["command_endpoint"]); ce != "" {
				t.Errorf("%s!%s: command_endpoint = %q in a standalone setup", host, name, ce)
			}
			n := notes[host+"!"+name+"!pbxha-mail"]
			groups, _ := n["user_groups"].([]any)
			if str(n["command"]) != "pbxha-mail-service" || !slices.Contains(groups, any("pbxha-admins")) {
				t.Errorf("%s!%s: no Notification pbxha-mail with pbxha-mail-service to pbxha-admins: %v", host, name, n)
			}
		}
		if n := notes[host+"!pbxha-mail"]; n == nil || str(n["command"]) != "pbxha-mail-host" {
			t.Errorf("host %s: no host Notification pbxha-mail with pbxha-mail-host: %v", host, n)
		}
	}
	var admin bool
	for _, u := range byType(objs, "User") {
		groups, _ := u.Properties["groups"].([]any)
		admin = admin || (u.Name == "pbx-admin" && str(u.Properties["email"]) != "" && slices.Contains(groups, any("pbxha-admins")))
	}
	if !admin {
		t.Error("no User pbx-admin with an email in group pbxha-admins")
	}
}

// TestDistributedValidates loads zones.conf.distributed on a central master
// as its comment says (the pbxha files in the global zone, each node's Host
// in its own zone): each node's services belong to its zone and run on it.
func TestDistributedValidates(t *testing.T) {
	in := newInstance(t, icingaBin(t))
	in.write(t, "zones.conf", readFile(t, "zones.conf.distributed"))
	for _, f := range confFiles(t) {
		if filepath.Base(f) != "example-hosts.conf" {
			in.write(t, "zones.d/global-templates/pbxha/"+filepath.Base(f), readFile(t, f))
		}
	}
	for i, n := range []string{"node1", "node2"} {
		in.write(t, "zones.d/"+n+"/hosts.conf", fmt.Sprintf(`object Host %q {
	import "pbxha-node"
	address = "192.0.2.1%d"
	vars.pbx_cluster_ip = "198.51.100.%d"
	vars.pbx_distributed = true
}
`, n, i+1, i+1))
	}
	in.write(t, "icinga2.conf", fmt.Sprintf(`const PluginDir = %q
const NodeName = "icinga-master.example.net"
const ZoneName = "master"
include "zones.conf"
include <itl>
include <plugins>
object CheckerComponent "checker" { }
`, pluginDir))
	objs := in.mustValidate(t)
	svcs := byType(objs, "Service")
	if len(svcs) < 2*len(failoverClass) {
		t.Fatalf("only %d services", len(svcs))
	}
	for _, s := range svcs {
		h := str(s.Properties["host_name"])
		if str(s.Properties["zone"]) != h || str(s.Properties["command_endpoint"]) != h {
			t.Errorf("%s!%s: zone %v, command_endpoint %v; want both %q", h, s.Properties["name"], s.Properties["zone"], s.Properties["command_endpoint"], h)
		}
	}
}

// sample is a value for a flag of a given -h type that the plugin's flag
// parser accepts, as Icinga DSL, and the words it must become.
type sample struct {
	dsl    string
	words  []string // one per flag occurrence
	joined bool     // one flag, the words joined by commas
}

var samples = map[string]sample{
	"string":          {`"x"`, []string{"x"}, false},
	"int":             {`2`, []string{"2"}, false},
	"duration":        {`"150ms"`, []string{"150ms"}, false},
	"range":           {`"10:20"`, []string{"10:20"}, false},
	"size":            {`"2GiB"`, []string{"2GiB"}, false},
	"method":          {`"tcp"`, []string{"tcp"}, false},
	"role":            {`"any"`, []string{"any"}, false},
	"mode":            {`"proc"`, []string{"proc"}, false},
	"seconds[:state]": {`"5:UNKNOWN"`, []string{"5:UNKNOWN"}, false},
	"stringArray":     {`[ "a", "b" ]`, []string{"a", "b"}, false},
	"strings":         {`[ "ext4", "xfs" ]`, []string{"ext4", "xfs"}, false},
	"ints":            {`[ 5060, 5061 ]`, []string{"5060", "5061"}, false},
	"[tel:|clu:]port": {`[ "clu:22", "tel:5038" ]`, []string{"clu:22", "tel:5038"}, false},
	"codes":           {`[ 200, 404 ]`, []string{"200", "404"}, true},
}

// record is one run of a stand-in program: its exit code, arguments and
// when.
type record struct {
	code int
	args []string
	at   time.Time
}

func records(t *testing.T, dir, prog string) []record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, prog+".*"))
	var out []record
	for _, f := range files {
		if strings.HasSuffix(f, ".part") {
			continue
		}
		b, err := os.ReadFile(f)
		fi, err2 := os.Stat(f)
		if err != nil || err2 != nil {
			continue
		}
		fields := strings.Split(string(b), "\x00")
		code, _ := strconv.Atoi(fields[0])
		out = append(out, record{code: code, args: fields[1 : len(fields)-1], at: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// hasRun reports whether args hold each fragment as consecutive words.
func hasRun(args []string, frags ...[]string) bool {
	for _, f := range frags {
		found := false
		for i := 0; i+len(f) <= len(args); i++ {
			if slices.Equal(args[i:i+len(f)], f) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// stub writes a stand-in program that records its arguments and answers
// like a plugin: OK, or CRITICAL with the text of recDir/fail-NAME while
// that file exists.
func stub(t *testing.T, path, recDir string) {
	t.Helper()
	name := filepath.Base(path)
	script := fmt.Sprintf(`#!/bin/sh
code=0 out='%[2]s OK - stand-in'
if [ -f '%[1]s/fail-%[2]s' ]; then code=2 out=$(cat '%[1]s/fail-%[2]s'); fi
f='%[1]s/%[2]s.'$$
printf '%%s\0' "$code" "$@" > "$f.part" && mv "$f.part" "$f"
echo "$out"
exit $code
`, recDir, name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestIcingaRunsThePlugins runs Icinga 2 for real with stand-in programs
// that record their arguments:
//   - a host per CheckCommand sets every variable, and the command line
//     Icinga builds must carry each value under its flag, and the real
//     plugin must parse it (it is run with that command line plus -h, which
//     parses every flag before it and then prints the help);
//   - a PBX node whose check_pbx_master_alive is CRITICAL: the service goes
//     HARD about two retries after its first CRITICAL, the event handler is
//     called with the service's state, and the admin's mail command with the
//     notification.
func TestIcingaRunsThePlugins(t *testing.T) {
	icinga := icingaBin(t)
	bins := plugins(t)
	in := newInstance(t, icinga)
	rec := filepath.Join(in.dir, "rec")
	stubs := filepath.Join(in.dir, "plugins")
	sbin := filepath.Join(in.dir, "sbin")
	for _, d := range []string{rec, stubs, sbin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// What the stand-in check_pbx_master_alive prints once the fault is on.
	const critical = "PBX_MASTER_ALIVE CRITICAL - master node2 unreachable (stand-in)"
	for bin := range bins {
		stub(t, filepath.Join(stubs, bin), rec)
	}
	stub(t, filepath.Join(stubs, "check_ping"), rec)
	stub(t, filepath.Join(sbin, "pbxha-eventhandler"), rec)
	stub(t, filepath.Join(sbin, "pbxha-notify"), rec)
	cfg := filepath.Join(in.dir, "cluster.toml")

	// One host per CheckCommand with every variable set.
	type expect struct {
		bin   string
		frags [][]string
	}
	var expects []expect
	var hosts strings.Builder
	for bin, path := range bins {
		check := strings.TrimPrefix(bin, "check_pbx_")
		fmt.Fprintf(&hosts, "object Host \"render-%s\" {\n\tcheck_command = \"pbx_%s\"\n\tcheck_interval = 1s\n\tretry_interval = 1s\n\tmax_check_attempts = 1\n", check, check)
		e := expect{bin: bin}
		for _, f := range helpFlags(t, path) {
			if f.long == "help" || f.long == "version" {
				continue
			}
			if f.isSwitch() {
				fmt.Fprintf(&hosts, "\tvars.%s = true\n", varName(check, f))
				e.frags = append(e.frags, []string{f.key()})
				continue
			}
			s, ok := samples[f.typ]
			if !ok {
				t.Fatalf("%s --%s has type %q: add a sample value for it to this test", bin, f.long, f.typ)
			}
			fmt.Fprintf(&hosts, "\tvars.%s = %s\n", varName(check, f), s.dsl)
			var frag []string
			if s.joined {
				frag = []string{f.key(), strings.Join(s.words, ",")}
			} else {
				for _, w := range s.words {
					frag = append(frag, f.key(), w)
				}
			}
			e.frags = append(e.frags, frag)
		}
		hosts.WriteString("}\n")
		expects = append(expects, e)
	}
	// The PBX node: defaults only, plus the lab's paths.
	fmt.Fprintf(&hosts, `object Host "n1" {
	import "pbxha-node"
	address = "127.0.0.1"
	vars.pbx_cluster_ip = "127.0.0.2"
	vars.pbx_config = %q
	vars.pbx_timeout = 7
	vars.pbxha_eventhandler = %q
	vars.pbxha_notify = %q
}
`, cfg, filepath.Join(sbin, "pbxha-eventhandler"), filepath.Join(sbin, "pbxha-notify"))
	in.write(t, "test-hosts.conf", hosts.String())
	in.write(t, "zones.conf", readFile(t, "zones.conf.standalone"))
	var files []string
	for _, f := range confFiles(t) {
		if filepath.Base(f) != "example-hosts.conf" { // their addresses are the lab's, not reachable here
			files = append(files, f)
		}
	}
	in.write(t, "icinga2.conf", standaloneConf(stubs, files, `include "test-hosts.conf"`, `object NotificationComponent "notification" { }`))
	in.mustValidate(t)

	logf, err := os.Create(filepath.Join(in.dir, "icinga2.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(icinga, in.args(t, false)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// The umbrella process stops its worker on SIGTERM; the group kill
		// catches a worker left behind when that goes wrong.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	waitFor := func(what func() []string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for m := what(); len(m) > 0; m = what() {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("icinga2 exited (%v) before running %v; log:\n%s", err, m, readFile(t, logf.Name()))
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60 s Icinga has not run %s; log:\n%s", strings.Join(m, "; "), readFile(t, logf.Name()))
			}
		}
	}
	nodeAlive := func(code int) []record {
		var out []record
		for _, r := range records(t, rec, "check_pbx_master_alive") {
			if r.code == code && hasRun(r.args, []string{"--config", cfg}) {
				out = append(out, r)
			}
		}
		return out
	}
	handler := func(state, typ string) []record {
		var out []record
		for _, r := range records(t, rec, "pbxha-eventhandler") {
			if hasRun(r.args, []string{"--service", "pbx_master_alive"}, []string{"--state", state}, []string{"--state-type", typ}) {
				out = append(out, r)
			}
		}
		return out
	}

	// Every CheckCommand rendered, and the node's master_alive OK first, so
	// the fault below starts from a HARD OK as in production (a service's
	// first result after start-up counts as its second attempt). A command
	// that has run a few times without the expected words has failed.
	var wrong []string
	waitFor(func() []string {
		var pending []string
		wrong = nil
		for _, e := range expects {
			rs, ok := records(t, rec, e.bin), false
			for _, r := range rs {
				ok = ok || hasRun(r.args, e.frags...)
			}
			switch {
			case ok:
			case len(rs) >= 6:
				wrong = append(wrong, fmt.Sprintf("%s never ran with %q; it last ran with %q", e.bin, e.frags, rs[len(rs)-1].args))
			default:
				pending = append(pending, fmt.Sprintf("%s with %q", e.bin, e.frags))
			}
		}
		if len(nodeAlive(0)) == 0 {
			pending = append(pending, "n1's check_pbx_master_alive")
		}
		return pending
	})
	for _, w := range wrong {
		t.Error(w)
	}
	fault := time.Now()
	in.write(t, "rec/fail-check_pbx_master_alive.tmp", critical)
	if err := os.Rename(filepath.Join(rec, "fail-check_pbx_master_alive.tmp"), filepath.Join(rec, "fail-check_pbx_master_alive")); err != nil {
		t.Fatal(err)
	}
	waitFor(func() []string {
		var m []string
		if len(handler("CRITICAL", "HARD")) == 0 {
			m = append(m, "pbxha-eventhandler at HARD CRITICAL")
		}
		if len(records(t, rec, "pbxha-notify")) == 0 {
			m = append(m, "pbxha-notify")
		}
		return m
	})

	// Every command line Icinga built is one the real plugin parses.
	for bin, path := range bins {
		seen := map[string]bool{}
		for _, r := range records(t, rec, bin) {
			k := strings.Join(r.args, "\x00")
			if seen[k] {
				continue
			}
			seen[k] = true
			out, _ := exec.Command(path, append(slices.Clone(r.args), "-h")...).Output()
			if !strings.HasPrefix(string(out), bin+" (pbxha)") {
				first, _, _ := strings.Cut(string(out), "\n")
				t.Errorf("%s refuses the command line Icinga built, %q: %s", bin, r.args, first)
			}
		}
	}

	// The node's check_pbx_master_alive with the CheckCommand's defaults:
	// exactly these words.
	defaults := [][]string{{"--config", cfg}, {"--interval", "50ms"}, {"--method", "banner"}, {"--port", "clu:22", "--port", "tel:5038"}, {"-t", "7"}}
	for _, r := range append(nodeAlive(0), nodeAlive(2)...) {
		if !hasRun(r.args, defaults...) || len(r.args) != 12 {
			t.Errorf("n1's check_pbx_master_alive ran with %q, want just %q", r.args, defaults)
		}
	}

	hard := handler("CRITICAL", "HARD")[0]
	wantHandler := [][]string{{"handle"}, {"--service", "pbx_master_alive"}, {"--state", "CRITICAL"}, {"--state-type", "HARD"},
		{"--host", "n1"}, {"--output", critical}, {"--config", cfg}}
	if hard.args[0] != "handle" || !hasRun(hard.args, wantHandler...) || !slices.Contains(hard.args, "--attempt") || slices.Contains(hard.args, "--dry-run") {
		t.Errorf("event handler at HARD ran with %q, want %q and --attempt", hard.args, wantHandler)
	}
	var crits int
	for _, r := range nodeAlive(2) {
		if !r.at.After(hard.at) {
			crits++
		}
	}
	if crits != 3 {
		t.Errorf("HARD after %d CRITICAL results, want pbxha-failover-check's max_check_attempts = 3", crits)
	}
	soft := handler("CRITICAL", "SOFT")
	if len(soft) == 0 {
		t.Fatal("the event handler was not called at the first SOFT CRITICAL")
	}
	// The first CRITICAL at the next check (pbx_master_alive's
	// check_interval 1 s), then two retries 500 ms apart.
	detect, retries := soft[0].at.Sub(fault), hard.at.Sub(soft[0].at)
	t.Logf("fault -> first CRITICAL %v, -> HARD and the event handler %v", detect.Round(time.Millisecond), hard.at.Sub(fault).Round(time.Millisecond))
	if detect > 3*time.Second {
		t.Errorf("first CRITICAL %v after the fault; check_interval is 1 s", detect)
	}
	if retries < 800*time.Millisecond || retries > 4*time.Second {
		t.Errorf("HARD %v after the first CRITICAL; two retries 500 ms apart make it ~1 s", retries)
	}

	var mailed bool
	for _, r := range records(t, rec, "pbxha-notify") {
		mailed = mailed || (len(r.args) > 0 && r.args[0] == "service" && hasRun(r.args, []string{"--type", "PROBLEM"}, []string{"--host", "n1"},
			[]string{"--service", "pbx_master_alive"}, []string{"--state", "CRITICAL"}, []string{"--output", critical},
			[]string{"--to", "pbx-admin@example.net"}, []string{"--config", cfg}) &&
			!slices.Contains(r.args, "--author") && !slices.Contains(r.args, "--comment") && !slices.Contains(r.args, "--long-output"))
	}
	if !mailed {
		var all [][]string
		for _, r := range records(t, rec, "pbxha-notify") {
			all = append(all, r.args)
		}
		t.Errorf("no pbxha-notify service --type PROBLEM for n1's pbx_master_alive to pbx-admin (and no empty --author, --comment, --long-output); runs: %q", all)
	}
}
