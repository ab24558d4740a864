package integration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"pbxha/lib/rsyncd"
	"pbxha/testharness/lab"
	"pbxha/testharness/netnsdial"
)

// rsyncMatch asserts exit code and a regexp over the first line, plus what
// every plugin run must satisfy (helpers' expect), and that the password
// never shows.
func rsyncMatch(t *testing.T, r Run, code int, first, secret string) {
	t.Helper()
	t.Logf("%s", r.First)
	expect(t, r, code, "PBX_RSYNC ")
	if !regexp.MustCompile(first).MatchString(r.First) {
		t.Fatalf("first line %q does not match %s\n%s", r.First, first, r.Out)
	}
	if secret != "" && strings.Contains(r.Out, secret) {
		t.Fatalf("the password appears in the output:\n%s", r.Out)
	}
}

// TestRsyncLab runs check_pbx_rsync on node2 (the slave, the master's push
// target) against its rsyncd on the cluster IP, through its cluster.toml:
// healthy, with the canary, a wrong module, a wrong password, a tarpit
// port and the daemon killed.
func TestRsyncLab(t *testing.T) {
	l := useLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	creds := l.Creds()
	if creds.RsyncUser == "" || creds.RsyncPassword == "" {
		t.Fatal("the lab has no rsync credentials")
	}
	// The binary inherits the test's environment (runIn).
	t.Setenv("PBXHA_CONFIG", "")
	t.Setenv(rsyncd.PasswordEnv, "")
	node2 := lab.Hosts[1].ClusterIP
	addr := regexp.QuoteMeta(net.JoinHostPort(node2, "873"))
	cfg2 := l.ConfigPath(lab.Node2)
	check := func(args ...string) Run {
		t.Helper()
		return runIn(t, l, lab.Node2, append([]string{"check_pbx_rsync", "--config", cfg2}, args...)...)
	}
	// The canary lands in node2's synced directory; leave nothing for the
	// file-sync checks to find.
	canary := filepath.Join(l.SyncDir(lab.Node2), rsyncd.CanaryName)
	t.Cleanup(func() { os.Remove(canary) })

	t.Run("slave: module pbx, login", func(t *testing.T) {
		r := check("-v")
		rsyncMatch(t, r, 0, `^PBX_RSYNC OK - rsyncd `+addr+` protocol 32: module pbx accepts user `+regexp.QuoteMeta(creds.RsyncUser)+` \| connect_time=[0-9.]+s;1;3;0 protocol=32$`, creds.RsyncPassword)
		if !strings.Contains(r.Out, "module pbx: password accepted (sha512)") {
			t.Errorf("long output lacks the login:\n%s", r.Out)
		}
	})
	t.Run("slave: canary", func(t *testing.T) {
		r := check("--canary", "--canary-critical", "10")
		rsyncMatch(t, r, 0, `^PBX_RSYNC OK - rsyncd `+addr+` protocol 32: module pbx listed, canary written and read back in [0-9.]+s \| connect_time=[0-9.]+s;1;3;0 protocol=32 transfer_time=[0-9.]+s;;10;0$`, creds.RsyncPassword)
		b, err := os.ReadFile(canary)
		if err != nil || !strings.HasPrefix(string(b), "pbxha canary from ") {
			t.Fatalf("no canary in node2's sync dir: %q %v", b, err)
		}
	})
	t.Run("master skips", func(t *testing.T) {
		r := runIn(t, l, lab.Node1, "check_pbx_rsync", "--config", l.ConfigPath(lab.Node1))
		rsyncMatch(t, r, 0, `^PBX_RSYNC OK - skipped: node is master \(applies to slave\)$`, "")
	})
	t.Run("the master's view of the slave's daemon", func(t *testing.T) {
		r := runIn(t, l, lab.Node1, "check_pbx_rsync", "--config", l.ConfigPath(lab.Node1), "--role", "any", "-H", node2)
		rsyncMatch(t, r, 0, `^PBX_RSYNC OK - rsyncd `+addr+` protocol 32: module pbx accepts user `, creds.RsyncPassword)
	})
	t.Run("wrong module", func(t *testing.T) {
		r := check("-m", "nosuch")
		rsyncMatch(t, r, 2, `^PBX_RSYNC CRITICAL - rsyncd `+addr+` protocol 32: module nosuch not found \(listed: pbx\) \| connect_time=`, "")
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Setenv(rsyncd.PasswordEnv, "not-the-"+creds.RsyncPassword)
		r := check()
		rsyncMatch(t, r, 2, `^PBX_RSYNC CRITICAL - rsyncd `+addr+` protocol 32: module pbx: password rejected for user `+regexp.QuoteMeta(creds.RsyncUser)+` \(auth failed on module pbx\) \| `, "not-the-"+creds.RsyncPassword)
	})
	t.Run("tarpit port", func(t *testing.T) {
		ln, err := netnsdial.Listen(lab.Netns(lab.Node2), "tcp", net.JoinHostPort(node2, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			// Accept and say nothing; the connections close with ln's test.
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		tarpit := regexp.QuoteMeta(net.JoinHostPort(node2, port))
		for _, tc := range []struct {
			t     string
			code  int
			state string
		}{{"2", 2, "CRITICAL"}, {"2:unknown", 3, "UNKNOWN"}} {
			start := time.Now()
			r := check("-p", port, "-t", tc.t)
			rsyncMatch(t, r, tc.code, `^PBX_RSYNC `+tc.state+` - waiting for the greeting from `+tarpit+`: no answer within 1\.6s$`, "")
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("-t %s: took %v", tc.t, el)
			}
		}
	})
	t.Run("daemon killed", func(t *testing.T) {
		if err := l.Fault(ctx, "kill", lab.Node2, "rsyncd"); err != nil {
			t.Fatal(err)
		}
		r := check()
		rsyncMatch(t, r, 2, `^PBX_RSYNC CRITICAL - connecting to `+addr+`: connection refused$`, "")
		r = check("--canary")
		rsyncMatch(t, r, 2, `^PBX_RSYNC CRITICAL - connecting to `+addr+`: connection refused$`, "")
		if err := l.Fault(ctx, "start", lab.Node2, "rsyncd"); err != nil {
			t.Fatal(err)
		}
		rsyncMatch(t, check(), 0, `^PBX_RSYNC OK - `, "")
	})
}
