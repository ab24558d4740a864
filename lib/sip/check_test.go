package sip_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pbxha/lib/sip/kamailiotest"
)

func TestUsageErrors(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("not a certificate\n"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-H", "127.0.0.1", "--transport", "sctp"}, `flag --transport: "sctp" is not udp, tcp or tls`},
		{[]string{"-H", "127.0.0.1", "-p", "0"}, "flag -p/--port: 0 is not a port"},
		{[]string{"-H", "127.0.0.1", "-p", "70000"}, "flag -p/--port: 70000 is not a port"},
		{[]string{"-H", "127.0.0.1", "--accept", "100"}, `invalid argument "100" for "--accept" flag: 100 is not a final response code (200-699)`},
		{[]string{"-H", "127.0.0.1", "--accept", "ok"}, `invalid argument "ok" for "--accept" flag`},
		{[]string{"-H", "127.0.0.1", "-w", "fast"}, `invalid argument "fast" for "-w, --warning" flag`},
		{[]string{"-u", "sip:a b@127.0.0.1"}, "flag -u/--uri: "},
		{[]string{"-u", "http://127.0.0.1/"}, `flag -u/--uri: "http://127.0.0.1/": scheme "http" is not sip or sips`},
		{[]string{"-H", "bad host!"}, `flag -H/--host: "bad host!" is neither an IP address nor a host name`},
		{[]string{"-H", "127.0.0.1", "--source", "eth0"}, `flag --source: "eth0" is not IP[:port]`},
		{[]string{"-H", "127.0.0.1", "--source", "::1"}, "flag --source: ::1 cannot reach 127.0.0.1 (IPv4 and IPv6)"},
		{[]string{"-H", "127.0.0.1", "--ca", ca}, "holds no PEM certificate"},
		{[]string{"-H", "127.0.0.1", "--ca", "/nonexistent/ca.pem"}, "flag --ca: open /nonexistent/ca.pem: no such file or directory"},
		{[]string{"-H", "127.0.0.1", "--insecure"}, "flag --insecure: applies to transport tls, not udp"},
		{[]string{"-H", "127.0.0.1", "--transport", "tcp", "--sni", "pbx.example.net"}, "flag --sni: applies to transport tls, not tcp"},
		{[]string{"-H", "127.0.0.1", "--transport", "tls", "--sni", "a b"}, `flag --sni: "a b" is not a host name`},
		{[]string{"-H", "127.0.0.1", "--from-user", "a b"}, `flag --from-user: "a b" is not a SIP user part`},
		{[]string{"-H", "127.0.0.1", "--user-agent", "x\ny"}, "flag --user-agent: "},
	}
	for _, tc := range cases {
		code, first, _ := run(t, append(tc.args, "--role", "any")...)
		if code != 3 || !strings.HasPrefix(first, "PBX_SIP UNKNOWN - usage: ") || !strings.Contains(first, tc.want) {
			t.Errorf("%v: exit %d, %q\nwant exit 3 and %q", tc.args, code, first, tc.want)
		}
	}
}

// TestConfigAndRole: without -H the target is [sip] of cluster.toml, and
// the check applies to the master only unless --role says otherwise.
func TestConfigAndRole(t *testing.T) {
	k := kamailiotest.Start(t, kamailiotest.RouteOK)
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	cfg := filepath.Join(dir, "cluster.toml")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cfg, "state_file = \""+state+"\"\n[sip]\nhost = \"127.0.0.1\"\nport = "+strconv.Itoa(k.Port)+"\ntransport = \"tcp\"\n")
	port := strconv.Itoa(k.Port)

	write(state, `{"node":"node1","role":"master","epoch":1}`)
	code, first, _ := run(t, "--config", cfg)
	expect(t, code, first, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:"+port+"/tcp in ")
	// A flag beats the file.
	code, first, _ = run(t, "--config", cfg, "--transport", "udp")
	expect(t, code, first, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:"+port+"/udp in ")

	write(state, `{"node":"node1","role":"slave","epoch":2}`)
	code, first, _ = run(t, "--config", cfg)
	if code != 0 || first != "PBX_SIP OK - skipped: node is slave (applies to master)" {
		t.Fatalf("on the slave: %d %q", code, first)
	}
	code, first, _ = run(t, "--config", cfg, "--role", "any")
	expect(t, code, first, 0, "PBX_SIP OK - SIP 200 OK from 127.0.0.1:"+port+"/tcp in ")

	write(cfg, "state_file = \""+state+"\"\n")
	code, first, _ = run(t, "--config", cfg, "--role", "any")
	expect(t, code, first, 3, "PBX_SIP UNKNOWN - usage: no SIP server: give -H/--host or -u/--uri, or set [sip] host in "+cfg)
	write(cfg, "[sip]\nhost = \"127.0.0.1\"\ntransport = \"sctp\"\n")
	code, first, _ = run(t, "--config", cfg, "--role", "any")
	expect(t, code, first, 3, "PBX_SIP UNKNOWN - usage: "+cfg+`: sip.transport: "sctp" is not udp, tcp or tls`)
	write(cfg, "[sip]\nhost = \"pbx..example\"\n")
	code, first, _ = run(t, "--config", cfg, "--role", "any")
	expect(t, code, first, 3, "PBX_SIP UNKNOWN - usage: "+cfg+`: sip.host: "pbx..example" is neither an IP address nor a host name`)
}
