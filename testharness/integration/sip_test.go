package integration

import (
	"context"
	"regexp"
	"testing"
	"time"

	"pbxha/testharness/lab"
)

// sipMatch asserts exit code, first line (a regexp) and what every plugin
// run must satisfy (helpers' expect: no stderr, valid perfdata).
func sipMatch(t *testing.T, r Run, code int, first string) {
	t.Helper()
	t.Logf("%s", r.First)
	expect(t, r, code, "PBX_SIP ")
	if !regexp.MustCompile(first).MatchString(r.First) {
		t.Fatalf("first line %q does not match %s\n%s", r.First, first, r.Out)
	}
}

// TestSIPLab runs check_pbx_sip from infra (the phones' side of the
// telephony network) against the lab's Kamailio on node1, by the VIP and by
// the node address, over UDP and TCP; against node2, which runs no SIP
// service while it is the slave; through Kamailio answering other codes
// and not at all (pbxlab fault sip-code); and on the nodes themselves
// through their cluster.toml and role.
func TestSIPLab(t *testing.T) {
	l := useLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Setenv("PBXHA_CONFIG", "") // runIn passes the test's environment on
	node1, node2 := lab.Hosts[0].TelIP, lab.Hosts[1].TelIP
	q := regexp.QuoteMeta
	probe := func(args ...string) Run {
		t.Helper()
		return runIn(t, l, lab.Infra, append([]string{"check_pbx_sip", "--role", "any"}, args...)...)
	}

	t.Run("master answers 200", func(t *testing.T) {
		for _, host := range []string{lab.VIP, node1} {
			for _, tp := range []string{"udp", "tcp"} {
				r := probe("-H", host, "--transport", tp)
				sipMatch(t, r, 0, `^PBX_SIP OK - SIP 200 OK from `+q(host)+`:5060/`+tp+` in [0-9.]+s \| rtt=[0-9.]+s;;;0 code=200;;;0;699$`)
			}
		}
		// From infra's own address, named; and a Request-URI given whole.
		sipMatch(t, probe("-H", lab.VIP, "--source", lab.InfraTelIP, "-w", "1", "-c", "2"), 0,
			`^PBX_SIP OK - SIP 200 OK from `+q(lab.VIP)+`:5060/udp in [0-9.]+s \| rtt=[0-9.]+s;1;2;0 code=200;;;0;699$`)
		sipMatch(t, probe("-u", "sip:100@"+lab.VIP+";transport=tcp"), 0,
			`^PBX_SIP OK - SIP 200 OK from `+q(lab.VIP)+`:5060/tcp in `)
	})

	t.Run("slave has no SIP service", func(t *testing.T) {
		start := time.Now()
		sipMatch(t, probe("-H", node2), 2, `^PBX_SIP CRITICAL - `+q(node2)+`:5060/udp: ICMP port unreachable: nothing listens on that port \| rtt=U;;;0 code=U;;;0;699$`)
		sipMatch(t, probe("-H", node2, "--transport", "tcp"), 2, `^PBX_SIP CRITICAL - `+q(node2)+`:5060/tcp: connection refused: nothing listens on that port \| `)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("closed ports took %v to report (-t 10)", el)
		}
	})

	t.Run("on the nodes through cluster.toml", func(t *testing.T) {
		r := runIn(t, l, lab.Node1, "check_pbx_sip", "--config", l.ConfigPath(lab.Node1))
		sipMatch(t, r, 0, `^PBX_SIP OK - SIP 200 OK from `+q(lab.VIP)+`:5060/udp in `)
		r = runIn(t, l, lab.Node2, "check_pbx_sip", "--config", l.ConfigPath(lab.Node2))
		sipMatch(t, r, 0, `^PBX_SIP OK - skipped: node is slave \(applies to master\)$`)
	})

	t.Run("other codes and --accept", func(t *testing.T) {
		if err := l.Fault(ctx, "sip-code", lab.Node1, "404"); err != nil {
			t.Fatal(err)
		}
		for _, tp := range []string{"udp", "tcp"} {
			sipMatch(t, probe("-H", lab.VIP, "--transport", tp), 2,
				`^PBX_SIP CRITICAL - SIP 404 Not Found from `+q(lab.VIP)+`:5060/`+tp+` \(accepted: 200\) \| rtt=[0-9.]+s;;;0 code=404;;;0;699$`)
			sipMatch(t, probe("-H", lab.VIP, "--transport", tp, "--accept", "200,404"), 0,
				`^PBX_SIP OK - SIP 404 Not Found from `+q(lab.VIP)+`:5060/`+tp+` in [0-9.]+s \| rtt=[0-9.]+s;;;0 code=404;;;0;699$`)
		}
		if err := l.Fault(ctx, "sip-code", lab.Node1, "503"); err != nil {
			t.Fatal(err)
		}
		sipMatch(t, probe("-H", lab.VIP, "--accept", "200,404"), 2,
			`^PBX_SIP CRITICAL - SIP 503 Service Unavailable from `+q(lab.VIP)+`:5060/udp \(accepted: 200,404\) \| `)
	})

	t.Run("silence", func(t *testing.T) {
		if err := l.Fault(ctx, "sip-code", lab.Node1, "0"); err != nil {
			t.Fatal(err)
		}
		// -t 3: the probe waits 2.7 s; over UDP that is the request and
		// its Timer A retransmissions at 0.5 s and 1.5 s.
		sipMatch(t, probe("-H", lab.VIP, "-t", "3"), 2,
			`^PBX_SIP CRITICAL - no SIP response after 2\.[6-9]s from `+q(lab.VIP)+`:5060/udp \(sent 3 times\) \| rtt=U;;;0 code=U;;;0;699$`)
		sipMatch(t, probe("-H", lab.VIP, "-t", "3", "--transport", "tcp"), 2,
			`^PBX_SIP CRITICAL - no SIP response after 2\.[6-9]s from `+q(lab.VIP)+`:5060/tcp \| `)
		sipMatch(t, probe("-H", lab.VIP, "-t", "2:unknown"), 3,
			`^PBX_SIP UNKNOWN - no SIP response after 1\.[7-9]s from `)
		if err := l.Fault(ctx, "sip-code", lab.Node1, "200"); err != nil {
			t.Fatal(err)
		}
		sipMatch(t, probe("-H", lab.VIP), 0, `^PBX_SIP OK - SIP 200 OK from `)
	})
}
