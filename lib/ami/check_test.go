package ami

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

const testSecret = "Sup3r-S3cret!x"

// run executes check_pbx_ami in-process with an empty cluster.toml (so a
// file on the test machine cannot leak in) and the secret in the
// environment. It checks what every output must satisfy.
func run(t *testing.T, args ...string) (code int, first, out string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PBXHA_CONFIG", cfg)
	if os.Getenv(SecretEnv) == "" {
		t.Setenv(SecretEnv, testSecret)
	}
	var b bytes.Buffer
	code = plugin.Execute(Spec(), append([]string{"--role", "any"}, args...), &b)
	out = b.String()
	first, _, _ = strings.Cut(out, "\n")
	if !regexp.MustCompile(`^PBX_AMI (OK|WARNING|CRITICAL|UNKNOWN)( - [^|\n]*)?( \| .*)?$`).MatchString(first) {
		t.Errorf("first line %q is not plugin output", first)
	}
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("perfdata %q: %v", perf, err)
		}
	}
	if strings.Contains(out, testSecret) {
		t.Errorf("the secret appears in the output:\n%s", out)
	}
	return code, first, out
}

func args(f *fake, more ...string) []string {
	return append([]string{"-H", "127.0.0.1", "-p", f.port(), "-u", "monitor"}, more...)
}

func perfLabels(first string) []string {
	_, perf, _ := strings.Cut(first, " | ")
	items, _ := plugin.SplitPerfdata(perf)
	var out []string
	for _, it := range items {
		l, _, _ := strings.Cut(it, "=")
		out = append(out, l)
	}
	return out
}

func TestHealthyAcrossVersions(t *testing.T) {
	started := time.Now().Add(-50 * time.Hour)
	now := time.Now()
	tests := []struct {
		name   string
		script []act
		want   string
	}{
		{"asterisk 13: login with Message, FullyBooted", healthy(greeting13, loginOK, fullyBooted13, "", 3, started),
			"AMI 2.10.6 at 127.0.0.1:%s: ping "},
		{"asterisk 18: login without Message", healthy(greeting18, loginOKNoMessage, "", "", 3, started),
			"AMI 7.0.3 at 127.0.0.1:%s: ping "},
		{"asterisk 20: events before every response", healthy(greeting20, loginOK, fullyBooted20+peerStatus, peerStatus+oddEvent+otherResponse, 3, started),
			"AMI 9.0.0 at 127.0.0.1:%s: ping "},
		{"ping answered with a Message header", []act{
			send(greeting20), expect("Login"), send(loginOK),
			expect("Ping"), send("Response: Success\r\nActionID: $ID\r\nMessage: Pong\r\nPing: Pong\r\nTimestamp: 1700000000.000001\r\n\r\n"),
			expect("CoreStatus"), send(coreStatus(3, started, started)),
			expect("Logoff"), send(goodbye)}, "AMI 9.0.0"},
		{"asterisk 1.4's Response: Pong", []act{
			send("Asterisk Call Manager/1.0\r\n"), expect("Login"), send(loginOK),
			expect("Ping"), send("Response: Pong\r\nActionID: $ID\r\n\r\n"),
			expect("CoreStatus"), send(coreStatus(3, started, started)),
			expect("Logoff"), send(goodbye)}, "AMI 1.0"},
		{"greeting split across two writes", []act{
			sendSplit(greeting20, 9, 80*time.Millisecond), expect("Login"), send(loginOK),
			expect("Ping"), send(pong(now)), expect("CoreStatus"), send(coreStatus(3, started, started)),
			expect("Logoff"), send(goodbye)}, "AMI 9.0.0"},
		{"login response and FullyBooted split mid-line", []act{
			send(greeting20), expect("Login"), sendSplit(loginOK+fullyBooted20, 12, 50*time.Millisecond),
			expect("Ping"), sendSplit(peerStatus+pong(now), len(peerStatus)+3, 50*time.Millisecond),
			expect("CoreStatus"), send(coreStatus(3, started, started)),
			expect("Logoff"), send(goodbye)}, "AMI 9.0.0"},
		{"bare LF line ends and blank lines between messages", []act{
			send("Asterisk Call Manager/9.0.0\n"), expect("Login"), send("\r\nResponse: Success\nActionID: $ID\n\n\n"),
			expect("Ping"), send(strings.ReplaceAll(pong(now), "\r\n", "\n")),
			expect("CoreStatus"), send(coreStatus(3, started, started)),
			expect("Logoff")}, "AMI 9.0.0"},
		{"no Goodbye to the logoff", []act{
			send(greeting20), expect("Login"), send(loginOK), expect("Ping"), send(pong(now)),
			expect("CoreStatus"), send(coreStatus(3, started, started)), expect("Logoff"), hang()}, "AMI 9.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, tc.script...)
			code, first, out := run(t, args(f, "-t", "3")...)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = strings.ReplaceAll(want, "%s", f.port())
			}
			if code != 0 || !strings.HasPrefix(first, "PBX_AMI OK - "+want) || !strings.Contains(first, "3 active calls") {
				t.Fatalf("exit %d, first line %q, want OK - %s ...\n%s", code, first, want, out)
			}
			if got := strings.Join(perfLabels(first), " "); got != "connect_time login_time ping_time calls uptime" {
				t.Errorf("perfdata labels %q", got)
			}
			f.waitGone(t)
			reqs := f.requests()
			if len(reqs) < 3 {
				t.Fatalf("server got %d requests", len(reqs))
			}
			login := reqs[0]
			if login.get("Username") != "monitor" || login.get("Secret") != testSecret || !strings.EqualFold(login.get("Events"), "off") {
				t.Errorf("login request %q", login.raw)
			}
			ids := map[string]bool{}
			for _, r := range reqs {
				if id := r.get("ActionID"); id == "" || ids[id] {
					t.Errorf("ActionID %q missing or reused: %q", id, r.raw)
				} else {
					ids[id] = true
				}
			}
		})
	}
}

