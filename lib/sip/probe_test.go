package sip_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"pbxha/lib/plugin"
	"pbxha/lib/sip"
	"pbxha/lib/sip/kamailiotest"
)

// run executes check_pbx_sip in-process with no cluster.toml around and
// asserts what every run must give: a known state and valid perfdata.
func run(t *testing.T, args ...string) (code int, first string, out string) {
	t.Helper()
	t.Setenv("PBXHA_CONFIG", "")
	var b bytes.Buffer
	code = plugin.Execute(sip.Spec(), args, &b)
	out = b.String()
	first, _, _ = strings.Cut(out, "\n")
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("perfdata %q: %v", perf, err)
		}
	}
	return code, first, out
}

// perf returns one perfdata item's text ("code=200;;;0;699").
func perf(t *testing.T, first, label string) string {
	t.Helper()
	_, p, _ := strings.Cut(first, " | ")
	items, _ := plugin.SplitPerfdata(p)
	for _, it := range items {
		if strings.HasPrefix(it, label+"=") {
			return it
		}
	}
	t.Fatalf("no perfdata %q in %q", label, first)
	return ""
}

func expect(t *testing.T, code int, first string, wantCode int, wantPrefix string) {
	t.Helper()
	if code != wantCode || !strings.HasPrefix(first, wantPrefix) {
		t.Fatalf("exit %d, %q\nwant exit %d, %q...", code, first, wantCode, wantPrefix)
	}
}

func TestAgainstKamailio(t *testing.T) {
	ok := kamailiotest.Start(t, kamailiotest.RouteOK)
	byUser := kamailiotest.Start(t, kamailiotest.RouteByUser)
	port := strconv.Itoa(ok.Port)
	uport := strconv.Itoa(byUser.Port)

	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) {
			code, first, _ := run(t, "-H", "127.0.0.1", "-p", port, "--transport", tp, "--role", "any")
			expect(t, code, first, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:"+port+"/"+tp+" in ")
			if p := perf(t, first, "code"); p != "code=200;;;0;699" {
				t.Fatalf("perfdata %q", p)
			}
			if p := perf(t, first, "rtt"); !regexp.MustCompile(`^rtt=0\.[0-9]+s;;;0$`).MatchString(p) {
				t.Fatalf("perfdata %q", p)
			}

			// 404 by the Request-URI's user: CRITICAL unless accepted.
			code, first, _ = run(t, "-H", "127.0.0.1", "-p", uport, "--transport", tp, "--to-user", "missing", "--role", "any")
			expect(t, code, first, 2, "PBX_SIP CRITICAL - SIP 404 Not Found from 127.0.0.1:"+uport+"/"+tp+" (accepted: 200) | ")
			code, first, _ = run(t, "-u", "sip:missing@127.0.0.1:"+uport, "--transport", tp, "--accept", "200,404", "--role", "any")
			expect(t, code, first, 0, "PBX_SIP OK - SIP 404 Not Found from 127.0.0.1:"+uport+"/"+tp+" in ")
			if p := perf(t, first, "code"); p != "code=404;;;0;699" {
				t.Fatalf("perfdata %q", p)
			}

			// A reason phrase with '|' must not start perfdata early.
			code, first, _ = run(t, "-u", "sip:pipe@127.0.0.1:"+uport, "--transport", tp, "--role", "any")
			expect(t, code, first, 2, "PBX_SIP CRITICAL - SIP 503 Busy / try=later from ")
			if strings.Count(first, "|") != 1 {
				t.Fatalf("%q", first)
			}
		})
	}

	t.Run("thresholds", func(t *testing.T) {
		// Loopback takes more than a microsecond and less than -t.
		code, first, _ := run(t, "-H", "127.0.0.1", "-p", port, "-w", "0.000001", "--role", "any")
		expect(t, code, first, 1, "PBX_SIP WARNING - SIP 200 OK from ")
		if !strings.Contains(first, "(warning > 0.000001)") || !strings.Contains(first, ";0.000001;;0 ") {
			t.Fatalf("%q", first)
		}
		code, first, _ = run(t, "-H", "127.0.0.1", "-p", port, "-w", "0.000001", "-c", "0.000002", "--role", "any")
		expect(t, code, first, 2, "PBX_SIP CRITICAL - SIP 200 OK from ")
		code, first, _ = run(t, "-H", "127.0.0.1", "-p", port, "-w", "5", "-c", "9", "--role", "any")
		expect(t, code, first, 0, "PBX_SIP OK - SIP 200 OK from ")
	})

	t.Run("source 127.0.0.2", func(t *testing.T) {
		for _, tp := range []string{"udp", "tcp"} {
			code, first, _ := run(t, "-H", "127.0.0.1", "-p", port, "--transport", tp, "--source", "127.0.0.2", "--role", "any")
			expect(t, code, first, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:"+port+"/"+tp)
		}
	})

	t.Run("verbose shows the exchange", func(t *testing.T) {
		code, _, out := run(t, "-H", "127.0.0.1", "-p", port, "--role", "any", "-vvv")
		if code != 0 || !strings.Contains(out, "> OPTIONS sip:127.0.0.1:"+port+" SIP/2.0") || !strings.Contains(out, "< SIP/2.0 200 OK") {
			t.Fatalf("%d\n%s", code, out)
		}
	})
}

