package services

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

func execute(t *testing.T, spec plugin.Spec, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("PBXHA_CONFIG", "")
	var out bytes.Buffer
	code := plugin.Execute(spec, append([]string{"--role", "any"}, args...), &out)
	first, rest, _ := strings.Cut(out.String(), "\n")
	return code, first, rest
}

// fakeUnits answers from a table; a unit it does not know is not found.
// A nil table stands for a bus that cannot be reached, and hang for one
// that never answers.
func fakeUnits(table map[string]UnitState, hang bool) UnitSource {
	return func(ctx context.Context, units []string) ([]UnitState, error) {
		if hang {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if table == nil {
			return nil, errors.New("connecting to systemd over the D-Bus system bus: dial unix /run/dbus/system_bus_socket: connect: no such file or directory")
		}
		var out []UnitState
		for _, u := range units {
			st, ok := table[u]
			if !ok {
				st = UnitState{Name: u, LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}
			}
			out = append(out, st)
		}
		return out, nil
	}
}

// fixtureDeps run the check as pid 601 of the fixture, the one started by
// a shell with --cmdline 'kam=kamailio -f'.
func fixtureDeps(t *testing.T, booted bool, units UnitSource) deps {
	d := deps{systemdRun: filepath.Join(t.TempDir(), "no-systemd"), units: units, selfPID: 601, selfExe: "/nonexistent"}
	if booted {
		d.systemdRun = t.TempDir()
	}
	return d
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

const unreadableNote = "1 process could not be read and was not counted; first: reading testdata/proc/800/stat: "

func TestCheck(t *testing.T) {
	units := map[string]UnitState{
		"asterisk.service": {Name: "asterisk.service", LoadState: "loaded", ActiveState: "active", SubState: "running", MainPID: 100},
		"kamailio.service": {Name: "kamailio.service", LoadState: "loaded", ActiveState: "failed", SubState: "failed"},
		"mariadb.service":  {Name: "mariadb.service", LoadState: "loaded", ActiveState: "activating", SubState: "start"},
	}
	cfg := writeConfig(t, `
[[services]]
name = "asterisk"
unit = "asterisk.service"
process = "asterisk"

[[services]]
name = "mariadb"
process = "mariadbd"

[[services]]
name = "kamailio"
unit = "kamailio"
cmdline = "-f /etc/kamailio/kamailio\\.cfg"
count = "2:"

[[services]]
name = "rtpengine"
unit = "rtpengine"
`)
	noServices := writeConfig(t, "cluster_id = \"pbx1\"\n")
	badConfig := writeConfig(t, "[[services]]\nname = \"a\"\nproces = \"a\"\n")
	badRegex := writeConfig(t, "[[services]]\nname = \"a\"\ncmdline = \"a(\"\n")

	tests := []struct {
		name   string
		booted bool
		units  UnitSource
		args   []string
		code   int
		first  string
		long   []string // lines that must be in the rest of the output
	}{
		{
			name:  "processes by name, pattern and both; the check and its shell not counted",
			args:  []string{"--procfs", fixture, "--mode", "proc", "-s", "asterisk", "-s", "kamailio", "--process", "mariadb=mariadbd", "--cmdline", "kam=kamailio -f", "--count", "kamailio=3:3"},
			first: "PBX_SERVICES OK - asterisk: 1 process (pid 100), kamailio: 3 processes (pids 300, 301, 302), mariadb: 1 process (pid 200), kam: 4 processes (pids 300, 301, 302, 602) | asterisk=1;;1:;0 kamailio=3;;3:3;0 mariadb=1;;1:;0 kam=4;;1:;0",
			long:  []string{`\_ [OK] asterisk: 1 process (pid 100)`, `\_ [OK] kam: 4 processes (pids 300, 301, 302, 602)`, unreadableNote},
		},
		{
			name:  "auto without systemd counts processes; a service down is CRITICAL",
			args:  []string{"--procfs", fixture, "-s", "asterisk", "-s", "rtpengine", "--count", "asterisk=1:1"},
			code:  2,
			first: "PBX_SERVICES CRITICAL - rtpengine: 0 processes (expected 1:) | asterisk=1;;1:1;0 rtpengine=0;;1:;0",
			long:  []string{`\_ [OK] asterisk: 1 process (pid 100)`, `\_ [CRITICAL] rtpengine: 0 processes (expected 1:)`},
		},
		{
			name:  "too many is CRITICAL too",
			args:  []string{"--procfs", fixture, "-s", "kamailio", "--count", "kamailio=1"},
			code:  2,
			first: "PBX_SERVICES CRITICAL - kamailio: 3 processes (pids 300, 301, 302; expected 1) | kamailio=3;;1;0",
		},
		{
			name:   "auto with systemd asks for units",
			booted: true,
			units:  fakeUnits(units, false),
			args:   []string{"--procfs", fixture, "-s", "asterisk", "-s", "kamailio", "--process", "mariadb=mariadbd"},
			code:   2,
			first:  "PBX_SERVICES CRITICAL - kamailio: kamailio.service failed/failed | 'asterisk active'=1;;;0;1 'kamailio active'=0;;;0;1 'mariadb active'=0;;;0;1",
			long: []string{
				`\_ [OK] asterisk: asterisk.service active/running (pid 100)`,
				`\_ [CRITICAL] kamailio: kamailio.service failed/failed`,
				`\_ [WARNING] mariadb: mariadb.service activating/start`,
			},
		},
		{
			name:   "--mode proc ignores systemd",
			booted: true,
			units:  fakeUnits(units, false),
			args:   []string{"--procfs", fixture, "--mode", "proc", "-s", "kamailio"},
			first:  "PBX_SERVICES OK - kamailio: 3 processes (pids 300, 301, 302) | kamailio=3;;1:;0",
		},
		{
			name:   "unit not found",
			booted: true,
			units:  fakeUnits(units, false),
			args:   []string{"--procfs", fixture, "--unit", "rtp=rtpengine-daemon"},
			code:   2,
			first:  "PBX_SERVICES CRITICAL - rtp: rtpengine-daemon.service not found | 'rtp active'=0;;;0;1",
		},
		{
			name:  "D-Bus down: services with a process are counted instead, the rest UNKNOWN",
			units: fakeUnits(nil, false),
			args:  []string{"--procfs", fixture, "--mode", "systemd", "-s", "asterisk", "--unit", "rtp=rtpengine"},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - rtp: cannot ask systemd for rtpengine.service: systemd is not PID 1 here (",
			long: []string{
				`\_ [OK] asterisk: 1 process (pid 100)`,
				"systemd could not be asked, processes counted instead for asterisk: systemd is not PID 1 here (",
			},
		},
		{
			name:   "D-Bus hangs: half of -t, then processes",
			booted: true,
			units:  fakeUnits(nil, true),
			args:   []string{"--procfs", fixture, "-t", "1", "-s", "asterisk"},
			first:  "PBX_SERVICES OK - asterisk: 1 process (pid 100) | asterisk=1;;1:;0",
			long:   []string{"systemd could not be asked, processes counted instead for asterisk: systemd did not answer over D-Bus within "},
		},
		{
			name:   "cluster.toml: units where set, processes for the rest",
			booted: true,
			units:  fakeUnits(units, false),
			args:   []string{"--procfs", fixture, "--config", cfg},
			code:   2,
			first:  "PBX_SERVICES CRITICAL - kamailio: kamailio.service failed/failed, rtpengine: rtpengine.service not found | 'asterisk active'=1;;;0;1 mariadb=1;;1:;0 'kamailio active'=0;;;0;1 'rtpengine active'=0;;;0;1",
			long:   []string{`\_ [OK] mariadb: 1 process (pid 200)`},
		},
		{
			name:  "cluster.toml without systemd: a unit-only service cannot be looked for",
			args:  []string{"--procfs", fixture, "--config", cfg},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - rtpengine: no process or cmdline to look for without systemd (unit rtpengine.service) | asterisk=1;;1:;0 mariadb=1;;1:;0 kamailio=2;;2:;0",
			long:  []string{`\_ [OK] kamailio: 2 processes (pids 300, 301)`},
		},
		{
			name:  "flags replace cluster.toml",
			args:  []string{"--procfs", fixture, "--config", cfg, "-s", "sipwatch"},
			first: "PBX_SERVICES OK - sipwatch: 1 process (pid 500) | sipwatch=1;;1:;0",
		},
		{
			name:  "no services at all",
			args:  []string{"--procfs", fixture, "--config", noServices},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - usage: no services to check: give -s NAME, --process NAME=PROCESS or --cmdline NAME=REGEX (no [[services]] in " + noServices + ")",
		},
		{
			name:  "no services and no cluster.toml",
			args:  []string{"--procfs", fixture},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - usage: no services to check: give -s NAME, --process NAME=PROCESS or --cmdline NAME=REGEX (no /etc/pbxha/cluster.toml)",
		},
		{
			name:  "a broken cluster.toml",
			args:  []string{"--config", badConfig},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - " + badConfig + ": unknown key services.proces",
		},
		{
			name:  "a bad pattern in cluster.toml",
			args:  []string{"--config", badRegex},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - usage: " + badRegex + ": services[0].cmdline: \"a(\": error parsing regexp: missing closing ): `a(`",
		},
		{
			name:  "a bad pattern on the command line",
			args:  []string{"--cmdline", "kam=kamailio (-f"},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - usage: flag --cmdline: \"kam=kamailio (-f\": error parsing regexp: missing closing ): `kamailio (-f`",
		},
		{
			name:  "a bad count",
			args:  []string{"-s", "asterisk", "--count", "asterisk=1-2"},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - usage: flag --count: \"asterisk=1-2\": range \"1-2\": end \"1-2\" is not a number",
		},
		{
			name:  "a bad mode",
			args:  []string{"-s", "asterisk", "--mode", "init"},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - usage: invalid argument \"init\" for \"--mode\" flag: \"init\" is not a mode (auto, systemd, proc)",
		},
		{
			name:  "no procfs",
			args:  []string{"--procfs", "testdata/no-such-proc", "-s", "asterisk"},
			code:  3,
			first: "PBX_SERVICES UNKNOWN - opening testdata/no-such-proc: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.first, "(no "+config.DefaultPath+")") {
				if _, err := os.Stat(config.DefaultPath); err == nil {
					t.Skipf("this host has a %s", config.DefaultPath)
				}
			}
			d := fixtureDeps(t, tt.booted, tt.units)
			if d.units == nil {
				d.units = func(context.Context, []string) ([]UnitState, error) {
					t.Error("systemd asked in proc mode")
					return nil, errors.New("unexpected")
				}
			}
			code, first, rest := execute(t, newSpec(d), tt.args...)
			if code != tt.code || !strings.HasPrefix(first, tt.first) {
				t.Fatalf("exit %d, first line\n%q\nwant exit %d, first line\n%q\n(rest: %q)", code, first, tt.code, tt.first, rest)
			}
			for _, l := range tt.long {
				if !strings.Contains(rest, l) {
					t.Errorf("long output lacks %q:\n%s", l, rest)
				}
			}
		})
	}
}

// A /proc without PID 1 is one mounted with hidepid, read by a user who
// sees only its own processes: every service would look down.
func TestCheckHidepid(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "100")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"stat":    mustRead(t, fixture+"/100/stat"),
		"cmdline": mustRead(t, fixture+"/100/cmdline"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := fixtureDeps(t, false, nil)
	code, first, rest := execute(t, newSpec(d), "--procfs", root, "-s", "asterisk", "-s", "kamailio")
	if code != 2 || !strings.HasPrefix(first, "PBX_SERVICES CRITICAL - kamailio: 0 processes (expected 1:)") {
		t.Errorf("exit %d, %q", code, first)
	}
	if want := "PID 1 is not visible under " + root + ": is it mounted with hidepid?"; !strings.Contains(rest, want) {
		t.Errorf("long output lacks %q:\n%s", want, rest)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The spec as shipped: the real D-Bus client and this process as self.
// Without a reachable bus a unit-only service is UNKNOWN with the reason,
// within the deadline.
func TestSpecSystemdUnreachable(t *testing.T) {
	if SystemdBooted(DefaultSystemdRun) {
		t.Skip("systemd is PID 1 here; this test is for hosts without it")
	}
	start := time.Now()
	code, first, _ := execute(t, Spec(), "-t", "5", "--mode", "systemd", "--unit", "rtp=rtpengine")
	if code != 3 || !strings.HasPrefix(first, "PBX_SERVICES UNKNOWN - rtp: cannot ask systemd for rtpengine.service: systemd is not PID 1 here (/run/systemd/system is missing): connecting to systemd over ") {
		t.Errorf("exit %d, %q", code, first)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("took %s", el)
	}
}
