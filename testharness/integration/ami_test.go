package integration

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	libami "pbxha/lib/ami"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/testharness/ami"
	"pbxha/testharness/lab"
	"pbxha/testharness/labtest"
)

// amiMatch asserts exit code and a regexp over the first line, plus what
// every plugin run must satisfy (helpers' expect), and that the secret
// never shows.
func amiMatch(t *testing.T, r Run, code int, first, secret string) {
	t.Helper()
	t.Logf("%s", r.First)
	expect(t, r, code, "PBX_AMI ")
	if !regexp.MustCompile(first).MatchString(r.First) {
		t.Fatalf("first line %q does not match %s\n%s", r.First, first, r.Out)
	}
	if secret != "" && strings.Contains(r.Out, secret) {
		t.Fatalf("the secret appears in the output:\n%s", r.Out)
	}
}

// TestAMILab runs check_pbx_ami inside the lab against the AMI endpoint on
// node1 (the master), through its own cluster.toml, over the VIP and the
// node address from infra, and through every fault the endpoint has.
func TestAMILab(t *testing.T) {
	l := useLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	creds := l.Creds()
	if creds.AMIUser == "" || creds.AMISecret == "" {
		t.Fatal("the lab has no AMI credentials")
	}
	cfg, err := config.Load(l.ConfigPath(lab.Node1), true)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := cfg.AMI.Secret.File
	if secretFile == "" {
		t.Fatalf("node1's cluster.toml keeps the AMI secret inline; want a file")
	}
	// The binary inherits the test's environment (runIn).
	t.Setenv("PBXHA_CONFIG", "")
	t.Setenv(libami.SecretEnv, creds.AMISecret)
	node1 := regexp.QuoteMeta(lab.Hosts[0].TelIP + ":5038")
	direct := []string{"check_pbx_ami", "--role", "any", "-H", lab.Hosts[0].TelIP, "-u", creds.AMIUser, "-t", "2"}

	t.Run("master through its cluster.toml", func(t *testing.T) {
		r := runIn(t, l, lab.Node1, "check_pbx_ami", "--config", l.ConfigPath(lab.Node1), "-vvv")
		amiMatch(t, r, 0, `^PBX_AMI OK - AMI 9\.0\.0 at 127\.0\.0\.1:5038: ping [0-9.]+ ms, \d+ active calls?, up .* \| connect_time=[0-9.]+ms;;;0 login_time=[0-9.]+ms;;;0 ping_time=[0-9.]+ms;500;2000;0 calls=\d+;;;0 uptime=\d+s;;;0$`, creds.AMISecret)
		if !strings.Contains(r.Out, "Secret: [secret]") {
			t.Errorf("-vvv does not show the masked login:\n%s", r.Out)
		}
	})
	t.Run("slave skips", func(t *testing.T) {
		r := runIn(t, l, lab.Node2, "check_pbx_ami", "--config", l.ConfigPath(lab.Node2))
		amiMatch(t, r, 0, `^PBX_AMI OK - skipped: node is slave \(applies to master\)$`, "")
	})
	t.Run("over the VIP from infra, MD5 login, secret file", func(t *testing.T) {
		r := runIn(t, l, lab.Infra, "check_pbx_ami", "--role", "any", "-H", lab.VIP, "-u", creds.AMIUser,
			"--secret-file", secretFile, "--md5", "--calls-critical", "0:1000")
		amiMatch(t, r, 0, `^PBX_AMI OK - AMI 9\.0\.0 at 192\.0\.2\.10:5038: `, creds.AMISecret)
	})
	t.Run("bad secret", func(t *testing.T) {
		t.Setenv(libami.SecretEnv, "not-the-"+creds.AMISecret)
		r := runIn(t, l, lab.Infra, append(direct, "-vvv")...)
		amiMatch(t, r, 2, `^PBX_AMI CRITICAL - login rejected for user `+regexp.QuoteMeta(creds.AMIUser)+`: Authentication failed \| connect_time=`, "not-the-"+creds.AMISecret)
	})

	faults := []struct {
		mode  string
		first string
	}{
		{"refuse-login", `^PBX_AMI CRITICAL - login rejected for user ` + regexp.QuoteMeta(creds.AMIUser) + `: Authentication failed \|`},
		{"no-greeting", `^PBX_AMI CRITICAL - waiting for the greeting from ` + node1 + `: no answer within 1\.[5-6]s \| connect_time=`},
		{"stall-mid-response", `^PBX_AMI CRITICAL - waiting for the Ping response from ` + node1 + `: stopped mid-message after \d+ bytes, nothing more within [0-9.]+s \| connect_time=[0-9.]+ms;;;0 login_time=`},
		{"garbage", `^PBX_AMI CRITICAL - waiting for the greeting from ` + node1 + `: not an Asterisk manager greeting: ".+" \| connect_time=`},
		{"none", `^PBX_AMI OK - AMI 9\.0\.0 at ` + node1 + `: `},
	}
	for _, f := range faults {
		t.Run("fault "+f.mode, func(t *testing.T) {
			if err := l.Fault(ctx, "ami", lab.Node1, f.mode); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			r := runIn(t, l, lab.Infra, direct...)
			amiMatch(t, r, map[bool]int{true: 0, false: 2}[f.mode == "none"], f.first, creds.AMISecret)
			if took := time.Since(begin); took > 3*time.Second {
				t.Errorf("took %s with -t 2", took)
			}
		})
	}

	t.Run("endpoint killed: refused", func(t *testing.T) {
		if err := l.Fault(ctx, "kill", lab.Node1, "ami"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.Fault(ctx, "start", lab.Node1, "ami"); err != nil {
				t.Errorf("restarting the AMI endpoint: %v", err)
			}
		}()
		r := runIn(t, l, lab.Infra, direct...)
		amiMatch(t, r, 2, `^PBX_AMI CRITICAL - connecting to `+node1+`: connection refused$`, "")
	})
	t.Run("node1 cut off: unreachable", func(t *testing.T) {
		if err := l.Fault(ctx, "link-down", lab.Node1, "tel"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := l.Fault(ctx, "link-up", lab.Node1, "tel"); err != nil {
				t.Errorf("link-up: %v", err)
			}
		}()
		begin := time.Now()
		r := runIn(t, l, lab.Infra, direct...)
		amiMatch(t, r, 2, `^PBX_AMI CRITICAL - connecting to `+node1+`: (no answer within 1\.[5-6]s|host unreachable)$`, "")
		if took := time.Since(begin); took > 3*time.Second {
			t.Errorf("took %s with -t 2", took)
		}
	})
}