func TestUptimeCallsAndPingThresholds(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		calls   int
		started time.Time
		delay   time.Duration // before the Ping response
		args    []string
		code    int
		want    string
		perf    string
	}{
		{"uptime 50h", 3, now.Add(-50 * time.Hour), 0, nil, 0, "3 active calls, up 2d 2h", "uptime=180000s;;;0"},
		{"one call", 1, now.Add(-50 * time.Hour), 0, nil, 0, "1 active call, up", "calls=1;;;0"},
		{"calls critical", 42, now.Add(-time.Hour), 0, []string{"--calls-warning", "30", "--calls-critical", "40"}, 2,
			"42 active calls (critical > 40)", "calls=42;30;40;0"},
		{"calls warning", 35, now.Add(-time.Hour), 0, []string{"--calls-warning", "30", "--calls-critical", "40"}, 1,
			"35 active calls (warning > 30)", "calls=35;30;40;0"},
		{"recent restart", 0, now.Add(-2 * time.Minute), 0, []string{"--min-uptime", "10m"}, 1,
			"restarted 2m 0s ago (warning < --min-uptime 10m 0s)", "uptime=120s;600:;;0"},
		{"uptime above minimum", 0, now.Add(-2 * time.Hour), 0, []string{"--min-uptime", "600"}, 0,
			"up 2h 0m", "uptime=7200s;600:;;0"},
		{"slow ping warning", 0, now.Add(-time.Hour), 150 * time.Millisecond, []string{"-w", "100", "-c", "1000"}, 1,
			"(warning > 100)", ";100;1000;0"},
		{"slow ping critical", 0, now.Add(-time.Hour), 150 * time.Millisecond, []string{"-w", "50", "-c", "100"}, 2,
			"(critical > 100)", ";50;100;0"},
		{"startup in the future: uptime unknown", 0, now.Add(3 * time.Hour), 0, nil, 0, "0 active calls", "uptime=U;;;0"},
		{"startup in the future with --min-uptime", 0, now.Add(3 * time.Hour), 0, []string{"--min-uptime", "10m"}, 3,
			"uptime unknown, --min-uptime cannot be checked", "uptime=U;600:;;0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, send(greeting20), expect("Login"), send(loginOK),
				expect("Ping"), act{pause: tc.delay, send: pong(now)},
				expect("CoreStatus"), send(coreStatus(tc.calls, tc.started, tc.started)),
				expect("Logoff"), send(goodbye))
			code, first, out := run(t, args(f, tc.args...)...)
			if code != tc.code || !strings.Contains(first, tc.want) || !strings.Contains(first, tc.perf) {
				t.Fatalf("exit %d, first line %q; want exit %d, %q and perfdata %q\n%s", code, first, tc.code, tc.want, tc.perf, out)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		return p
	}
	tests := []struct {
		name    string
		script  []act
		args    []string
		code    int
		want    string // regexp over the first line
		perf    string
		maxTime time.Duration
	}{
		{"login rejected after Asterisk's 1 s delay", []act{send(greeting20), expect("Login"), act{pause: time.Second, send: loginFailed}, hangUp()},
			[]string{"-t", "4"}, 2, `^PBX_AMI CRITICAL - login rejected for user monitor: Authentication failed \| connect_time=[0-9.]+ms;;;0$`, "connect_time", 3 * time.Second},
		{"no greeting", []act{hang()}, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from 127\.0\.0\.1:\d+: no answer within 0\.8s \|`, "connect_time", 1500 * time.Millisecond},
		{"no greeting, -t with state", []act{hang()}, []string{"-t", "1:unknown"}, 3,
			`^PBX_AMI UNKNOWN - waiting for the greeting from 127\.0\.0\.1:\d+: no answer`, "connect_time", 1500 * time.Millisecond},
		{"half a greeting, then silence", []act{send("Asterisk Call Man"), hang()}, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from 127\.0\.0\.1:\d+: stopped mid-message after 17 bytes, nothing more within 0\.8s`, "connect_time", 1500 * time.Millisecond},
		{"stall mid-response", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"),
			send(pong(time.Now())[:30]), hang()}, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the Ping response from 127\.0\.0\.1:\d+: stopped mid-message after 30 bytes, nothing more within 0\.8s`,
			"connect_time login_time", 1500 * time.Millisecond},
		{"stall in CoreStatus", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"), send(pong(time.Now())),
			expect("CoreStatus"), hang()}, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the CoreStatus response from 127\.0\.0\.1:\d+: no answer within 0\.8s`,
			"connect_time login_time ping_time", 1500 * time.Millisecond},
		{"only events, never the response", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"),
			send(peerStatus), pause(200 * time.Millisecond), send(peerStatus + otherResponse), hang()}, []string{"-t", "1"}, 2,
			`^PBX_AMI CRITICAL - waiting for the Ping response from 127\.0\.0\.1:\d+: no answer within 0\.8s`, "connect_time login_time", 1500 * time.Millisecond},
		{"garbage instead of a greeting", []act{send("\xff\xfe\x00garbage|with a pipe\r\n"), hang()}, []string{"-t", "5"}, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from 127\.0\.0\.1:\d+: not an Asterisk manager greeting: "\? garbage/with a pipe" \|`, "connect_time", time.Second},
		{"garbage without a line end fails at once", []act{send("\x16\x03\x01\x02\x00"), hang()}, []string{"-t", "5"}, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from 127\.0\.0\.1:\d+: not an Asterisk manager greeting: `, "connect_time", time.Second},
		{"an SSH server", []act{send("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), hang()}, nil, 2,
			`not an Asterisk manager greeting: "SSH-2\.0-OpenSSH_9\.2p1 Debian-2"`, "connect_time", time.Second},
		{"closed before the greeting", []act{hangUp()}, nil, 2,
			`^PBX_AMI CRITICAL - waiting for the greeting from 127\.0\.0\.1:\d+: the server closed the connection \|`, "connect_time", time.Second},
		{"closed after the greeting", []act{send(greeting20), hangUp()}, nil, 2,
			`^PBX_AMI CRITICAL - logging in to 127\.0\.0\.1:\d+ as monitor: the server closed the connection`, "connect_time", time.Second},
		{"closed mid-response", []act{send(greeting20), expect("Login"), send("Response: Succ"), hangUp()}, nil, 2,
			`as monitor: the server closed the connection mid-message`, "connect_time", time.Second},
		{"malformed response", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"), send("Response Success\r\nActionID: $ID\r\n\r\n"), hang()}, nil, 2,
			`^PBX_AMI CRITICAL - waiting for the Ping response from 127\.0\.0\.1:\d+: malformed AMI message: line "Response Success"`, "connect_time login_time", time.Second},
		{"ping refused", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"),
			send("Response: Error\r\nActionID: $ID\r\nMessage: Invalid/unknown command\r\n\r\n"), hang()}, nil, 2,
			`^PBX_AMI CRITICAL - Ping answered "Error": Invalid/unknown command`, "connect_time login_time", time.Second},
		{"CoreStatus not permitted", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"), send(pong(time.Now())),
			expect("CoreStatus"), send("Response: Error\r\nActionID: $ID\r\nMessage: Permission denied\r\n\r\n"),
			expect("Logoff"), send(goodbye)}, nil, 3,
			`^PBX_AMI UNKNOWN - AMI 9\.0\.0 at 127\.0\.0\.1:\d+: ping [0-9.]+ ms, cannot read CoreStatus: CoreStatus answered "Error": Permission denied \(the AMI user needs read = system,reporting in manager\.conf\) \| .* calls=U;;;0 uptime=U;;;0$`,
			"connect_time login_time ping_time calls uptime", time.Second},
		{"CoreStatus without calls", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"), send(pong(time.Now())),
			expect("CoreStatus"), send("Response: Success\r\nActionID: $ID\r\nCoreCurrentCalls: many\r\n\r\n"),
			expect("Logoff"), send(goodbye)}, nil, 3,
			`cannot read CoreStatus: CoreStatus response: CoreCurrentCalls "many" is not a count`, "connect_time login_time ping_time calls uptime", time.Second},
		{"a peer's text cannot break the output", []act{send(greeting20), expect("Login"),
			send("Response: Error\r\nActionID: $ID\r\nMessage: bad | \x1b[31mred\x1b[0m " + strings.Repeat("x", 400) + "\r\n\r\n"), hangUp()}, nil, 2,
			`^PBX_AMI CRITICAL - login rejected for user monitor: bad / \[31mred \[0m x+\.\.\. \| connect_time`, "connect_time", time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, tc.script...)
			begin := time.Now()
			code, first, out := run(t, args(f, tc.args...)...)
			took := time.Since(begin)
			if code != tc.code || !regexp.MustCompile(tc.want).MatchString(first) {
				t.Fatalf("exit %d, first line %q; want exit %d and %s\n%s", code, first, tc.code, tc.want, out)
			}
			if got := strings.Join(perfLabels(first), " "); got != tc.perf {
				t.Errorf("perfdata labels %q, want %q", got, tc.perf)
			}
			if took > tc.maxTime {
				t.Errorf("took %s, want at most %s", took, tc.maxTime)
			}
			f.waitGone(t)
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		code, first, out := run(t, "-H", "127.0.0.1", "-p", closed(), "-u", "monitor")
		if code != 2 || !regexp.MustCompile(`^PBX_AMI CRITICAL - connecting to 127\.0\.0\.1:\d+: connection refused$`).MatchString(first) {
			t.Fatalf("exit %d, %q\n%s", code, first, out)
		}
	})
	t.Run("unresolvable host", func(t *testing.T) {
		code, first, out := run(t, "-H", "no-such-host.invalid", "-u", "monitor", "-t", "3")
		if code != 2 || !strings.HasPrefix(first, "PBX_AMI CRITICAL - connecting to no-such-host.invalid:5038: ") {
			t.Fatalf("exit %d, %q\n%s", code, first, out)
		}
	})
}

