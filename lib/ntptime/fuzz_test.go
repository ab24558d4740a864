package ntptime

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/facebook/time/ntp/chrony"

	"pbxha/lib/plugin"
)

// checkOutput asserts what every result must be, whatever a peer sent: one
// first line with a known state and valid perfdata.
func checkOutput(t *testing.T, r plugin.Result) {
	out := r.Format("PBX_TIME")
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "PBX_TIME "+r.Overall().String()) {
		t.Fatalf("first line %q", first)
	}
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("perfdata %q: %v", perf, err)
		}
	}
	if strings.Count(first, "|") > 1 {
		t.Fatalf("a '|' from the peer leaked into %q", first)
	}
}

// FuzzNTPReply feeds arbitrary server replies through beevik/ntp and the
// evaluation. The reply's origin timestamp is patched to match the request,
// as a real server's would, so the fuzzer gets past that first check.
func FuzzNTPReply(f *testing.F) {
	req := make([]byte, 48)
	for _, r := range []reply{
		{stratum: 2, refID: "\xc0\x00\x02\x63"},
		{stratum: 0, refID: "RATE"},
		{stratum: 16, leap: 3},
		{stratum: 1, refID: "GPS\x00", offset: 300 * time.Second},
		{stratum: 2, refAge: 72 * time.Hour, rootDisp: 30},
	} {
		f.Add(r.packet(req))
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 68))
	f.Fuzz(func(t *testing.T, data []byte) {
		answer := func(req []byte) []byte {
			b := append([]byte(nil), data...)
			if len(b) >= 32 && len(req) >= 48 {
				copy(b[24:32], req[40:48])
			}
			return b
		}
		s := query(context.Background(), Server{Name: "192.0.2.1", Addr: "192.0.2.1:123"}, time.Second, scripted(answer))
		p := policy()
		p.Verbose = 1
		checkOutput(t, Evaluate([]Sample{s}, nil, p))
		checkOutput(t, Evaluate([]Sample{s, s}, nil, p))
	})
}

// rw is a chronyd that answers one datagram.
type rw struct{ reply []byte }

func (c *rw) Write(b []byte) (int, error) { return len(b), nil }
func (c *rw) Read(b []byte) (int, error)  { return copy(b, c.reply), nil }

// trackingReply builds chronyd's reply to a tracking request (candm.h:
// RPY_TRACKING, protocol version 6).
func trackingReply(refID uint32, ip [4]byte, stratum, leap uint16, correction uint32) []byte {
	var b bytes.Buffer
	head := chrony.ReplyHead{Version: 6, PKTType: 2, Command: 33, Reply: 5, Status: 0, Sequence: 1}
	binary.Write(&b, binary.BigEndian, head)
	binary.Write(&b, binary.BigEndian, refID)
	var addr [16]byte
	copy(addr[:], ip[:])
	b.Write(addr[:])
	binary.Write(&b, binary.BigEndian, uint16(1)) // IPv4
	binary.Write(&b, binary.BigEndian, uint16(0))
	binary.Write(&b, binary.BigEndian, stratum)
	binary.Write(&b, binary.BigEndian, leap)
	b.Write(make([]byte, 12))                      // reference time
	binary.Write(&b, binary.BigEndian, correction) // current correction, chrony's float
	b.Write(make([]byte, 4*9))
	return b.Bytes()
}

// FuzzChronyTracking feeds arbitrary chronyd replies through the
// facebook/time decoder and the evaluation.
func FuzzChronyTracking(f *testing.F) {
	f.Add(trackingReply(0xC0000201, [4]byte{192, 0, 2, 1}, 3, 0, 0))
	f.Add(trackingReply(0x7F7F0101, [4]byte{}, 8, 0, 0))
	f.Add(trackingReply(0, [4]byte{}, 0, 3, 0xffffffff))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := readTracking(&rw{reply: data})
		st := LocalStatus{Daemon: "chronyd", Where: "127.0.0.1:323", Err: err}
		if err == nil {
			st = trackingStatus(tr)
		}
		p := policy()
		p.Verbose = 1
		checkOutput(t, Evaluate([]Sample{{Server: "192.0.2.1", Stratum: 2}}, &st, p))
	})
}

func TestTrackingReplyDecodes(t *testing.T) {
	tr, err := readTracking(&rw{reply: trackingReply(0xC0000201, [4]byte{192, 0, 2, 1}, 3, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if st := trackingStatus(tr); !st.Synced || st.Stratum != 3 || st.Reference != "192.0.2.1" {
		t.Fatalf("%+v", st)
	}
}
