package rsyncd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"pbxha/lib/rsyncd/rsyncdtest"
)

// Against a real rsync daemon on loopback: the listing, every daemon-auth
// digest (each one the daemon verifies with its own code), the legacy
// fallbacks of older clients, refusals and the canary.

func TestRealDaemonListing(t *testing.T) {
	d := rsyncdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := List(ctx, Options{Addr: d.Addr})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range l.Modules {
		names = append(names, m.Name)
	}
	if strings.Join(names, " ") != "open auth ro" {
		t.Errorf("modules %q, want open auth ro (hidden is not listed)", names)
	}
	if l.Greeting.Protocol < 30 || l.Protocol != min(l.Greeting.Protocol, ClientProtocol) || l.Modules[0].Comment != "writable, no password" {
		t.Errorf("listing %+v", l)
	}
}

func TestRealDaemonLogin(t *testing.T) {
	d := rsyncdtest.Start(t)
	cred := &Credentials{User: rsyncdtest.User, Password: rsyncdtest.Password}
	cases := []struct {
		name   string
		o      Options
		digest string
	}{
		{"default list", Options{}, DigestSHA512},
		{"sha256", Options{Digests: []string{"sha256"}}, DigestSHA256},
		{"sha1", Options{Digests: []string{"sha1"}}, DigestSHA1},
		{"md5", Options{Digests: []string{"md5"}}, DigestMD5},
		{"md4", Options{Digests: []string{"md4"}}, DigestMD4},
		// Clients before rsync 3.2.7 send no digest list.
		{"protocol 31, no list", Options{Protocol: 31, NoDigests: true}, DigestMD5},
		{"protocol 30, no list", Options{Protocol: 30, NoDigests: true}, DigestMD5},
		{"protocol 29, no list", Options{Protocol: 29, NoDigests: true}, DigestMD4Old},
		{"protocol 27, no list", Options{Protocol: 27, NoDigests: true}, DigestMD4Old},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			o := tc.o
			o.Addr = d.Addr
			a, err := Open(ctx, o, "auth", cred)
			if err != nil || !a.Exists || !a.AuthRequired || !a.Authenticated || a.Digest != tc.digest {
				t.Fatalf("%+v %v; want authenticated with %s", a, err, tc.digest)
			}
			var ae *AuthError
			if _, err := Open(ctx, o, "auth", &Credentials{User: rsyncdtest.User, Password: "wrong-pass"}); !errors.As(err, &ae) ||
				ae.Error() != "auth rejected for user pbxsync on module auth: auth failed on module auth" {
				t.Fatalf("wrong password: %v", err)
			}
		})
	}
}

func TestRealDaemonModules(t *testing.T) {
	d := rsyncdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := Options{Addr: d.Addr}
	var ue *UnknownModuleError
	if _, err := Open(ctx, o, "nosuch", nil); !errors.As(err, &ue) || ue.Message != "Unknown module 'nosuch'" {
		t.Errorf("nosuch: %v", err)
	}
	if a, err := Open(ctx, o, "hidden", nil); err != nil || !a.Exists || a.AuthRequired {
		t.Errorf("hidden: %+v %v", a, err)
	}
	// Without a password the session stops at the challenge.
	if a, err := Open(ctx, o, "auth", nil); err != nil || !a.Exists || !a.AuthRequired || a.Authenticated {
		t.Errorf("auth without a password: %+v %v", a, err)
	}
}

