package sip

import (
	"strings"
	"testing"
)

type resolveCase struct {
	name string
	in   Input
	uri  string // Request-URI
	dest string
	to   string
	host string // TLS server name: the Request-URI's host
}

func TestResolve(t *testing.T) {
	cases := []resolveCase{
		{"host", Input{Host: "192.0.2.10"}, "sip:192.0.2.10:5060", "192.0.2.10:5060/udp", "", "192.0.2.10"},
		{"tcp adds transport", Input{Host: "pbx.example.net", Transport: "TCP"}, "sip:pbx.example.net:5060;transport=tcp", "pbx.example.net:5060/tcp", "", "pbx.example.net"},
		{"tls port", Input{Host: "::1", Transport: "tls"}, "sip:[::1]:5061;transport=tls", "[::1]:5061/tls", "", "::1"},
		{"bracketed v6", Input{Host: "[2001:db8::1]", Port: 5080}, "sip:[2001:db8::1]:5080", "[2001:db8::1]:5080/udp", "", "2001:db8::1"},
		{"to user", Input{Host: "192.0.2.10", ToUser: "100"}, "sip:100@192.0.2.10:5060", "192.0.2.10:5060/udp", "100", "192.0.2.10"},
		{"uri as given", Input{URI: "sip:100@pbx.example.net"}, "sip:100@pbx.example.net", "pbx.example.net:5060/udp", "100", "pbx.example.net"},
		{"sips is tls", Input{URI: "sips:pbx.example.net"}, "sips:pbx.example.net", "pbx.example.net:5061/tls", "", "pbx.example.net"},
		{"uri port and transport, -H elsewhere", Input{URI: "sip:pbx.example.net:5080;transport=TCP", Host: "192.0.2.10"},
			"sip:pbx.example.net:5080;transport=TCP", "192.0.2.10:5080/tcp", "", "pbx.example.net"},
		{"-p beats uri port", Input{URI: "sip:h.example:5080", Port: 5070}, "sip:h.example:5080", "h.example:5070/udp", "", "h.example"},
		{"--to-user only in To with -u", Input{URI: "sip:100@h.example", ToUser: "200"}, "sip:100@h.example", "h.example:5060/udp", "200", "h.example"},
		{"same transport twice", Input{URI: "sip:h.example;transport=tcp", Transport: "tcp"}, "sip:h.example;transport=tcp", "h.example:5060/tcp", "", "h.example"},
		{"user=phone param", Input{URI: "sip:+4930123@gw.example;user=phone"}, "sip:+4930123@gw.example;user=phone", "gw.example:5060/udp", "+4930123", "gw.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.ServerName() != tc.host {
				t.Fatalf("server name %q, want %q", got.ServerName(), tc.host)
			}
			if got.RequestURI() != tc.uri || got.Dest() != tc.dest || got.ToUser != tc.to || got.FromUser != DefaultFromUser {
				t.Fatalf("got %q %q to=%q from=%q, want %q %q to=%q", got.RequestURI(), got.Dest(), got.ToUser, got.FromUser, tc.uri, tc.dest, tc.to)
			}
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	cases := []struct {
		in   Input
		want string
	}{
		{Input{}, "no target: give -H/--host or -u/--uri"},
		{Input{Host: "a b"}, "flag -H/--host: "},
		{Input{Host: "-bad.example"}, "flag -H/--host: "},
		{Input{Host: "1.2.3"}, "flag -H/--host: "},
		{Input{Host: "fe80::1%eth0"}, "flag -H/--host: "},
		{Input{Host: "h.example", Transport: "sctp"}, `flag --transport: "sctp" is not udp, tcp or tls`},
		{Input{Host: "h.example", Port: 70000}, "flag -p/--port: 70000"},
		{Input{Host: "h.example", FromUser: "a b"}, "flag --from-user: "},
		{Input{Host: "h.example", ToUser: "a@b"}, "flag --to-user: "},
		{Input{Host: "h.example", ToUser: strings.Repeat("1", 65)}, "flag --to-user: "},
		{Input{URI: "tel:+4930123"}, `scheme "tel" is not sip or sips`},
		{Input{URI: "sip:u:secret@h.example"}, "password"},
		{Input{URI: "sip:h.example?Subject=x"}, "headers"},
		{Input{URI: "sip:h.example\r\nX-Evil: 1"}, "control"},
		{Input{URI: "sip:h.example;transport=sctp"}, "transport=sctp is not udp, tcp or tls"},
		{Input{URI: "sip:h.example;transport=tcp", Transport: "udp"}, "contradicts"},
		{Input{URI: "sips:h.example", Transport: "tcp"}, "sips: URI needs tls"},
		{Input{URI: "sip://h.example"}, "no // after the scheme"},
		{Input{URI: "sip:h.example:99999"}, "port 99999"},
		{Input{URI: "sip:"}, "neither an IP address nor a host name"},
		{Input{URI: "s"}, "not a SIP URI"},
		{Input{URI: "sip:h.example:abc"}, "not a SIP URI"},
		{Input{URI: "sip:bad_host"}, "neither an IP address nor a host name"},
	}
	for _, tc := range cases {
		_, err := Resolve(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseCodes(t *testing.T) {
	good := map[string]string{
		"200":         "200",
		"200,401,404": "200,401,404",
		" 404 , 200 ": "200,404",
		"486,200,486": "200,486",
		"699":         "699",
	}
	for in, want := range good {
		c, err := ParseCodes(in)
		if err != nil || c.String() != want {
			t.Errorf("%q: %v %v, want %s", in, c, err, want)
		}
	}
	bad := map[string]string{
		"":        "empty",
		"200,":    "empty item",
		"100":     "not a final response code",
		"180":     "not a final response code",
		"700":     "not a final response code",
		"2xx":     "not a SIP response code",
		"+200":    "not a SIP response code",
		"2000":    "not a SIP response code",
		"200;404": "not a SIP response code",
	}
	for in, want := range bad {
		if _, err := ParseCodes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	if !(Codes{200, 404}).Contains(404) || (Codes{200}).Contains(404) {
		t.Error("Contains")
	}
}
