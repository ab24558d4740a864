package ami

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/staskobzar/goami2"
)

// goami2Login connects the library the AMI check uses.
func goami2Login(t *testing.T, s *Server, user, secret string) (*goami2.Client, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cl, err := goami2.NewClientWithContext(ctx, conn, user, secret)
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.Cleanup(cl.Close)
	return cl, nil
}

// await returns the response carrying id, counting the events skipped.
func await(t *testing.T, cl *goami2.Client, id string, events *int) *goami2.Message {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case m := <-cl.AllMessages():
			if m.IsEvent() {
				*events++
				continue
			}
			if m.ActionID() == id {
				return m
			}
			t.Fatalf("response for another action: %q", m.String())
		case err := <-cl.Err():
			// select picks at random among ready cases: a message queued
			// before the error (Goodbye, then EOF) must still count.
			for {
				select {
				case m := <-cl.AllMessages():
					if m != nil && m.IsResponse() && m.ActionID() == id {
						return m
					}
					continue
				default:
				}
				break
			}
			t.Fatalf("client error waiting for %s: %v", id, err)
		case <-timeout:
			t.Fatalf("no response for %s", id)
		}
	}
}

func send(t *testing.T, cl *goami2.Client, action, id string, fields ...string) {
	t.Helper()
	m := goami2.NewAction(action)
	m.SetField("ActionID", id)
	for i := 0; i+1 < len(fields); i += 2 {
		m.AddField(fields[i], fields[i+1])
	}
	if err := cl.MustSend(m.Byte()); err != nil {
		t.Fatal(err)
	}
}

func TestGoami2AcceptsServer(t *testing.T) {
	cfg := quietConfig()
	cfg.EventInterval = 20 * time.Millisecond
	cfg.EventBeforeResponse = 2
	s := start(t, cfg)
	cl, err := goami2Login(t, s, "admin", "s3cret")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	events := 0
	for i := range 5 {
		id := "ping-" + string(rune('a'+i))
		send(t, cl, "Ping", id)
		m := await(t, cl, id, &events)
		if !m.IsSuccess() || m.Field("Ping") != "Pong" || m.Field("Timestamp") != "1700000000.123456" {
			t.Errorf("ping response %q", m.String())
		}
		time.Sleep(30 * time.Millisecond)
	}
	send(t, cl, "CoreStatus", "cs")
	m := await(t, cl, "cs", &events)
	if m.Field("CoreCurrentCalls") != "3" || m.Field("CoreStartupTime") != "21:13:20" || m.Field("CoreReloadDate") != "2023-11-14" {
		t.Errorf("corestatus %q", m.String())
	}
	send(t, cl, "Command", "cmd", "Command", "core show channels")
	m = await(t, cl, "cmd", &events)
	out := m.FieldValues("Output")
	if !m.IsSuccess() || len(out) != 7 || out[4] != "3 active channels" {
		t.Errorf("command output %q", out)
	}
	if events < 3 {
		t.Errorf("saw %d events; the interleaving was not exercised", events)
	}
	send(t, cl, "Logoff", "bye")
	m = await(t, cl, "bye", &events)
	if m.Field("Response") != "Goodbye" {
		t.Errorf("logoff %q", m.String())
	}
}

func TestGoami2SeesFailures(t *testing.T) {
	tests := []struct {
		name    string
		fault   Fault
		secret  string
		wantErr string
	}{
		{"wrong secret", FaultNone, "nope", `failed login: "Authentication failed"`},
		{"refused login", FaultRefuseLogin, "s3cret", `failed login: "Authentication failed"`},
		{"no greeting", FaultNoGreeting, "s3cret", "failed read prompt"},
		{"garbage", FaultGarbage, "s3cret", "unexpected prompt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, quietConfig())
			s.SetFault(tc.fault)
			begin := time.Now()
			_, err := goami2Login(t, s, "admin", tc.secret)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if d := time.Since(begin); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestGoami2StalledResponse(t *testing.T) {
	s := start(t, quietConfig())
	cl, err := goami2Login(t, s, "admin", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	s.SetFault(FaultStallMidResponse)
	send(t, cl, "Ping", "p")
	deadline := time.After(500 * time.Millisecond)
	for {
		select {
		case m := <-cl.AllMessages():
			if m.IsResponse() {
				t.Fatalf("got a response despite the stall: %q", m.String())
			}
		case err := <-cl.Err():
			t.Fatalf("connection ended: %v", err)
		case <-deadline:
			return // the client is left waiting, as with a hung Asterisk
		}
	}
}