func TestRealDaemonCheck(t *testing.T) {
	d := rsyncdtest.Start(t)
	pw := d.PasswordFile(t, rsyncdtest.Password)
	wrong := d.PasswordFile(t, "wrong-pass")
	if err := os.WriteFile(filepath.Join(d.ModuleDir("ro"), CanaryName), []byte("put there by the master\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"-H", "127.0.0.1", "-p", strconv.Itoa(d.Port), "-u", rsyncdtest.User}
	a := regexp.QuoteMeta(d.Addr)
	cases := []struct {
		name  string
		args  []string
		code  int
		first string
		long  string
	}{
		{"listed", []string{"-m", "open", "-m", "auth", "--no-auth"}, 0,
			`^PBX_RSYNC OK - rsyncd ` + a + ` protocol [0-9]+: module open listed, module auth listed \| connect_time=[0-9.]+s;1;3;0 protocol=[0-9]+$`, "module ro: read-only, password"},
		{"login", []string{"-m", "auth", "-m", "open", "--password-file", pw}, 0,
			`^PBX_RSYNC OK - rsyncd ` + a + ` protocol [0-9]+: module auth accepts user pbxsync, module open listed, open without a password \| `, "module auth: password accepted (sha512)"},
		{"hidden module", []string{"-m", "hidden"}, 0, `^PBX_RSYNC OK - rsyncd ` + a + ` protocol [0-9]+: module hidden exists \(not listed\) \| `, ""},
		{"missing module", []string{"-m", "auth", "-m", "nosuch"}, 2,
			`^PBX_RSYNC CRITICAL - rsyncd ` + a + ` protocol [0-9]+: module auth listed, module nosuch not found \(listed: open auth ro\) \| `, ""},
		{"password rejected", []string{"-m", "auth", "--password-file", wrong}, 2,
			`^PBX_RSYNC CRITICAL - rsyncd ` + a + ` protocol [0-9]+: module auth: password rejected for user pbxsync \(auth failed on module auth\) \| `, ""},
		{"canary written and read back", []string{"-m", "auth", "--password-file", pw, "--canary", "--canary-warning", "5"}, 0,
			`^PBX_RSYNC OK - rsyncd ` + a + ` protocol [0-9]+: module auth listed, canary written and read back in [0-9.]+s \| connect_time=[0-9.]+s;1;3;0 protocol=[0-9]+ transfer_time=[0-9.]+s;5;;0$`, "canary .pbxha-canary: "},
		{"canary into a read-only module reads the one there", []string{"-m", "ro", "--password-file", pw, "--canary"}, 0,
			`^PBX_RSYNC OK - rsyncd ` + a + ` protocol [0-9]+: module ro listed, canary read from the read-only module in [0-9.]+s \| .* transfer_time=[0-9.]+s;;;0$`, "canary .pbxha-canary: 24 bytes"},
		{"canary with a wrong password", []string{"-m", "auth", "--password-file", wrong, "--canary"}, 2,
			`^PBX_RSYNC CRITICAL - rsyncd ` + a + ` protocol [0-9]+: module auth listed, canary: auth rejected for user pbxsync on module auth: auth failed on module auth \| .* transfer_time=U;;;0$`, ""},
		{"canary without a password", []string{"-m", "auth", "--canary"}, 2,
			`^PBX_RSYNC CRITICAL - .*canary: auth rejected for user pbxsync on module auth: auth failed on module auth \(no password was given\) \| `, ""},
		{"canary into a missing module is not tried", []string{"-m", "nosuch", "--canary"}, 2,
			`^PBX_RSYNC CRITICAL - rsyncd ` + a + ` protocol [0-9]+: module nosuch not found \(listed: open auth ro\) \| connect_time=[0-9.]+s;1;3;0 protocol=[0-9]+$`, ""},
		{"canary with a missing rsync binary", []string{"-m", "open", "--canary", "--rsync-binary", "/nonexistent/rsync"}, 2,
			`^PBX_RSYNC CRITICAL - .*canary: --canary needs the rsync binary: `, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, first, out := run(t, "", append(append([]string{}, base...), tc.args...)...)
			t.Logf("%s", first)
			if code != tc.code || !regexp.MustCompile(tc.first).MatchString(first) {
				t.Fatalf("exit %d, first line\n%q\nwant exit %d and %s\n%s", code, first, tc.code, tc.first, out)
			}
			if tc.long != "" && !strings.Contains(out, tc.long) {
				t.Errorf("output lacks %q:\n%s", tc.long, out)
			}
		})
	}
	// The canary landed in the module, and the read-only one was left alone.
	if b, err := os.ReadFile(filepath.Join(d.ModuleDir("auth"), CanaryName)); err != nil || !strings.HasPrefix(string(b), "pbxha canary from ") {
		t.Errorf("canary in module auth: %q %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(d.ModuleDir("ro"), CanaryName)); string(b) != "put there by the master\n" {
		t.Errorf("the read-only module's canary changed: %q", b)
	}
	// A read-only module without a canary.
	if err := os.Remove(filepath.Join(d.ModuleDir("ro"), CanaryName)); err != nil {
		t.Fatal(err)
	}
	code, first, out := run(t, "", append(append([]string{}, base...), "-m", "ro", "--password-file", pw, "--canary")...)
	if code != 2 || !strings.Contains(first, "canary: the module is read-only and holds no .pbxha-canary to read back") {
		t.Errorf("read-only without a canary: %d %q\n%s", code, first, out)
	}
}

// The canary's rsync is killed at the deadline with its process group,
// and the check still reports by -t.
func TestCanaryKilledAtDeadline(t *testing.T) {
	d := rsyncdtest.Start(t)
	dir := t.TempDir()
	slow := filepath.Join(dir, "rsync")
	pidFile := filepath.Join(dir, "pid")
	// A stand-in that never finishes, with a child of its own.
	script := "#!/bin/sh\nsleep 30 &\necho $! > " + pidFile + "\nwait\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, first, out := run(t, "", "-H", "127.0.0.1", "-p", strconv.Itoa(d.Port), "-m", "open", "--canary", "--rsync-binary", slow, "-t", "2")
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %v with -t 2", el)
	}
	if code != 2 || !regexp.MustCompile(`^PBX_RSYNC CRITICAL - rsyncd .* canary: writing \.pbxha-canary to module open with rsync: no answer within 1\.[0-9]s`).MatchString(first) {
		t.Fatalf("%d %q\n%s", code, first, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in's child is gone too (or a zombie waiting for init).
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canary's child %s still runs: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
