package rsyncd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

func TestEvaluate(t *testing.T) {
	listed := Listing{Greeting: Greeting{Protocol: 32, Sub: 0}, Protocol: 32, Connect: 2 * time.Millisecond,
		Modules: []Module{{Name: "pbx"}, {Name: "voicemail"}}}
	base := func() Observation {
		return Observation{Addr: "198.51.100.2:873", Listing: listed, Greeted: true, Modules: []ModuleCheck{{Name: "pbx", Listed: true}}}
	}
	withCanary := func(c Canary) Observation {
		o := base()
		o.Canary = &c
		return o
	}
	p := Policy{Connect: threshold.Pairf("1", "3"), Transfer: threshold.Pairf("2", "5"), TimeoutState: plugin.Critical}
	timeoutUnknown := p
	timeoutUnknown.TimeoutState = plugin.Unknown
	cases := []struct {
		name  string
		o     Observation
		p     Policy
		state plugin.State
		first string
	}{
		{"listed", base(), p, plugin.OK,
			"PBX_RSYNC OK - rsyncd 198.51.100.2:873 protocol 32: module pbx listed | connect_time=0.002s;1;3;0 protocol=32"},
		{"canary fast", withCanary(Canary{Wrote: true, Took: 300 * time.Millisecond, Bytes: 70}), p, plugin.OK,
			"PBX_RSYNC OK - rsyncd 198.51.100.2:873 protocol 32: module pbx listed, canary written and read back in 0.300s | connect_time=0.002s;1;3;0 protocol=32 transfer_time=0.3s;2;5;0"},
		{"canary slow", withCanary(Canary{Wrote: true, Took: 2500 * time.Millisecond}), p, plugin.Warning,
			"PBX_RSYNC WARNING - rsyncd 198.51.100.2:873 protocol 32: module pbx listed, canary written and read back in 2.500s (warning > 2) | connect_time=0.002s;1;3;0 protocol=32 transfer_time=2.5s;2;5;0"},
		{"canary very slow, read-only", withCanary(Canary{Took: 6 * time.Second}), p, plugin.Critical,
			"PBX_RSYNC CRITICAL - rsyncd 198.51.100.2:873 protocol 32: module pbx listed, canary read from the read-only module in 6.000s (critical > 5) | connect_time=0.002s;1;3;0 protocol=32 transfer_time=6s;2;5;0"},
		{"canary out of time", withCanary(Canary{Took: time.Second, Err: &StepError{Step: "writing .pbxha-canary to module pbx with rsync", Err: context.DeadlineExceeded, Timeout: true, Waited: time.Second}}), timeoutUnknown, plugin.Unknown,
			"PBX_RSYNC UNKNOWN - rsyncd 198.51.100.2:873 protocol 32: module pbx listed, canary: writing .pbxha-canary to module pbx with rsync: no answer within 1.0s | connect_time=0.002s;1;3;0 protocol=32 transfer_time=U;2;5;0"},
		{"canary failed", withCanary(Canary{Err: &CanaryError{Action: "writing .pbxha-canary to module pbx with rsync", Exit: 23, Output: "rsync: [receiver] mkstemp \"/x/..pbxha-canary.Ab\" failed: Permission denied (13)"}}), p, plugin.Critical,
			`PBX_RSYNC CRITICAL - rsyncd 198.51.100.2:873 protocol 32: module pbx listed, canary: writing .pbxha-canary to module pbx with rsync failed (rsync exit 23): rsync: [receiver] mkstemp "/x/..pbxha-canary.Ab" failed: Permission denied (13) | connect_time=0.002s;1;3;0 protocol=32 transfer_time=U;2;5;0`},
		{"no modules", Observation{Addr: "a:873", Listing: Listing{Greeting: Greeting{Protocol: 31}, Protocol: 31, Connect: time.Millisecond}, Greeted: true}, p, plugin.OK,
			"PBX_RSYNC OK - rsyncd a:873 protocol 31: no modules listed | connect_time=0.001s;1;3;0 protocol=31"},
		{"greeting slow", func() Observation { o := base(); o.Listing.Connect = 3500 * time.Millisecond; return o }(), p, plugin.Critical,
			"PBX_RSYNC CRITICAL - rsyncd 198.51.100.2:873 protocol 32: greeting after 3.500s (critical > 3), module pbx listed | connect_time=3.5s;1;3;0 protocol=32"},
		{"refused", Observation{Addr: "a:873", ListErr: &StepError{Step: "connecting to a:873", Err: errors.New("connection refused")}}, p, plugin.Critical,
			"PBX_RSYNC CRITICAL - connecting to a:873: connection refused"},
		{"module session out of time", func() Observation {
			o := base()
			o.Modules[0].Err = &StepError{Step: "logging in to module pbx on a:873 as u", Timeout: true, Waited: 800 * time.Millisecond}
			return o
		}(), timeoutUnknown, plugin.Unknown,
			"PBX_RSYNC UNKNOWN - rsyncd 198.51.100.2:873 protocol 32: logging in to module pbx on a:873 as u: no answer within 0.8s | connect_time=0.002s;1;3;0 protocol=32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(tc.o, tc.p)
			checkOutput(t, r)
			first, _, _ := strings.Cut(r.Format("PBX_RSYNC"), "\n")
			if r.Overall() != tc.state || first != tc.first {
				t.Fatalf("%s\n%q\nwant %s\n%q", r.Overall(), first, tc.state, tc.first)
			}
		})
	}
}
