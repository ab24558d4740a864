package sip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

// FuzzParseCodes: whatever --accept is given, the list is either refused
// or sorted, unique, final codes that read back the same.
func FuzzParseCodes(f *testing.F) {
	for _, s := range []string{"200", "200,401,404", " 404 , 200 ", "100", "2xx", ",", "200,,404", "٢٠٠"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCodes(s)
		if err != nil {
			return
		}
		if len(c) == 0 || !slices.IsSorted(c) || len(slices.Compact(slices.Clone(c))) != len(c) {
			t.Fatalf("%q -> %v", s, c)
		}
		for _, n := range c {
			if n < 200 || n > 699 {
				t.Fatalf("%q -> %d", s, n)
			}
		}
		if again, err := ParseCodes(c.String()); err != nil || !slices.Equal(again, c) {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, c, c.String(), again, err)
		}
	})
}

// FuzzRequest: whatever target flags Resolve accepts, the OPTIONS request
// built from them is one request that sipgo's own parser reads back with
// the same Request-URI, From and To users and User-Agent: no flag can
// inject a header or break the request line.
func FuzzRequest(f *testing.F) {
	f.Add("192.0.2.10", 0, "", "", "pbxha", "")
	f.Add("", 5080, "sip:100@pbx.example.net;transport=tcp", "", "", "")
	f.Add("::1", 0, "", "tls", "a%20b", "100")
	f.Add("", 0, "sips:h.example;user=phone", "", "x", "y")
	f.Add("", 0, "sip:h.example\r\nX: y", "", "", "")
	f.Add("", 0, "sip:a;b@h.example;lr", "UDP", "!~*'()&=+$,;?/", "")
	f.Fuzz(func(t *testing.T, host string, port int, uri, transport, from, to string) {
		tg, err := Resolve(Input{Host: host, Port: port, URI: uri, Transport: transport, FromUser: from, ToUser: to})
		if err != nil {
			return
		}
		if tg.Port < 1 || tg.Port > 65535 || (tg.Transport != UDP && tg.Transport != TCP && tg.Transport != TLS) {
			t.Fatalf("%+v", tg)
		}
		ru := tg.RequestURI()
		if strings.ContainsAny(ru, " \t\r\n") {
			t.Fatalf("Request-URI %q", ru)
		}
		var back sipmsg.Uri
		if err := sipmsg.ParseUri(ru, &back); err != nil {
			t.Fatalf("Request-URI %q does not parse: %v", ru, err)
		}
		if back.Host != tg.URI.Host || back.User != tg.URI.User || back.Port != tg.URI.Port {
			t.Fatalf("Request-URI %q reads back as %+v, built from %+v", ru, back, tg.URI)
		}
		const ua = "pbxha-check_pbx_sip/fuzz"
		req := newRequest(tg, netip.MustParseAddrPort("192.0.2.10:5060"), netip.MustParseAddr("192.0.2.1"), ua)
		text := req.String()
		msg, err := sipmsg.ParseMessage([]byte(text))
		if err != nil {
			t.Fatalf("request does not parse: %v\n%s", err, text)
		}
		got, ok := msg.(*sipmsg.Request)
		if !ok || got.Method != sipmsg.OPTIONS || got.Recipient.String() != ru {
			t.Fatalf("request reads back as %v\n%s", msg, text)
		}
		if got.From() == nil || got.From().Address.User != tg.FromUser || got.To() == nil || got.To().Address.User != tg.ToUser {
			t.Fatalf("From/To read back wrong\n%s", text)
		}
		if h := got.GetHeader("User-Agent"); h == nil || h.Value() != ua {
			t.Fatalf("User-Agent read back wrong\n%s", text)
		}
		if n := len(got.Headers()); n != len(req.Headers()) {
			t.Fatalf("%d headers sent, %d read back\n%s", len(req.Headers()), n, text)
		}
	})
}
