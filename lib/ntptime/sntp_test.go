package ntptime

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"pbxha/lib/plugin"
)

func TestParseServer(t *testing.T) {
	cases := []struct {
		in, addr, err string
	}{
		{"192.0.2.1", "192.0.2.1:123", ""},
		{"192.0.2.1:1123", "192.0.2.1:1123", ""},
		{"ntp.example.net", "ntp.example.net:123", ""},
		{"ntp.example.net:4123", "ntp.example.net:4123", ""},
		{"2001:db8::1", "[2001:db8::1]:123", ""},
		{"[2001:db8::1]", "[2001:db8::1]:123", ""},
		{"[2001:db8::1]:999", "[2001:db8::1]:999", ""},
		{"", "", "is not host[:port]"},
		{" 192.0.2.1", "", "is not host[:port]"},
		{"192.0.2.1:0", "", "is not a number from 1 to 65535"},
		{"192.0.2.1:ntp", "", "is not a number from 1 to 65535"},
		{"192.0.2.1:70000", "", "is not a number from 1 to 65535"},
		{"[nope]", "", "is not an IPv6 address in brackets"},
		{"a b", "", "neither an IP address nor a host name"},
		{"host/x:1", "", "neither an IP address nor a host name"},
		{":123", "", "neither an IP address nor a host name"},
		{"a:b:c", "", "is not host[:port]"},
	}
	for _, tc := range cases {
		s, err := ParseServer(tc.in, DefaultPort)
		switch {
		case tc.err == "" && (err != nil || s.Addr != tc.addr || s.Name != tc.in):
			t.Errorf("%q: %+v %v, want %q", tc.in, s, err, tc.addr)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

// reply is what a scripted NTP server answers.
type reply struct {
	leap      ntp.LeapIndicator
	stratum   uint8
	refID     string // 4 bytes: a kiss code at stratum 0, else anything
	offset    time.Duration
	refAge    time.Duration // how long ago the server's clock was set
	rootDisp  float64       // seconds
	precision int8          // log2 seconds; 0 means the usual -20
	silent    bool
	mismatch  bool // answers some other request
}

func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// packet builds an NTPv4 server reply (RFC 5905 figure 8) to req.
func (r reply) packet(req []byte) []byte {
	b := make([]byte, 48)
	b[0] = byte(r.leap)<<6 | 4<<3 | 4 // version 4, mode server
	b[1] = r.stratum
	b[2] = 6
	b[3] = 0xEC // precision 2^-20
	if r.precision != 0 {
		b[3] = byte(r.precision)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(r.rootDisp*65536))
	copy(b[12:16], r.refID)
	now := time.Now().Add(r.offset)
	binary.BigEndian.PutUint64(b[16:], ntpTime(now.Add(-r.refAge)))
	copy(b[24:32], req[40:48]) // origin: the client's transmit timestamp
	if r.mismatch {
		b[31]++
	}
	binary.BigEndian.PutUint64(b[32:], ntpTime(now))
	binary.BigEndian.PutUint64(b[40:], ntpTime(now))
	return b
}

// scriptedConn is the client's side of a UDP exchange with a scripted
// server: what is written is the request, what is read is answer(request).
type scriptedConn struct {
	answer func(req []byte) []byte
	req    []byte
}

func (c *scriptedConn) Read(b []byte) (int, error) {
	if c.answer == nil || c.req == nil {
		return 0, os.ErrDeadlineExceeded
	}
	return copy(b, c.answer(c.req)), nil
}
func (c *scriptedConn) Write(b []byte) (int, error) {
	c.req = append([]byte(nil), b...)
	return len(b), nil
}
func (c *scriptedConn) Close() error { return nil }
func (c *scriptedConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *scriptedConn) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 123}
}
func (c *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

func scripted(answer func(req []byte) []byte) dialFunc {
	return func(context.Context, string) (net.Conn, error) { return &scriptedConn{answer: answer}, nil }
}

// TestQueryScriptedServer runs beevik/ntp's real parsing and validation on
// replies a misbehaving server would send, through to the check's state.
func TestQueryScriptedServer(t *testing.T) {
	cases := []struct {
		name    string
		r       reply
		state   plugin.State
		offset  float64 // expected, ±0.05 s; NaN: unknown
		summary string
	}{
		{"healthy", reply{stratum: 2, refID: "\xc0\x00\x02\x63"}, plugin.OK, 0, ": offset "},
		{"ahead 300 s", reply{stratum: 2, offset: 300 * time.Second}, plugin.Critical, 300, "(critical > 1)"},
		{"behind 0.7 s", reply{stratum: 2, offset: -700 * time.Millisecond}, plugin.Warning, -0.7, "(warning > 0.5)"},
		{"leap alarm", reply{stratum: 3, leap: ntp.LeapNotInSync}, plugin.Warning, 0, "server not synchronised (leap indicator 3, alarm)"},
		{"stratum 16", reply{stratum: 16, leap: ntp.LeapNotInSync}, plugin.Warning, 0, "server not synchronised (stratum 16)"},
		{"kiss-o'-death", reply{stratum: 0, refID: "RATE"}, plugin.Warning, math.NaN(), "kiss-o'-death RATE"},
		{"kiss code is cleaned", reply{stratum: 0, refID: "A|BC"}, plugin.Warning, math.NaN(), "kiss-o'-death A/BC (server"},
		{"unprintable kiss code", reply{stratum: 0, refID: "\x01\x02\n\x00"}, plugin.Warning, math.NaN(), ": kiss-o'-death (server refuses to serve time)"},
		{"stale reference", reply{stratum: 2, refAge: 48 * time.Hour}, plugin.Warning, 0, "unusable for synchronisation: server clock not fresh"},
		{"dispersed", reply{stratum: 2, rootDisp: 20}, plugin.Warning, 0, "unusable for synchronisation: invalid dispersion"},
		{"silent", reply{silent: true}, plugin.Critical, math.NaN(), "no response within"},
		{"answer to another request", reply{stratum: 2, mismatch: true}, plugin.Critical, math.NaN(), "192.0.2.1: bad reply: server response didn't match request"},
		// found by FuzzNTPReply: beevik/ntp v1.6.0 panics on precision -128
		{"precision -128", reply{stratum: 2, precision: -128}, plugin.Critical, math.NaN(), "192.0.2.1: bad reply: the NTP library could not parse it (runtime error: negative shift amount)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var answer func([]byte) []byte
			if !tc.r.silent {
				answer = tc.r.packet
			}
			s := query(context.Background(), Server{Name: "192.0.2.1", Addr: "192.0.2.1:123"}, time.Second, scripted(answer))
			r := EvaluateServer(s, policy(), "")
			if r.State != tc.state || !strings.Contains(r.Summary, tc.summary) {
				t.Fatalf("got %s %q, want %s containing %q (sample %+v)", r.State, r.Summary, tc.state, tc.summary, s)
			}
			off := r.Perf[0]
			if math.IsNaN(tc.offset) != off.Unknown || !off.Unknown && math.Abs(off.Value-tc.offset) > 0.05 {
				t.Fatalf("offset perf %s, want %v", off, tc.offset)
			}
		})
	}
}

// A socket that never answers: the server's result comes back within the
// wait, as a timeout, and the check does not hang.
func TestQuerySilentSocket(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	addr := silent.LocalAddr().String()
	samples := QueryAll(context.Background(), []Server{{Name: addr, Addr: addr}}, 300*time.Millisecond)
	s := samples[0]
	if s.Err == nil || !s.TimedOut {
		t.Fatalf("want a timeout, got %+v", s)
	}
	if s.Waited > 2*time.Second {
		t.Fatalf("waited %s for a 300ms query", s.Waited)
	}
}

func TestQueryRefused(t *testing.T) {
	c, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := c.LocalAddr().String()
	c.Close() // nothing listens there now: the kernel answers port unreachable
	s := QueryAll(context.Background(), []Server{{Name: addr, Addr: addr}}, time.Second)[0]
	r := EvaluateServer(s, policy(), "")
	if r.State != plugin.Critical || !strings.HasSuffix(r.Summary, "no response: connection refused (nothing listens there)") {
		t.Fatalf("%s %q (%v)", r.State, r.Summary, s.Err)
	}
}
