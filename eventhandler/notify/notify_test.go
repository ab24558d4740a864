package notify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"pbxha/lib/config"
	"pbxha/lib/mail"
)

// serverTLS is the loopback SMTP server's certificate. lib/mail offers a
// password only over TLS (go-mail's auth discovery skips PLAIN and LOGIN on
// a clear connection), and verifies the server: TestMain makes this
// self-signed certificate for 127.0.0.1 the test process's trust store
// through SSL_CERT_FILE, before anything loads the system roots.
var serverTLS *tls.Config

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pbxha-notify-test-")
	if err != nil {
		panic(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbxha-notify test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.Setenv("SSL_CERT_FILE", ca)
	serverTLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// A real SMTP server on loopback (emersion/go-smtp), optionally asking
// for AUTH PLAIN and slow to accept each message.
type srv struct {
	mu    sync.Mutex
	msgs  []string // raw messages
	rcpts [][]string
	froms []string
	user  string // "" = no AUTH
	pass  string
	delay time.Duration
	authd int // successful logins
	authx int // rejected logins
}

type srvSession struct {
	s    *srv
	from string
	to   []string
}

func (s *srv) NewSession(*smtp.Conn) (smtp.Session, error) { return &srvSession{s: s}, nil }

func (x *srvSession) Reset()        { x.from, x.to = "", nil }
func (x *srvSession) Logout() error { return nil }
func (x *srvSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *srvSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *srvSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	time.Sleep(x.s.delay)
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.msgs = append(x.s.msgs, string(b))
	x.s.rcpts = append(x.s.rcpts, x.to)
	x.s.froms = append(x.s.froms, x.from)
	return nil
}

// authSession is a session of a server that requires AUTH PLAIN.
type authSession struct {
	*srvSession
	ok bool
}

func (x *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (x *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.s.user || pass != x.s.pass {
			x.s.mu.Lock()
			x.s.authx++
			x.s.mu.Unlock()
			return errors.New("invalid credentials")
		}
		x.ok = true
		x.s.mu.Lock()
		x.s.authd++
		x.s.mu.Unlock()
		return nil
	}), nil
}
func (x *authSession) Mail(from string, o *smtp.MailOptions) error {
	if !x.ok {
		return smtp.ErrAuthRequired
	}
	return x.srvSession.Mail(from, o)
}

type authBackend struct{ *srv }

func (b authBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &authSession{srvSession: &srvSession{s: b.srv}}, nil
}

func (s *srv) subjects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		out = append(out, header(m, "Subject"))
	}
	return out
}

