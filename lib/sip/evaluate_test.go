package sip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func TestEvaluate(t *testing.T) {
	const dest = "192.0.2.10:5060/udp"
	base := Policy{Accept: Codes{200}, TimeoutState: plugin.Critical}
	withRTT := base
	withRTT.RTT = threshold.Pairf("0.2", "1")
	accept404 := base
	accept404.Accept = Codes{200, 404}
	unknownOnTimeout := base
	unknownOnTimeout.TimeoutState = plugin.Unknown

	cases := []struct {
		name string
		o    Outcome
		p    Policy
		want string // first line
	}{
		{"200 ok", Outcome{Dest: dest, Code: 200, Reason: "OK", RTT: 1234 * time.Microsecond}, base,
			"PBX_SIP OK - SIP 200 OK from 192.0.2.10:5060/udp in 0.0012s | rtt=0.001234s;;;0 code=200;;;0;699"},
		{"slow is warning", Outcome{Dest: dest, Code: 200, Reason: "OK", RTT: 300 * time.Millisecond}, withRTT,
			"PBX_SIP WARNING - SIP 200 OK from 192.0.2.10:5060/udp in 0.3s (warning > 0.2) | rtt=0.3s;0.2;1;0 code=200;;;0;699"},
		{"very slow is critical", Outcome{Dest: dest, Code: 200, Reason: "OK", RTT: 1500 * time.Millisecond}, withRTT,
			"PBX_SIP CRITICAL - SIP 200 OK from 192.0.2.10:5060/udp in 1.5s (critical > 1) | rtt=1.5s;0.2;1;0 code=200;;;0;699"},
		{"404 not accepted", Outcome{Dest: dest, Code: 404, Reason: "Not Found", RTT: time.Millisecond}, base,
			"PBX_SIP CRITICAL - SIP 404 Not Found from 192.0.2.10:5060/udp (accepted: 200) | rtt=0.001s;;;0 code=404;;;0;699"},
		{"404 accepted", Outcome{Dest: dest, Code: 404, Reason: "Not Found", RTT: time.Millisecond}, accept404,
			"PBX_SIP OK - SIP 404 Not Found from 192.0.2.10:5060/udp in 0.001s | rtt=0.001s;;;0 code=404;;;0;699"},
		{"reason cleaned", Outcome{Dest: dest, Code: 503, Reason: "Busy |\r\nevil=1", RTT: time.Millisecond}, base,
			"PBX_SIP CRITICAL - SIP 503 Busy / evil=1 from 192.0.2.10:5060/udp (accepted: 200) | rtt=0.001s;;;0 code=503;;;0;699"},
		{"no reason", Outcome{Dest: dest, Code: 200, RTT: time.Millisecond}, base,
			"PBX_SIP OK - SIP 200 from 192.0.2.10:5060/udp in 0.001s | rtt=0.001s;;;0 code=200;;;0;699"},
		{"refused", Outcome{Dest: "192.0.2.12:5060/tcp", Err: errors.New("connection refused: nothing listens on that port")}, base,
			"PBX_SIP CRITICAL - 192.0.2.12:5060/tcp: connection refused: nothing listens on that port | rtt=U;;;0 code=U;;;0;699"},
		{"silence over udp", Outcome{Dest: dest, TimedOut: true, Waited: 9512 * time.Millisecond, Sent: 5}, withRTT,
			"PBX_SIP CRITICAL - no SIP response after 9.5s from 192.0.2.10:5060/udp (sent 5 times) | rtt=U;0.2;1;0 code=U;;;0;699"},
		{"silence, -t state", Outcome{Dest: dest, TimedOut: true, Waited: 900 * time.Millisecond, Sent: 1}, unknownOnTimeout,
			"PBX_SIP UNKNOWN - no SIP response after 0.9s from 192.0.2.10:5060/udp (sent once) | rtt=U;;;0 code=U;;;0;699"},
		{"no tcp connection", Outcome{Dest: "192.0.2.10:5060/tcp", TimedOut: true, Waited: 2 * time.Second, NotConnected: true}, base,
			"PBX_SIP CRITICAL - no SIP response after 2s from 192.0.2.10:5060/tcp (connection not established) | rtt=U;;;0 code=U;;;0;699"},
		{"silent tcp peer", Outcome{Dest: "192.0.2.10:5060/tcp", TimedOut: true, Waited: 2 * time.Second}, base,
			"PBX_SIP CRITICAL - no SIP response after 2s from 192.0.2.10:5060/tcp | rtt=U;;;0 code=U;;;0;699"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(tc.o, tc.p)
			out := r.Format("PBX_SIP")
			first, _, _ := strings.Cut(out, "\n")
			if first != tc.want {
				t.Fatalf("\n got %q\nwant %q", first, tc.want)
			}
			_, perf, _ := strings.Cut(first, " | ")
			if _, err := plugin.SplitPerfdata(perf); err != nil {
				t.Fatalf("perfdata %q: %v", perf, err)
			}
		})
	}
}

func TestEvaluateProvisional(t *testing.T) {
	r := Evaluate(Outcome{Dest: "d", Code: 200, Reason: "OK", Provisional: []int{100, 180}}, Policy{Accept: Codes{200}})
	if len(r.Long) != 1 || r.Long[0] != "provisional responses first: 100, 180" {
		t.Fatalf("%q", r.Long)
	}
}