// header returns a header's value from a raw SIP message.
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

var viaRE = regexp.MustCompile(`^SIP/2\.0/(UDP|TCP|TLS) ([^;]+);`)

// sentBy is the Via's transport and host:port.
func sentBy(t *testing.T, msg string) (string, string) {
	t.Helper()
	m := viaRE.FindStringSubmatch(header(msg, "Via"))
	if m == nil {
		t.Fatalf("no Via in\n%s", msg)
	}
	return m[1], m[2]
}

func TestUDPTarpitRetransmitsWithinT(t *testing.T) {
	pit := kamailiotest.StartUDPTarpit(t)
	host, port, _ := net.SplitHostPort(pit.Addr)
	start := time.Now()
	code, first, _ := run(t, "-H", host, "-p", port, "-t", "3", "--to-user", "100", "--from-user", "monitor", "--role", "any")
	el := time.Since(start)
	if code != 2 || !regexp.MustCompile(`^PBX_SIP CRITICAL - no SIP response after 2\.[6-9]s from 127\.0\.0\.1:`+port+`/udp \(sent 3 times\) \| rtt=U;;;0 code=U;;;0;699$`).MatchString(first) {
		t.Fatalf("exit %d, %q", code, first)
	}
	if el > 3500*time.Millisecond {
		t.Fatalf("took %v with -t 3", el)
	}
	got := pit.Received()
	// RFC 3261 17.1.2.2: sent at 0, T1 and 3*T1 within 2.7 s.
	if len(got) != 3 {
		t.Fatalf("%d datagrams", len(got))
	}
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second} {
		if gap := got[i+1].At.Sub(got[i].At); gap < want-100*time.Millisecond || gap > want+300*time.Millisecond {
			t.Errorf("retransmission %d after %v, want %v (Timer A)", i+1, gap, want)
		}
	}
	for _, d := range got {
		msg := string(d.Data)
		if !bytes.Equal(d.Data, got[0].Data) {
			t.Errorf("a retransmission differs from the request:\n%s\n%s", msg, got[0].Data)
		}
		tp, by := sentBy(t, msg)
		// Via carries the socket's real address, not 0.0.0.0.
		if tp != "UDP" || by != d.From {
			t.Errorf("Via sent-by %s %s, datagram from %s", tp, by, d.From)
		}
		if !strings.HasPrefix(msg, "OPTIONS sip:100@127.0.0.1:"+port+" SIP/2.0\r\n") {
			t.Errorf("request line: %q", strings.SplitN(msg, "\r\n", 2)[0])
		}
		if ua := header(msg, "User-Agent"); !strings.HasPrefix(ua, "pbxha-check_pbx_sip/") {
			t.Errorf("User-Agent %q", ua)
		}
		if f := header(msg, "From"); !strings.HasPrefix(f, "<sip:monitor@127.0.0.1>;tag=") {
			t.Errorf("From %q", f)
		}
		if to := header(msg, "To"); to != "<sip:100@127.0.0.1>" {
			t.Errorf("To %q", to)
		}
	}

	// -t's state applies to silence.
	code, first, _ = run(t, "-H", host, "-p", port, "-t", "1:unknown", "--role", "any")
	expect(t, code, first, 3, "PBX_SIP UNKNOWN - no SIP response after 0.9s from 127.0.0.1:"+port+"/udp (sent 2 times)")
}

func TestSourceAddressInVia(t *testing.T) {
	pit := kamailiotest.StartUDPTarpit(t)
	host, port, _ := net.SplitHostPort(pit.Addr)
	code, first, _ := run(t, "-H", host, "-p", port, "-t", "1", "--source", "127.0.0.2:0", "--role", "any")
	expect(t, code, first, 2, "PBX_SIP CRITICAL - no SIP response after")
	got := pit.Received()
	if len(got) == 0 {
		t.Fatal("nothing received")
	}
	if _, by := sentBy(t, string(got[0].Data)); by != got[0].From || !strings.HasPrefix(by, "127.0.0.2:") {
		t.Fatalf("Via %s, from %s", by, got[0].From)
	}

	tpit := kamailiotest.StartTCPTarpit(t)
	host, port, _ = net.SplitHostPort(tpit.Addr)
	code, first, _ = run(t, "-H", host, "-p", port, "--transport", "tcp", "-t", "1", "--source", "127.0.0.3", "--role", "any")
	expect(t, code, first, 2, "PBX_SIP CRITICAL - no SIP response after 0.9s from 127.0.0.1:"+port+"/tcp | ")
	msg, from := tpit.Received()
	if len(from) != 1 || !strings.HasPrefix(from[0], "127.0.0.3:") {
		t.Fatalf("connections from %v", from)
	}
	if tp, by := sentBy(t, msg); tp != "TCP" || by != from[0] {
		t.Fatalf("Via %s %s, connection from %s", tp, by, from[0])
	}
	if !strings.HasPrefix(msg, "OPTIONS sip:127.0.0.1:"+port+";transport=tcp SIP/2.0\r\n") || header(msg, "Content-Length") != "0" {
		t.Fatalf("request:\n%s", msg)
	}
}