// header returns a header's value from a raw message ("" when absent).
func header(raw, name string) string {
	for _, l := range strings.Split(raw, "\r\n") {
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ": "); ok && strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// start serves s on addr ("127.0.0.1:0" for any port) until the test ends
// or stop is called.
func (s *srv) start(t *testing.T, addr string) (string, func()) {
	t.Helper()
	var be smtp.Backend = s
	if s.user != "" {
		be = authBackend{s}
	}
	server := smtp.NewServer(be)
	server.Domain = "localhost"
	server.TLSConfig = serverTLS
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go server.Serve(l)
	var once sync.Once
	stop := func() { once.Do(func() { server.Close() }) }
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// freeAddr is a loopback port nothing listens on (free a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

const testPassword = "Sm7p-pa55w0rd-xyzzy"

type env struct {
	dir, cfgPath, spool, runDir string
}

// writeConfig writes a cluster.toml whose SMTP is addr; user "" means no
// AUTH, else STARTTLS and the password inline in the file.
func writeConfig(t *testing.T, addr, user, extra string) env {
	t.Helper()
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(addr)
	e := env{dir: dir, cfgPath: filepath.Join(dir, "cluster.toml"), spool: filepath.Join(dir, "spool"), runDir: filepath.Join(dir, "run")}
	auth := "tls = \"none\"\n"
	if user != "" {
		auth = fmt.Sprintf("tls = \"starttls\"\nusername = %q\npassword = %q\n", user, testPassword)
	}
	text := fmt.Sprintf(`cluster_id = "pbx-office"
node = "node1"
run_dir = %q
admin_email = "pbx-admin@example.net"
%s
[[nodes]]
name = "node1"
[[nodes]]
name = "node2"

[smtp]
host = %q
port = %s
from = "pbxha@node1.example.net"
spool_dir = %q
%s`, e.runDir, extra, host, port, e.spool, auth)
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

var t0 = time.Date(2026, 11, 23, 14, 42, 34, 0, time.FixedZone("CET", 3600))

func testOpts() opts {
	return opts{now: func() time.Time { return t0 }, flushTimeout: 5 * time.Second}
}

type result struct {
	code           int
	stdout, stderr string
}

func runMain(o opts, args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, o)
	return result{code, out.String(), errb.String()}
}

func serviceArgs(e env, typ, state string) []string {
	return []string{"service", "--type", typ, "--host", "node1", "--service", "pbx_disk", "--state", state,
		"--output", "PBX_DISK " + state + " - /var 96% used", "--to", "alice@example.net", "--config", e.cfgPath}
}

func readLog(t *testing.T, e env) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.runDir, "notify.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// noSecret asserts that the SMTP password appears in none of the texts,
// the log or the spool files.
func noSecret(t *testing.T, e env, texts ...string) {
	t.Helper()
	all := append([]string{readLog(t, e)}, texts...)
	files, _ := filepath.Glob(filepath.Join(e.spool, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, string(b))
	}
	for _, s := range all {
		if strings.Contains(s, testPassword) {
			t.Fatalf("the SMTP password leaked:\n%s", s)
		}
	}
}

func TestSubject(t *testing.T) {
	cfg := &config.Config{ClusterID: "pbx-office", SMTP: config.SMTP{From: "pbxha@example.net"}}
	cases := []struct {
		n    Notification
		want string
	}{
		{Notification{Kind: "service", Type: "PROBLEM", Host: "node1", Service: "pbx_disk", State: "CRITICAL"}, "[pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL"},
		{Notification{Kind: "service", Type: "RECOVERY", Host: "node2", Service: "pbx_sip", State: "OK"}, "[pbx-office] RECOVERY: pbx_sip on node2 is OK"},
		{Notification{Kind: "service", Type: "ACKNOWLEDGEMENT", Host: "node1", Service: "pbx_ami", State: "WARNING"}, "[pbx-office] ACKNOWLEDGEMENT: pbx_ami on node1 is WARNING"},
		{Notification{Kind: "service", Type: "DOWNTIMESTART", Host: "node1", Service: "pbx_time", State: "UNKNOWN"}, "[pbx-office] DOWNTIMESTART: pbx_time on node1 is UNKNOWN"},
		{Notification{Kind: "host", Type: "PROBLEM", Host: "node2", State: "DOWN"}, "[pbx-office] PROBLEM: host node2 is DOWN"},
		{Notification{Kind: "host", Type: "RECOVERY", Host: "node2", State: "UP"}, "[pbx-office] RECOVERY: host node2 is UP"},
		// A value with a line break cannot add a header.
		{Notification{Kind: "service", Type: "CUSTOM", Host: "node1\r\nBcc: x@example.net", Service: "pbx_disk", State: "OK"}, "[pbx-office] CUSTOM: pbx_disk on node1 Bcc: x@example.net is OK"},
	}
	for _, c := range cases {
		if got := Compose(cfg, c.n).Subject; got != c.want {
			t.Errorf("subject %q, want %q", got, c.want)
		}
	}
	if got := Compose(&config.Config{}, cases[4].n).Subject; got != "[pbxha] PROBLEM: host node2 is DOWN" {
		t.Errorf("no cluster_id: %q", got)
	}
}

func TestBody(t *testing.T) {
	cfg := &config.Config{ClusterID: "pbx-office", Node: "node2", Nodes: []config.Node{{Name: "node1"}, {Name: "node2"}},
		SMTP: config.SMTP{From: "pbxha@node2.example.net"}, Notify: config.Notify{IcingaWeb2URL: "https://mon.example.net/icingaweb2/"}}
	n := Notification{Kind: "service", Type: "ACKNOWLEDGEMENT", Host: "pbx node1", Service: "pbx_disk & co", State: "CRITICAL",
		Output: "PBX_DISK CRITICAL - /var 96% used", LongOutput: "\\_ [CRITICAL] /var 96%\r\n\\_ [OK] / 40%\n",
		Author: "alice", Comment: "disk ordered\nback tomorrow", To: []string{"bob@example.net"}, Time: t0}
	m := Compose(cfg, n)
	want := `ACKNOWLEDGEMENT: pbx_disk & co on pbx node1 is CRITICAL

Notification type: ACKNOWLEDGEMENT
Host:              pbx node1
Service:           pbx_disk & co
State:             CRITICAL
Date/Time:         2026-11-23 14:42:34 +0100
Cluster:           pbx-office (sent by node2)

Output:
  PBX_DISK CRITICAL - /var 96% used

Long output:
  \_ [CRITICAL] /var 96%
  \_ [OK] / 40%

Comment by alice:
  disk ordered
  back tomorrow

https://mon.example.net/icingaweb2/monitoring/service/show?host=pbx+node1&service=pbx_disk+%26+co
`
	if m.Body != want {
		t.Fatalf("body:\n%s\nwant:\n%s", m.Body, want)
	}
	if m.From != "pbxha@node2.example.net" || len(m.To) != 1 || m.To[0] != "bob@example.net" || !m.Date.Equal(t0) {
		t.Fatalf("envelope %+v", m)
	}

	// Host form, no link base, no long output, author without comment.
	cfg.Notify = config.Notify{}
	h := Compose(cfg, Notification{Kind: "host", Type: "PROBLEM", Host: "node1", State: "DOWN", Author: "icinga", Time: t0})
	for _, bad := range []string{"Service:", "Long output", "Comment", "http"} {
		if strings.Contains(h.Body, bad) {
			t.Errorf("host body has %q:\n%s", bad, h.Body)
		}
	}
	for _, good := range []string{"PROBLEM: host node1 is DOWN\n", "State:             DOWN\n", "Output: (none)\n", "Author: icinga\n"} {
		if !strings.Contains(h.Body, good) {
			t.Errorf("host body lacks %q:\n%s", good, h.Body)
		}
	}
	cfg.Notify.IcingaWeb2URL = "http://mon/icingaweb2"
	if l := Link(cfg, Notification{Kind: "host", Host: "node1"}); l != "http://mon/icingaweb2/monitoring/host/show?host=node1" {
		t.Errorf("host link %q", l)
	}
}

// The binary's whole path over a real SMTP server with AUTH: exit 0, the
// exact subject and the recipient, nothing spooled, no password anywhere.
func TestSendsWithAuth(t *testing.T) {
	s := &srv{user: "pbxha", pass: testPassword}
	addr, _ := s.start(t, "127.0.0.1:0")
	e := writeConfig(t, addr, "pbxha", `[notify]
icingaweb2_url = "https://mon.example.net/icingaweb2"`)
	args := append(serviceArgs(e, "PROBLEM", "CRITICAL"), "--long-output", "\\_ [CRITICAL] /var", "--author", "icingaadmin", "--comment", "on it")
	r := runMain(testOpts(), args...)
	if r.code != 0 || r.stderr != "" || r.stdout != "sent to alice@example.net: [pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(s.msgs) != 1 || s.authd != 1 {
		t.Fatalf("%d messages, %d logins; want 1, 1", len(s.msgs), s.authd)
	}
	raw := s.msgs[0]
	if got := header(raw, "Subject"); got != "[pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL" {
		t.Fatalf("subject %q", got)
	}
	if s.froms[0] != "pbxha@node1.example.net" || len(s.rcpts[0]) != 1 || s.rcpts[0][0] != "alice@example.net" {
		t.Fatalf("envelope from %q to %v", s.froms[0], s.rcpts[0])
	}
	for _, want := range []string{"Date: Mon, 23 Nov 2026 14:42:34 +0100", "Content-Type: text/plain",
		"Output:\r\n  PBX_DISK CRITICAL - /var 96% used", "Long output:\r\n  \\_ [CRITICAL] /var", "Comment by icingaadmin:\r\n  on it",
		"https://mon.example.net/icingaweb2/monitoring/service/show?host=node1&service=pbx_disk"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the message lacks %q:\n%s", want, raw)
		}
	}
	if mail.Pending(e.spool) != 0 {
		t.Fatal("something was spooled")
	}
	if lg := readLog(t, e); !strings.Contains(lg, "sent [pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL to alice@example.net") {
		t.Fatalf("log: %q", lg)
	}
	noSecret(t, e, r.stdout, r.stderr, raw)
}