// TestAMIEndpointLoopback runs the built binary against the lab's AMI
// endpoint code (package testharness/ami) on 127.0.0.1, with Asterisk's
// real 1 s delay before a refused login, background events and every
// fault mode. It needs no lab, so it runs everywhere.
func TestAMIEndpointLoopback(t *testing.T) {
	const user, secret = "monitor", "loopback-S3cret"
	srv := ami.New(ami.Config{Addr: "127.0.0.1:0", Users: map[string]string{user: secret}, SystemName: "loopback"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); srv.Close() })
	if err := srv.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	host, port, _ := strings.Cut(addr, ":")
	checkBin := bin(t, "check_pbx_ami")
	quoted := regexp.QuoteMeta(addr)

	run := func(t *testing.T, secretEnv string, args ...string) Run {
		t.Helper()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, checkBin, append([]string{"--role", "any", "-H", host, "-p", port, "-u", user}, args...)...)
		cmd.Env = append(os.Environ(), "PBXHA_CONFIG=", libami.SecretEnv+"="+secretEnv)
		r := labtest.Collect(cmd)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if _, perf, ok := strings.Cut(r.First, " | "); ok {
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Fatalf("perfdata %q: %v", perf, err)
			}
		}
		return r
	}

	tests := []struct {
		name   string
		fault  ami.Fault
		core   *ami.CoreState
		secret string
		args   []string
		code   int
		first  string
	}{
		{"healthy", ami.FaultNone, nil, secret, []string{"-vvv"}, 0,
			`^PBX_AMI OK - AMI 9\.0\.0 at ` + quoted + `: ping [0-9.]+ ms, 0 active calls, up .* \| connect_time=[0-9.]+ms;;;0 login_time=[0-9.]+ms;;;0 ping_time=[0-9.]+ms;500;2000;0 calls=0;;;0 uptime=\d+s;;;0$`},
		{"busy and just restarted", ami.FaultNone, &ami.CoreState{CurrentCalls: 42, ProcessedCalls: 7, StartupTime: time.Now().Add(-2 * time.Minute)}, secret,
			[]string{"--calls-warning", "30", "--calls-critical", "40", "--min-uptime", "10m"}, 2,
			`^PBX_AMI CRITICAL - AMI 9\.0\.0 at ` + quoted + `: ping [0-9.]+ ms, 42 active calls \(critical > 40\), restarted 2m \d+s ago \(warning < --min-uptime 10m 0s\) \| .* calls=42;30;40;0 uptime=1\d\ds;600:;;0$`},
		{"md5 login", ami.FaultNone, nil, secret, []string{"--md5"}, 0, `^PBX_AMI OK - AMI 9\.0\.0 at `},
		{"wrong secret, after Asterisk's 1 s delay", ami.FaultNone, nil, "wrong-" + secret, []string{"-vvv"}, 2,
			`^PBX_AMI CRITICAL - login rejected for user monitor: Authentication failed \| connect_time=[0-9.]+ms;;;0$`},
		{"refuse-login", ami.FaultRefuseLogin, nil, secret, nil, 2, `^PBX_AMI CRITICAL - login rejected for user monitor: Authentication failed`},
		{"no-greeting", ami.FaultNoGreeting, nil, secret, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from ` + quoted + `: no answer within 0\.8s \| connect_time=`},
		{"no-greeting, -t 1:warning", ami.FaultNoGreeting, nil, secret, []string{"-t", "1:warning"}, 1,
			`^PBX_AMI WARNING - waiting for the greeting from ` + quoted + `: no answer within 0\.8s`},
		{"stall-mid-response", ami.FaultStallMidResponse, nil, secret, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the Ping response from ` + quoted + `: stopped mid-message after \d+ bytes, nothing more within 0\.8s \| connect_time=[0-9.]+ms;;;0 login_time=`},
		{"garbage", ami.FaultGarbage, nil, secret, nil, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from ` + quoted + `: not an Asterisk manager greeting: ".+" \| connect_time=`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetFault(tc.fault)
			defer srv.SetFault(ami.FaultNone)
			if tc.core != nil {
				old := srv.Core()
				srv.SetCore(*tc.core)
				defer srv.SetCore(old)
			}
			begin := time.Now()
			r := run(t, tc.secret, tc.args...)
			if r.Stderr != "" || r.Code != tc.code || !regexp.MustCompile(tc.first).MatchString(r.First) {
				t.Fatalf("exit %d, first line %q, stderr %q; want exit %d and %s\n%s", r.Code, r.First, r.Stderr, tc.code, tc.first, r.Out)
			}
			if strings.Contains(r.Out, tc.secret) {
				t.Fatalf("the secret appears in the output:\n%s", r.Out)
			}
			if took := time.Since(begin); took > 10*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}