func TestClosedPorts(t *testing.T) {
	port := strconv.Itoa(kamailiotest.ClosedPort(t))
	for _, tc := range []struct{ tp, want string }{
		{"udp", "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/udp: ICMP port unreachable: nothing listens on that port | rtt=U;;;0 code=U;;;0;699"},
		{"tcp", "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/tcp: connection refused: nothing listens on that port | rtt=U;;;0 code=U;;;0;699"},
		{"tls", "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/tls: connection refused: nothing listens on that port | rtt=U;;;0 code=U;;;0;699"},
	} {
		start := time.Now()
		code, first, _ := run(t, "-H", "127.0.0.1", "-p", port, "--transport", tc.tp, "--role", "any")
		if code != 2 || first != tc.want {
			t.Errorf("%s: exit %d, %q\nwant %q", tc.tp, code, first, tc.want)
		}
		// Known at once, not after -t (10 s).
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%s: took %v", tc.tp, el)
		}
	}
	// A source address this host does not have fails at bind, locally.
	for _, tp := range []string{"udp", "tcp"} {
		code, first, _ := run(t, "-H", "127.0.0.1", "-p", port, "--transport", tp, "--source", "203.0.113.77", "--role", "any")
		if want := "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/" + tp + ": "; code != 2 || !strings.HasPrefix(first, want) || !strings.Contains(first, "cannot assign requested address") {
			t.Errorf("%s from 203.0.113.77: exit %d, %q", tp, code, first)
		}
	}
}

func TestSilentAndClosingTCPPeers(t *testing.T) {
	// A peer that accepts and closes: reported at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.CopyN(io.Discard, c, 100)
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	code, first, _ := run(t, "-H", "127.0.0.1", "-p", port, "--transport", "tcp", "-t", "5", "--role", "any")
	expect(t, code, first, 2, "PBX_SIP CRITICAL - 127.0.0.1:"+port+"/tcp: connection lost before a response")

	// A TLS client at a silent TCP peer: the handshake never ends.
	pit := kamailiotest.StartTCPTarpit(t)
	_, port, _ = net.SplitHostPort(pit.Addr)
	code, first, _ = run(t, "-H", "127.0.0.1", "-p", port, "--transport", "tls", "-t", "1", "--role", "any")
	expect(t, code, first, 2, "PBX_SIP CRITICAL - no SIP response after 0.9s from 127.0.0.1:"+port+"/tls (connection not established)")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, cert := testCert(t, "sip.example.test")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	otherPEM, _ := testCert(t, "other.example.test")
	otherFile := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherFile, otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnOptions(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "TLS OK", nil))
	})
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go srv.ServeTLS(l)
	_, port, _ := net.SplitHostPort(l.Addr().String())

	base := []string{"-H", "127.0.0.1", "-p", port, "--transport", "tls", "--role", "any", "-t", "5"}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--ca", caFile, "--sni", "sip.example.test"}, 0, "PBX_SIP OK - SIP 200 TLS OK from 127.0.0.1:" + port + "/tls in "},
		{[]string{"--insecure"}, 0, "PBX_SIP OK - SIP 200 TLS OK from "},
		{nil, 2, "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/tls: TLS: server certificate not accepted: x509: "},
		{[]string{"--ca", caFile}, 2, "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/tls: TLS: server certificate not accepted: x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"},
		{[]string{"--ca", caFile, "--sni", "wrong.example.test"}, 2, "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/tls: TLS: server certificate not accepted: x509: certificate is valid for sip.example.test, not wrong.example.test"},
		{[]string{"--ca", otherFile, "--sni", "sip.example.test"}, 2, "PBX_SIP CRITICAL - 127.0.0.1:" + port + "/tls: TLS: server certificate not accepted: x509: certificate signed by unknown authority"},
		{[]string{"-u", "sips:sip.example.test", "--ca", caFile}, 0, "PBX_SIP OK - SIP 200 TLS OK from 127.0.0.1:" + port + "/tls in "},
	}
	for _, tc := range cases {
		code, first, _ := run(t, append(append([]string(nil), base...), tc.args...)...)
		if code != tc.code || !strings.HasPrefix(first, tc.want) {
			t.Errorf("%v: exit %d, %q\nwant exit %d, %q", tc.args, code, first, tc.code, tc.want)
		}
	}

	// Kamailio's plain TCP port is no TLS server.
	k := kamailiotest.Start(t, kamailiotest.RouteOK)
	code, first, _ := run(t, "-H", "127.0.0.1", "-p", strconv.Itoa(k.Port), "--transport", "tls", "--insecure", "--role", "any", "-t", "3")
	if code != 2 || !strings.HasPrefix(first, "PBX_SIP CRITICAL - ") {
		t.Fatalf("TLS to a plain SIP port: %d %q", code, first)
	}
}

// testCert makes a CA and a server certificate for name, signed by it.
func testCert(t *testing.T, name string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbxha test CA " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
