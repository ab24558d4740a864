package rsyncd

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
)

const testPassword = "t0p-s3cret"

// run executes the check in-process with a cluster.toml of cfgText (none
// when empty) and --role any, and asserts what every run must satisfy.
func run(t *testing.T, cfgText string, args ...string) (code int, first, out string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PBXHA_CONFIG", cfg)
	t.Setenv(PasswordEnv, "")
	var b bytes.Buffer
	code = plugin.Execute(Spec(), append([]string{"--role", "any"}, args...), &b)
	out = b.String()
	first, _, _ = strings.Cut(out, "\n")
	if !regexp.MustCompile(`^PBX_RSYNC (OK|WARNING|CRITICAL|UNKNOWN)( - [^|\n]*)?( \| .*)?$`).MatchString(first) {
		t.Errorf("first line %q is not plugin output", first)
	}
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("perfdata %q: %v", perf, err)
		}
	}
	for _, secret := range []string{testPassword, "wrong-pass"} {
		if strings.Contains(out, secret) {
			t.Errorf("the password appears in the output:\n%s", out)
		}
	}
	return code, first, out
}

func passwordFile(t *testing.T, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Transcript pieces, as rsync daemons write them.
var (
	greet32     = send("@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n")
	greet31     = send("@RSYNCD: 31.0\n") // rsync 3.1.x: no digest list
	greet30     = send("@RSYNCD: 30.0\n") // rsync 3.0.x
	ourGreeting = expectLine("@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4")
	listRequest = expectLine("")
	twoModules  = send("pbx            \tnode2 synced directory\nvoicemail      \t\n@RSYNCD: EXIT\n")
)

func listing(greet act) []act {
	return []act{greet, ourGreeting, listRequest, twoModules, hangUp()}
}

func TestCheckAgainstScriptedDaemon(t *testing.T) {
	pw := passwordFile(t, testPassword)
	wrong := passwordFile(t, "wrong-pass")
	cases := []struct {
		name    string
		scripts [][]act
		args    []string
		code    int
		first   string // regexp; "$A" is the fake's address, quoted
		long    string // substring of the whole output
		conns   int    // connections the check must make (0: don't care)
	}{
		{
			name:    "rsync 3.1 lists pbx",
			scripts: [][]act{listing(greet31)},
			args:    []string{"-m", "pbx"},
			code:    0,
			first:   `^PBX_RSYNC OK - rsyncd $A protocol 31: module pbx listed \| connect_time=[0-9.]+s;1;3;0 protocol=31$`,
			long:    "module pbx: node2 synced directory",
			conns:   1,
		},
		{
			// cluster.toml's rsync_module defaults to pbx.
			name:    "rsync 3.0 with a MOTD",
			scripts: [][]act{{send("@RSYNCD: 30.0\nWelcome to node2\n\n"), ourGreeting, listRequest, twoModules, hangUp()}},
			args:    []string{"-v"},
			code:    0,
			first:   `^PBX_RSYNC OK - rsyncd $A protocol 30: module pbx listed \| connect_time=[0-9.]+s;1;3;0 protocol=30$`,
			long:    "motd: Welcome to node2",
		},
		{
			name:    "greeting split over two segments",
			scripts: [][]act{{sendSplit("@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n", 5, 50*time.Millisecond), ourGreeting, listRequest, twoModules, hangUp()}},
			args:    []string{"-m", "pbx", "-m", "voicemail"},
			code:    0,
			first:   `^PBX_RSYNC OK - rsyncd $A protocol 32: module pbx listed, module voicemail listed \| `,
		},
		{
			name:    "module missing",
			scripts: [][]act{listing(greet31), {greet31, ourGreeting, expectLine("nosuch"), send("@ERROR: Unknown module 'nosuch'\n"), hangUp()}},
			args:    []string{"-m", "pbx", "-m", "nosuch"},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - rsyncd $A protocol 31: module pbx listed, module nosuch not found \(listed: pbx voicemail\) \| connect_time=`,
			conns:   2,
		},
		{
			name:    "a module not listed but there",
			scripts: [][]act{listing(greet31), {greet31, ourGreeting, expectLine("hidden"), send("@RSYNCD: OK\n")}},
			args:    []string{"-m", "hidden"},
			code:    0,
			first:   `^PBX_RSYNC OK - rsyncd $A protocol 31: module hidden exists \(not listed\) \| `,
		},
		{
			name: "login with MD5 to rsync 3.1",
			scripts: [][]act{listing(greet31), {greet31, ourGreeting, expectLine("pbx"), sendChallenge("q9ZWtmTkGnQ7y0ZqAaR3ZA"),
				expectAuth("pbxsync", testPassword, DigestMD5), send("@RSYNCD: OK\n")}},
			args:  []string{"-m", "pbx", "-u", "pbxsync", "--password-file", pw},
			code:  0,
			first: `^PBX_RSYNC OK - rsyncd $A protocol 31: module pbx accepts user pbxsync \| `,
			long:  "module pbx: password accepted (md5)",
			conns: 2,
		},
		{
			name: "login with the first digest of ours the daemon offers",
			scripts: [][]act{listing(send("@RSYNCD: 32.0 sha256 md5\n")), {send("@RSYNCD: 32.0 sha256 md5\n"), ourGreeting, expectLine("pbx"),
				sendChallenge("c2hhMjU2Y2hhbGxlbmdl"), expectAuth("pbxsync", testPassword, DigestSHA256), send("@RSYNCD: OK\n")}},
			args:  []string{"-u", "pbxsync", "--password-file", pw, "-m", "pbx"},
			code:  0,
			first: `^PBX_RSYNC OK - rsyncd $A protocol 32: module pbx accepts user pbxsync \| `,
			long:  "password accepted (sha256)",
		},
		{
			name: "password rejected",
			scripts: [][]act{listing(greet32), {greet32, ourGreeting, expectLine("pbx"), sendChallenge("Y2hhbGxlbmdl"),
				expectAuth("pbxsync", "wrong-pass", DigestSHA512), send("@ERROR: auth failed on module pbx\n"), hangUp()}},
			args:  []string{"-u", "pbxsync", "--password-file", wrong, "-m", "pbx"},
			code:  2,
			first: `^PBX_RSYNC CRITICAL - rsyncd $A protocol 32: module pbx: password rejected for user pbxsync \(auth failed on module pbx\) \| `,
		},
		{
			name: "no digest in common",
			scripts: [][]act{listing(send("@RSYNCD: 33.0 blake3\n")), {send("@RSYNCD: 33.0 blake3\n"), ourGreeting, expectLine("pbx"),
				sendChallenge("Y2hhbGxlbmdl"), hang()}},
			args:  []string{"-u", "pbxsync", "--password-file", pw, "-m", "pbx"},
			code:  2,
			first: `^PBX_RSYNC CRITICAL - rsyncd $A protocol 33: logging in to module pbx on $A as pbxsync: no daemon-auth digest in common: the daemon offers "blake3", we sha512 sha256 sha1 md5 md4 \| `,
		},
		{
			name:    "--no-auth only lists",
			scripts: [][]act{listing(greet32)},
			args:    []string{"-u", "pbxsync", "--password-file", pw, "-m", "pbx", "--no-auth"},
			code:    0,
			first:   `^PBX_RSYNC OK - rsyncd $A protocol 32: module pbx listed \| `,
			conns:   1,
		},
		{
			name:    "silent port",
			scripts: [][]act{{hang()}},
			args:    []string{"-t", "1"},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - waiting for the greeting from $A: no answer within 0\.8s$`,
		},
		{
			name:    "silent port, -t with a state",
			scripts: [][]act{{hang()}},
			args:    []string{"-t", "1:unknown"},
			code:    3,
			first:   `^PBX_RSYNC UNKNOWN - waiting for the greeting from $A: no answer within 0\.8s$`,
		},
		{
			name:    "another protocol",
			scripts: [][]act{{send("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), hang()}},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - waiting for the greeting from $A: not an rsync daemon: "SSH-2.0-OpenSSH_9.2p1 Debian-2"$`,
		},
		{
			name:    "binary garbage",
			scripts: [][]act{{send("\x16\x03\x01\x00|\xff\nevil=1\n"), hang()}},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - waiting for the greeting from $A: not an rsync daemon: "\\x16\\x03\\x01\\x00/\\xff"$`,
		},
		{
			name:    "half a greeting, then hung up",
			scripts: [][]act{{send("@RSYNC"), pause(50 * time.Millisecond), hangUp()}},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - waiting for the greeting from $A: the daemon closed the connection mid-line, after 6 bytes$`,
		},
		{
			name:    "half a greeting, then silence",
			scripts: [][]act{{send("@RSYNCD: 3"), hang()}},
			args:    []string{"-t", "1"},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - waiting for the greeting from $A: stopped mid-line after 10 bytes, nothing more within 0\.8s$`,
		},
		{
			name:    "refused at the greeting",
			scripts: [][]act{{send("@ERROR: access denied to pbx from UNKNOWN (127.0.0.1)\n"), hangUp()}},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - waiting for the greeting from $A: daemon said: "access denied to pbx from UNKNOWN \(127\.0\.0\.1\)"$`,
		},
		{
			name:    "listing refused",
			scripts: [][]act{{greet31, ourGreeting, listRequest, send("@ERROR: protocol startup error\n"), hangUp()}},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - reading the module list from $A: daemon said: "protocol startup error" \| connect_time=[0-9.]+s;1;3;0 protocol=31$`,
		},
		{
			name:    "listing cut short",
			scripts: [][]act{{greet31, ourGreeting, listRequest, send("pbx            \tsync\n"), hangUp()}},
			args:    []string{"-m", "pbx"},
			code:    2,
			first:   `^PBX_RSYNC CRITICAL - reading the module list from $A: the daemon closed the connection before the end of the module list \| `,
		},
		{
			name:    "a daemon before protocol 25 ends the list by hanging up",
			scripts: [][]act{{send("@RSYNCD: 24\n"), ourGreeting, listRequest, send("pbx            \tsync\n"), hangUp()}},
			args:    []string{"-m", "pbx"},
			code:    0,
			first:   `^PBX_RSYNC OK - rsyncd $A protocol 24: module pbx listed \| `,
		},
		{
			name:    "slow greeting",
			scripts: [][]act{{pause(120 * time.Millisecond), greet31, ourGreeting, listRequest, twoModules, hangUp()}},
			args:    []string{"-w", "0.05", "-c", "2", "-m", "pbx"},
			code:    1,
			first:   `^PBX_RSYNC WARNING - rsyncd $A protocol 31: greeting after 0\.1[0-9]+s \(warning > 0\.05\), module pbx listed \| connect_time=0\.1[0-9]+s;0\.05;2;0 protocol=31$`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, tc.scripts...)
			start := time.Now()
			code, first, out := run(t, "", append([]string{"-H", "127.0.0.1", "-p", f.port()}, tc.args...)...)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
			want := strings.ReplaceAll(tc.first, "$A", regexp.QuoteMeta(f.addr()))
			if code != tc.code || !regexp.MustCompile(want).MatchString(first) {
				t.Fatalf("exit %d, first line\n%q\nwant exit %d and %s\n%s", code, first, tc.code, want, out)
			}
			if tc.long != "" && !strings.Contains(out, tc.long) {
				t.Errorf("output lacks %q:\n%s", tc.long, out)
			}
			if tc.conns > 0 && f.connections() != tc.conns {
				t.Errorf("%d connections, want %d", f.connections(), tc.conns)
			}
			f.waitGone(t)
		})
	}
}

func TestCheckRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	code, first, _ := run(t, "", "-H", "127.0.0.1", "-p", port)
	if code != 2 || first != "PBX_RSYNC CRITICAL - connecting to "+addr+": connection refused" {
		t.Fatalf("%d %q", code, first)
	}
}

// With no flags, host, module, user and password come from cluster.toml:
// this node's cluster IP and [sync].
func TestCheckDefaultsFromClusterToml(t *testing.T) {
	f := startFake(t, listing(greet32), []act{greet32, ourGreeting, expectLine("pbx"), sendChallenge("ZGVmYXVsdHM"),
		expectAuth("pbxsync", testPassword, DigestSHA512), send("@RSYNCD: OK\n")})
	pw := passwordFile(t, testPassword)
	cfg := `node = "node2"
[[nodes]]
name = "node1"
cluster_ip = "198.51.100.1"
[[nodes]]
name = "node2"
cluster_ip = "127.0.0.1"
[sync]
rsync_module = "pbx"
rsync_user = "pbxsync"
rsync_password = { file = "` + pw + `" }
`
	code, first, out := run(t, cfg, "-p", f.port(), "-v")
	if code != 0 || first != "PBX_RSYNC OK - rsyncd "+f.addr()+" protocol 32: module pbx accepts user pbxsync | connect_time="+strings.TrimPrefix(strings.SplitN(first, "connect_time=", 2)[1], "") {
		t.Fatalf("%d %q\n%s", code, first, out)
	}
	if !strings.Contains(out, "password from sync.rsync_password in ") {
		t.Errorf("-v does not say where the password came from:\n%s", out)
	}

	// $RSYNC_PASSWORD wins over cluster.toml; a wrong one is rejected.
	g := startFake(t, listing(greet32), []act{greet32, ourGreeting, expectLine("pbx"), sendChallenge("ZW52"),
		expectAuth("pbxsync", "wrong-pass", DigestSHA512), send("@ERROR: auth failed on module pbx\n"), hangUp()})
	cfgPath := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	t.Setenv(PasswordEnv, "wrong-pass")
	code = plugin.Execute(Spec(), []string{"--role", "any", "--config", cfgPath, "-p", g.port()}, &b)
	if code != 2 || !strings.Contains(b.String(), "password rejected for user pbxsync") || strings.Contains(b.String(), "wrong-pass") {
		t.Fatalf("%d %s", code, b.String())
	}
}

func TestCheckUsage(t *testing.T) {
	pw := passwordFile(t, testPassword)
	empty := passwordFile(t, "")
	cases := []struct {
		cfg  string
		args []string
		want string
	}{
		{"", []string{"-m", "a/b"}, `PBX_RSYNC UNKNOWN - usage: flag -m/--module: "a/b" is not a module name`},
		{"", []string{"-m", "#list"}, `flag -m/--module: "#list" is not a module name`},
		{"", []string{"-m", ""}, `flag -m/--module: empty module name`},
		{"", []string{"-p", "0"}, `flag -p/--port: 0 is not a port`},
		{"", []string{"-H", "a b"}, `flag -H/--host: "a b" is not a host name`},
		{"", []string{"-u", "a b"}, `flag -u/--user: "a b" holds a space`},
		{"", []string{"--canary-warning", "2"}, `flags --canary-warning/--canary-critical need --canary`},
		{"", []string{"-w", "x"}, `invalid argument "x" for "-w, --warning" flag`},
		{"", []string{"-H", "127.0.0.1", "--password-file", pw}, `a password (from --password-file ` + pw + `) but no user: give -u/--user or set [sync] rsync_user in `},
		{"", []string{"-H", "127.0.0.1", "-u", "x", "--password-file", empty}, `the rsync password from --password-file ` + empty + ` is empty`},
		{"[[nodes]]\nname = \"a\"\n[[nodes]]\nname = \"b\"\n", []string{"-p", "1"}, `cannot tell this node's cluster IP from `},
	}
	for _, tc := range cases {
		code, first, _ := run(t, tc.cfg, tc.args...)
		if code != 3 || !strings.Contains(first, tc.want) || !strings.HasPrefix(first, "PBX_RSYNC UNKNOWN - usage: ") {
			t.Errorf("%v: %d %q, want %q", tc.args, code, first, tc.want)
		}
	}
	code, first, _ := run(t, "", "-H", "127.0.0.1", "--password-file", filepath.Join(t.TempDir(), "none"), "-u", "x")
	if code != 3 || !strings.HasPrefix(first, "PBX_RSYNC UNKNOWN - reading secret file: ") {
		t.Errorf("missing password file: %d %q", code, first)
	}
}

// Without any cluster.toml there is no default module: only the daemon's
// answer is checked, and --canary has nothing to write to.
func TestCheckWithoutClusterToml(t *testing.T) {
	if _, err := os.Stat("/etc/pbxha/cluster.toml"); err == nil {
		t.Skip("this host has /etc/pbxha/cluster.toml")
	}
	t.Setenv("PBXHA_CONFIG", "")
	t.Setenv(PasswordEnv, "")
	f := startFake(t, listing(greet31))
	var b bytes.Buffer
	code := plugin.Execute(Spec(), []string{"--role", "any", "-H", "127.0.0.1", "-p", f.port()}, &b)
	if first, _, _ := strings.Cut(b.String(), "\n"); code != 0 || !strings.HasPrefix(first, "PBX_RSYNC OK - rsyncd "+f.addr()+" protocol 31: listed: pbx voicemail | ") {
		t.Errorf("%d %q", code, first)
	}
	b.Reset()
	code = plugin.Execute(Spec(), []string{"--role", "any", "-H", "127.0.0.1", "--canary"}, &b)
	if want := "PBX_RSYNC UNKNOWN - usage: --canary needs a module: give -m/--module or set [sync] rsync_module in /etc/pbxha/cluster.toml\n"; code != 3 || b.String() != want {
		t.Errorf("%d %q, want %q", code, b.String(), want)
	}
}