// A rejected login is an SMTP failure like any other: spooled, exit 0, and
// the password is in no output, log or spool file.
func TestWrongPasswordSpoolsWithoutLeaking(t *testing.T) {
	s := &srv{user: "pbxha", pass: "the-right-one"}
	addr, _ := s.start(t, "127.0.0.1:0")
	e := writeConfig(t, addr, "pbxha", "")
	r := runMain(testOpts(), serviceArgs(e, "PROBLEM", "CRITICAL")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "spooled, nothing lost: [pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL: SMTP failed (") || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if mail.Pending(e.spool) != 1 || len(s.msgs) != 0 || s.authx != 1 {
		t.Fatalf("pending %d, delivered %d, rejected logins %d; want 1, 0, 1", mail.Pending(e.spool), len(s.msgs), s.authx)
	}
	noSecret(t, e, r.stdout, r.stderr)
}

// SMTP down: each notification is spooled (exit 0, said on stdout); with
// SMTP back, the next notification first sends the spool oldest first,
// then itself; --flush empties what is left.
func TestSpoolThenFlushInOrder(t *testing.T) {
	addr := freeAddr(t)
	e := writeConfig(t, addr, "", "")
	o := testOpts()
	for i, typ := range []string{"PROBLEM", "ACKNOWLEDGEMENT"} {
		o.now = func() time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		r := runMain(o, serviceArgs(e, typ, "CRITICAL")...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "spooled, nothing lost: ") || !strings.Contains(r.stdout, "pbxha-notify --flush") || r.stderr != "" {
			t.Fatalf("SMTP down: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	}
	if n := mail.Pending(e.spool); n != 2 {
		t.Fatalf("%d spooled, want 2", n)
	}
	// --flush with SMTP still down: exit 1, nothing lost.
	r := runMain(o, "--flush", "--config", e.cfgPath)
	if r.code != 1 || r.stdout != "sent 0 spooled message(s), 2 left\n" || r.stderr == "" {
		t.Fatalf("flush, SMTP down: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	s := &srv{}
	s.start(t, addr)
	o.now = func() time.Time { return t0.Add(5 * time.Minute) }
	r = runMain(o, serviceArgs(e, "RECOVERY", "OK")...)
	if r.code != 0 || r.stdout != "sent to alice@example.net: [pbx-office] RECOVERY: pbx_disk on node1 is OK\n" {
		t.Fatalf("SMTP back: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	want := []string{"[pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL", "[pbx-office] ACKNOWLEDGEMENT: pbx_disk on node1 is CRITICAL", "[pbx-office] RECOVERY: pbx_disk on node1 is OK"}
	if got := s.subjects(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("delivered in this order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The spooled mail keeps the time of its event.
	if d := header(s.msgs[0], "Date"); d != "Mon, 23 Nov 2026 14:42:34 +0100" {
		t.Fatalf("spooled mail's Date %q", d)
	}
	if mail.Pending(e.spool) != 0 {
		t.Fatal("spool not empty")
	}

	// --flush alone: the same as pbxha-eventhandler flush.
	mail.Spool(e.spool, mail.Message{From: "pbxha@node1.example.net", To: []string{"alice@example.net"}, Subject: "spooled by the event handler", Body: "x\n", Date: t0})
	r = runMain(o, "--config", e.cfgPath, "--flush")
	if r.code != 0 || r.stdout != "sent 1 spooled message(s), 0 left\n" || r.stderr != "" {
		t.Fatalf("flush: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := s.subjects(); len(got) != 4 || got[3] != "spooled by the event handler" {
		t.Fatalf("after flush: %q", got)
	}
	if lg := readLog(t, e); strings.Count(lg, "SPOOLED ") != 2 || !strings.Contains(lg, "spool: sent 2, 0 left") {
		t.Fatalf("log:\n%s", lg)
	}
}

// A backlog that cannot be sent within the flush deadline does not hold
// the new mail back past it: the run stays bounded, the new mail goes out,
// the rest stays spooled (nothing lost, nothing sent twice).
func TestFlushDeadline(t *testing.T) {
	s := &srv{delay: 300 * time.Millisecond}
	addr, _ := s.start(t, "127.0.0.1:0")
	e := writeConfig(t, addr, "", "")
	for i := range 6 {
		mail.Spool(e.spool, mail.Message{From: "pbxha@node1.example.net", To: []string{"alice@example.net"}, Subject: fmt.Sprintf("old %d", i), Body: "x\n", Date: t0.Add(time.Duration(i) * time.Second)})
	}
	o := testOpts()
	o.flushTimeout = 500 * time.Millisecond
	start := time.Now()
	r := runMain(o, serviceArgs(e, "PROBLEM", "CRITICAL")...)
	took := time.Since(start)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sent to alice@example.net: [pbx-office] PROBLEM") || !strings.Contains(r.stdout, "older message(s) still spooled") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// 500 ms of flushing, the one transaction it may overrun, the new mail.
	if took > 2*time.Second {
		t.Fatalf("the run took %s with a 500ms flush deadline", took)
	}
	got := s.subjects()
	left := mail.Pending(e.spool)
	if left == 0 || len(got)-1+left != 6 || got[len(got)-1] != "[pbx-office] PROBLEM: pbx_disk on node1 is CRITICAL" {
		t.Fatalf("delivered %q, %d left; want the new mail delivered and the 6 old ones delivered or kept", got, left)
	}
	for i, sub := range got[:len(got)-1] {
		if sub != fmt.Sprintf("old %d", i) {
			t.Fatalf("the spool was not sent oldest first: %q", got)
		}
	}
}

// Two notifications at once (a host down notifies for each service) never
// send the same spooled mail twice.
func TestConcurrentRunsSendSpoolOnce(t *testing.T) {
	s := &srv{delay: 20 * time.Millisecond}
	addr, _ := s.start(t, "127.0.0.1:0")
	e := writeConfig(t, addr, "", "")
	for i := range 5 {
		mail.Spool(e.spool, mail.Message{From: "pbxha@node1.example.net", To: []string{"alice@example.net"}, Subject: fmt.Sprintf("old %d", i), Body: "x\n", Date: t0.Add(time.Duration(i) * time.Second)})
	}
	var wg sync.WaitGroup
	res := make([]result, 3)
	for i := range res {
		wg.Go(func() { res[i] = runMain(testOpts(), serviceArgs(e, fmt.Sprintf("CUSTOM%d", i), "OK")...) })
	}
	wg.Wait()
	for _, r := range res {
		if r.code != 0 || !strings.HasPrefix(r.stdout, "sent to ") || strings.Contains(r.stdout, "still spooled") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	}
	got := s.subjects()
	seen := map[string]int{}
	for _, sub := range got {
		seen[sub]++
	}
	if len(got) != 8 || len(seen) != 8 {
		t.Fatalf("delivered %d (%d distinct), want 8 once each: %q", len(got), len(seen), got)
	}
	// The spool went out first, oldest first.
	for i := range 5 {
		if got[i] != fmt.Sprintf("old %d", i) {
			t.Fatalf("order %q", got)
		}
	}
}

func TestBadInput(t *testing.T) {
	s := &srv{}
	addr, _ := s.start(t, "127.0.0.1:0")
	e := writeConfig(t, addr, "", "")
	broken := filepath.Join(e.dir, "broken.toml")
	os.WriteFile(broken, []byte("cluster_id = \"x\"\nnode = \n[smtp]\n"), 0o600)
	noHost := filepath.Join(e.dir, "nohost.toml")
	os.WriteFile(noHost, []byte("cluster_id = \"x\"\n[smtp]\nfrom = \"a@example.net\"\n"), 0o600)
	noFrom := filepath.Join(e.dir, "nofrom.toml")
	os.WriteFile(noFrom, []byte("cluster_id = \"x\"\n[smtp]\nhost = \"127.0.0.1\"\n"), 0o600)
	missing := filepath.Join(e.dir, "none.toml")

	base := func(drop string, extra ...string) []string {
		full := serviceArgs(e, "PROBLEM", "CRITICAL")
		var out []string
		for i := 0; i < len(full); i++ {
			if full[i] == drop {
				i++
				continue
			}
			out = append(out, full[i])
		}
		return append(out, extra...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"page"}, `unknown command "page"`},
		{"no --type", base("--type"), "missing --type"},
		{"no --service", base("--service"), "missing --service"},
		{"no --to and --state", base("--to", "--state", ""), "missing --state, --to"},
		{"empty --host", base("--host", "--host", ""), "missing --host"},
		{"bad --to", base("--to", "--to", "alice"), `--to "alice" is not an email address`},
		{"unknown flag", base("", "--colour", "red"), "unknown flag: --colour"},
		{"--service on host", []string{"host", "--type", "PROBLEM", "--host", "node1", "--service", "x", "--state", "DOWN", "--to", "a@example.net", "--config", e.cfgPath}, "unknown flag: --service"},
		{"config missing", base("--config", "--config", missing), "reading config: open " + missing},
		{"config syntax", base("--config", "--config", broken), broken + ": line 2"},
		{"no smtp.host", base("--config", "--config", noHost), noHost + ": smtp.host: missing"},
		{"no smtp.from", base("--config", "--config", noFrom), noFrom + ": smtp.from: missing"},
		{"flush, config syntax", []string{"--flush", "--config", broken}, broken + ": line 2"},
		{"flush, stray argument", []string{"--flush", "now"}, `unexpected argument "now"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runMain(testOpts(), c.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 3 and %q", r.code, r.stdout, r.stderr, c.want)
			}
			if c.args != nil && strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("want a one-line reason, got %q", r.stderr)
			}
		})
	}
	if len(s.msgs) != 0 || mail.Pending(e.spool) != 0 {
		t.Fatalf("bad input sent %d, spooled %d", len(s.msgs), mail.Pending(e.spool))
	}
}

// Values that look like flags are values where Icinga puts them; a host
// notification needs no --service.
func TestArgumentsAsIcingaPassesThem(t *testing.T) {
	s := &srv{}
	addr, _ := s.start(t, "127.0.0.1:0")
	e := writeConfig(t, addr, "", "")
	r := runMain(testOpts(), "service", "--type", "PROBLEM", "--host", "node1", "--service", "pbx_sip", "--state", "CRITICAL",
		"--output", "--flush", "--to", "alice@example.net, bob@example.net", "--config", e.cfgPath)
	if r.code != 0 || len(s.msgs) != 1 || !strings.Contains(s.msgs[0], "Output:\r\n  --flush") || len(s.rcpts[0]) != 2 {
		t.Fatalf("exit %d %q %q; delivered %q to %v", r.code, r.stdout, r.stderr, s.msgs, s.rcpts)
	}
	r = runMain(testOpts(), "host", "--type", "PROBLEM", "--host", "node2", "--state", "DOWN", "--output", "", "--to", "alice@example.net", "--config", e.cfgPath)
	if r.code != 0 || r.stdout != "sent to alice@example.net: [pbx-office] PROBLEM: host node2 is DOWN\n" {
		t.Fatalf("host: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if ok, _ := regexp.MatchString(`\[\d+\] sent \[pbx-office\] PROBLEM: host node2 is DOWN to alice@example.net`, readLog(t, e)); !ok {
		t.Fatalf("log:\n%s", readLog(t, e))
	}
}
