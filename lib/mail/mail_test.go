package mail

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"pbxha/lib/config"
)

type backend struct {
	mu   sync.Mutex
	msgs []string
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct{ b *backend }

func (s *session) Reset()                               {}
func (s *session) Logout() error                        { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, string(b))
	s.b.mu.Unlock()
	return err
}

// startSMTP serves on a loopback port; stop ends it.
func startSMTP(t *testing.T, addr string) (*backend, string, func()) {
	t.Helper()
	be := &backend{}
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	return be, l.Addr().String(), func() { s.Close() }
}

func smtpConf(t *testing.T, addr string) config.SMTP {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return config.SMTP{Host: host, Port: p, TLS: "none", SpoolDir: t.TempDir()}
}

func TestSendSpoolFlush(t *testing.T) {
	ctx := context.Background()
	// A port that was free a moment ago: nothing listens there now.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	s := smtpConf(t, addr)
	m := Message{From: "pbxha@node2.example.net", To: []string{"admin@example.net"}, Subject: "[pbxha] failover: node2 is master", Body: "steps...\n"}

	spooled, err := Send(ctx, s, m)
	if err == nil || !spooled {
		t.Fatalf("SMTP down: spooled=%v err=%v; want spooled with the send error", spooled, err)
	}
	if n := Pending(s.SpoolDir); n != 1 {
		t.Fatalf("%d spooled, want 1", n)
	}
	if n, err := Flush(ctx, s); err == nil || n != 0 || Pending(s.SpoolDir) != 1 {
		t.Fatalf("flush with SMTP still down: sent %d, err %v, left %d; want an error and the mail kept", n, err, Pending(s.SpoolDir))
	}

	be, _, stop := startSMTP(t, addr)
	defer stop()
	n, err := Flush(ctx, s)
	if err != nil || n != 1 || Pending(s.SpoolDir) != 0 {
		t.Fatalf("flush: sent %d, err %v, left %d; want 1 sent, spool empty", n, err, Pending(s.SpoolDir))
	}
	if len(be.msgs) != 1 || !strings.Contains(be.msgs[0], "Subject: [pbxha] failover: node2 is master") || !strings.Contains(be.msgs[0], "steps...") {
		t.Fatalf("delivered %q", be.msgs)
	}

	// SMTP up: sent directly, nothing spooled.
	if spooled, err := Send(ctx, s, m); err != nil || spooled || Pending(s.SpoolDir) != 0 {
		t.Fatalf("SMTP up: spooled=%v err=%v", spooled, err)
	}
	if len(be.msgs) != 2 {
		t.Fatalf("%d delivered, want 2", len(be.msgs))
	}
}

func TestFlushKeepsWhatCannotBeSent(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 3 {
		if err := Spool(dir, Message{Subject: string(rune('a' + i)), Date: t0.Add(time.Duration(2-i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if Pending(dir) != 3 {
		t.Fatalf("pending %d", Pending(dir))
	}
	be, addr, stop := startSMTP(t, "127.0.0.1:0")
	defer stop()
	s := smtpConf(t, addr)
	s.SpoolDir = dir
	// From/To are empty: a message that cannot be sent is kept, not dropped.
	if _, err := Flush(context.Background(), s); err == nil || Pending(dir) != 3 || len(be.msgs) != 0 {
		t.Fatalf("want an error and 3 kept, got err %v, %d kept", err, Pending(dir))
	}
}