// TestSecretNeverShown runs sessions at -vvv, including servers that echo
// the secret back, and looks for it in the output (run fails the test if
// it is there).
func TestSecretNeverShown(t *testing.T) {
	started := time.Now().Add(-time.Hour)
	echo := "Response: Error\r\nActionID: $ID\r\nMessage: Authentication failed for secret " + testSecret + "\r\n\r\n"
	for _, tc := range []struct {
		name   string
		script []act
		args   []string
		want   string
	}{
		{"healthy at -vvv", healthy(greeting20, loginOK, fullyBooted20, peerStatus, 0, started), nil, "PBX_AMI OK"},
		{"rejected, the secret echoed", []act{send(greeting20), expect("Login"), send(echo), hangUp()}, nil,
			"PBX_AMI CRITICAL - login rejected for user monitor: Authentication failed for secret [secret]"},
		{"malformed echo", []act{send(greeting20), expect("Login"), send(testSecret + "\r\n\r\n"), hangUp()}, nil,
			`malformed AMI message: line "[secret]"`},
		{"echo in a Ping error", []act{send(greeting20), expect("Login"), send(loginOK), expect("Ping"),
			send("Response: " + testSecret + "\r\nActionID: $ID\r\nMessage: " + testSecret + "\r\n\r\n"), hangUp()}, nil,
			`Ping answered "[secret]": [secret]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, tc.script...)
			_, first, out := run(t, args(f, "-vvv")...)
			if !strings.Contains(first, tc.want) {
				t.Fatalf("first line %q, want %q\n%s", first, tc.want, out)
			}
			if !strings.Contains(out, "Secret: [secret]") {
				t.Errorf("-vvv does not show the (masked) login:\n%s", out)
			}
		})
	}
}

func TestMD5Login(t *testing.T) {
	started := time.Now().Add(-time.Hour)
	f := startFake(t, send(greeting20),
		expect("Challenge"), send("Response: Success\r\nActionID: $ID\r\nChallenge: 840215739\r\n\r\n"),
		expect("Login"), send(loginOK),
		expect("Ping"), send(pong(time.Now())),
		expect("CoreStatus"), send(coreStatus(2, started, started)),
		expect("Logoff"), send(goodbye))
	code, first, out := run(t, args(f, "--md5", "-vvv")...)
	if code != 0 || !strings.Contains(first, "2 active calls") {
		t.Fatalf("exit %d, %q\n%s", code, first, out)
	}
	f.waitGone(t)
	reqs := f.requests()
	sum := md5.Sum([]byte("840215739" + testSecret))
	if reqs[0].get("AuthType") != "MD5" || reqs[1].get("AuthType") != "MD5" || reqs[1].get("Key") != hex.EncodeToString(sum[:]) {
		t.Errorf("challenge %q, login %q", reqs[0].raw, reqs[1].raw)
	}
	for _, r := range reqs {
		if strings.Contains(r.raw, testSecret) {
			t.Errorf("with --md5 the secret crossed the network: %q", r.raw)
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as a CA file.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, ca
}

func TestTLS(t *testing.T) {
	cfg, ca := selfSigned(t)
	started := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"verified with --ca", []string{"--tls", "--ca", ca}, 0, "PBX_AMI OK - AMI 9.0.0"},
		{"--insecure", []string{"--tls", "--insecure"}, 0, "PBX_AMI OK - AMI 9.0.0"},
		{"unknown CA", []string{"--tls"}, 2, "PBX_AMI CRITICAL - TLS handshake with 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeTLS(t, cfg, healthy(greeting20, loginOK, "", "", 1, started)...)
			code, first, out := run(t, args(f, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.want) {
				t.Fatalf("exit %d, %q\n%s", code, first, out)
			}
			if code == 0 && !strings.Contains(out, "over TLS") {
				t.Errorf("long output does not say TLS:\n%s", out)
			}
			if code == 2 && !strings.Contains(first, "certificate") {
				t.Errorf("the handshake failure does not name the certificate: %q", first)
			}
		})
	}
	t.Run("plain client against TLS", func(t *testing.T) {
		f := startFakeTLS(t, cfg, healthy(greeting20, loginOK, "", "", 1, started)...)
		code, first, out := run(t, args(f, "-t", "1")...)
		if code != 2 || !strings.Contains(first, "waiting for the greeting from 127.0.0.1:") {
			t.Fatalf("exit %d, %q\n%s", code, first, out)
		}
	})
}

// TestConfigAndSecretSources: cluster.toml's [ami] supplies host, port,
// user and secret; $PBXHA_AMI_SECRET overrides the file's secret and
// --secret-file both.
func TestConfigAndSecretSources(t *testing.T) {
	started := time.Now().Add(-time.Hour)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgSecret := write("cfg.secret", "from-config-file\n")
	flagSecret := write("flag.secret", "from-flag-file\r\nsecond line\n")
	for _, tc := range []struct {
		name       string
		env        string
		args       []string
		wantUser   string
		wantSecret string
	}{
		{"all from cluster.toml", "", nil, "cfguser", "from-config-file"},
		{"environment over cluster.toml", "from-env", nil, "cfguser", "from-env"},
		{"--secret-file over both", "from-env", []string{"--secret-file", flagSecret}, "cfguser", "from-flag-file"},
		{"-u over cluster.toml", "", []string{"-u", "flaguser"}, "flaguser", "from-config-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, healthy(greeting20, loginOK, "", "", 1, started)...)
			cfg := write("cluster.toml", "[ami]\nhost = \"127.0.0.1\"\nport = "+f.port()+"\nuser = \"cfguser\"\nsecret = { file = \""+cfgSecret+"\" }\n")
			t.Setenv(SecretEnv, tc.env)
			var b bytes.Buffer
			code := plugin.Execute(Spec(), append([]string{"--role", "any", "--config", cfg}, tc.args...), &b)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, b.String())
			}
			f.waitGone(t)
			login := f.requests()[0]
			if login.get("Username") != tc.wantUser || login.get("Secret") != tc.wantSecret {
				t.Errorf("login %q", login.raw)
			}
			if strings.Contains(b.String(), tc.wantSecret) {
				t.Errorf("secret in output: %s", b.String())
			}
		})
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	noAMI := filepath.Join(dir, "cluster.toml")
	os.WriteFile(noAMI, []byte("[ami]\nuser = \"cfguser\"\n"), 0o600)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"no user", "x", nil, "usage: no AMI user: give -u/--user or set [ami] user in "},
		{"no secret", "", []string{"-u", "monitor"}, "usage: no AMI secret: set $PBXHA_AMI_SECRET, give --secret-file or set [ami] secret in "},
		{"no secret, user from config", "", []string{"--config", noAMI}, "usage: no AMI secret: set $PBXHA_AMI_SECRET, give --secret-file or set [ami] secret in " + noAMI},
		{"empty secret file", "", []string{"-u", "monitor", "--secret-file", empty}, "usage: the AMI secret from --secret-file " + empty + " is empty"},
		{"missing secret file", "", []string{"-u", "monitor", "--secret-file", filepath.Join(dir, "nope")}, "UNKNOWN - reading secret file: open "},
		{"line break in the user", "x", []string{"-u", "a\r\nAction: Originate"}, "usage: flag -u/--user: holds a line break or NUL"},
		{"line break in the secret", "a\r\nb", []string{"-u", "monitor"}, "usage: the AMI secret from $PBXHA_AMI_SECRET holds a line break"},
		{"--ca without --tls", "x", []string{"-u", "m", "--ca", "/x"}, "usage: flag --ca needs --tls"},
		{"--insecure without --tls", "x", []string{"-u", "m", "--insecure"}, "usage: flag --insecure needs --tls"},
		{"--ca and --insecure", "x", []string{"-u", "m", "--tls", "--insecure", "--ca", "/x"}, "usage: flags --ca and --insecure exclude each other"},
		{"CA file without certificates", "x", []string{"-u", "m", "--tls", "--ca", empty}, "usage: flag --ca: " + empty + " holds no PEM certificate"},
		{"bad port", "x", []string{"-p", "70000"}, "usage: flag -p/--port: 70000 is not a port"},
		{"bad min-uptime", "x", []string{"--min-uptime", "soon"}, `usage: flag --min-uptime: "soon" is not a duration`},
		{"bad range", "x", []string{"--calls-critical", "lots"}, `usage: invalid argument "lots" for "--calls-critical" flag`},
		{"no --secret flag", "x", []string{"--secret", "s3cret"}, "usage: unknown flag: --secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(SecretEnv, tc.env)
			t.Setenv("PBXHA_CONFIG", empty)
			var b bytes.Buffer
			code := plugin.Execute(Spec(), append([]string{"--role", "any"}, tc.args...), &b)
			first, _, _ := strings.Cut(b.String(), "\n")
			if code != 3 || !strings.Contains(first, tc.want) {
				t.Fatalf("exit %d, %q; want exit 3 and %q", code, first, tc.want)
			}
		})
	}
}

// TestRoleGate: the check applies to the master; elsewhere it skips
// without connecting.
func TestRoleGate(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(state, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 3, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	os.WriteFile(cfg, []byte("state_file = \""+state+"\"\n[ami]\nhost = \"127.0.0.1\"\nport = 1\nuser = \"u\"\nsecret = \"x\"\n"), 0o600)
	var b bytes.Buffer
	code := plugin.Execute(Spec(), []string{"--config", cfg}, &b)
	if code != 0 || b.String() != "PBX_AMI OK - skipped: node is slave (applies to master)\n" {
		t.Fatalf("exit %d, %q", code, b.String())
	}
}
