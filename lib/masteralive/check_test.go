package masteralive

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/plugin"
)

func execute(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("PBXHA_CONFIG", "")
	var out bytes.Buffer
	code := plugin.Execute(Spec(), args, &out)
	first, _, _ := strings.Cut(out.String(), "\n")
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Fatalf("perfdata %q: %v", perf, err)
		}
	}
	return code, first, out.String()
}

// listen opens a TCP listener on addr; greet says whether it accepts and
// greets (a live sshd) or never accepts (a stopped one: the kernel still
// completes the handshake).
func listen(t *testing.T, addr string, greet bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if greet {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("SSH-2.0-pbxha-test\r\n"))
				c.Close()
			}
		}()
	}
	return ln.Addr().(*net.TCPAddr).Port
}

func TestCheckOverLoopback(t *testing.T) {
	live := listen(t, "127.0.0.1:0", true)
	frozen := listen(t, "127.0.0.1:0", false)
	p := strconv.Itoa
	fast := []string{"--role", "any", "--interval", "10ms", "--probe-timeout", "150ms"}
	cases := []struct {
		name  string
		args  []string
		code  int
		first string
	}{
		{"tcp: listening and refusing both answer", []string{"--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.2", "--method", "tcp", "--port", p(live)}, 0,
			"PBX_MASTER_ALIVE OK - master reachable on telephony 127.0.0.1 and cluster 127.0.0.2 | tel_rta="},
		{"tcp: a stopped listener still completes the handshake", []string{"--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.1", "--method", "tcp", "--port", p(frozen)}, 0,
			"PBX_MASTER_ALIVE OK - "},
		{"banner: the stopped listener is hung", []string{"--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.1", "--method", "banner", "--port", p(frozen), "--master", "node1"}, 2,
			"PBX_MASTER_ALIVE CRITICAL - master node1 unreachable on telephony 127.0.0.1 port " + p(frozen) + " and cluster 127.0.0.1 port " + p(frozen) + ": it accepts connections but does not greet (hung?) | tel_rta=U;;;0 tel_pl=100%;;;0;100 clu_rta=U;;;0 clu_pl=100%;;;0;100"},
		{"banner: one path greets", []string{"--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.1", "--method", "banner", "--port", "tel:" + p(live), "--port", "clu:" + p(frozen)}, 1,
			"PBX_MASTER_ALIVE WARNING - master unreachable on cluster 127.0.0.1 port " + p(frozen) + " (port " + p(frozen) + ": connected, but no greeting within 150ms), reachable on telephony 127.0.0.1 port " + p(live) + ": cluster path down"},
		{"banner: a refusal is no greeting", []string{"--tel-ip", "127.0.0.2", "--clu-ip", "127.0.0.2", "--method", "banner", "--port", p(live)}, 2,
			"PBX_MASTER_ALIVE CRITICAL - master unreachable on telephony 127.0.0.2 port " + p(live) + " and cluster 127.0.0.2 port " + p(live) + " |"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, first, out := execute(t, append(tc.args, fast...)...)
			if code != tc.code || !strings.HasPrefix(first, tc.first) {
				t.Fatalf("got %d %q\nwant %d %q\n%s", code, first, tc.code, tc.first, out)
			}
			// 2 probes apart by 10ms + 150ms each: well under a second.
			if el := time.Since(start); el > 600*time.Millisecond {
				t.Fatalf("took %v", el)
			}
		})
	}
}

func TestCheckICMPLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ICMP needs root or CAP_NET_RAW here")
	}
	code, first, out := execute(t, "--role", "any", "--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.3", "-v")
	if code != 0 || !strings.HasPrefix(first, "PBX_MASTER_ALIVE OK - master reachable on telephony 127.0.0.1 and cluster 127.0.0.3 | tel_rta=0.") || !strings.Contains(out, "icmp 127.0.0.1 (") {
		t.Fatalf("%d %q\n%s", code, first, out)
	}
}

// writeCluster writes a two-node cluster.toml for node2 (a slave) whose
// master node1 lives on loopback addresses.
func writeCluster(t *testing.T, role, node1Tel, node1Clu string) string {
	t.Helper()
	dir := t.TempDir()
	sf := filepath.Join(dir, "state.json")
	if err := cluster.WriteState(sf, cluster.State{Node: "node2", Role: role, Epoch: 1, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	text := `node = "node2"
state_file = "` + sf + `"
[[nodes]]
name = "node1"
telephony_ip = "` + node1Tel + `"
cluster_ip = "` + node1Clu + `"
[[nodes]]
name = "node2"
telephony_ip = "127.0.0.12"
`
	p := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckFromClusterConfig(t *testing.T) {
	live := strconv.Itoa(listen(t, "127.0.0.1:0", true))
	cfg := writeCluster(t, cluster.Slave, "127.0.0.1", "127.0.0.1")
	code, first, out := execute(t, "--config", cfg, "--method", "banner", "--port", live)
	if code != 0 || !strings.HasPrefix(first, "PBX_MASTER_ALIVE OK - master node1 reachable on telephony 127.0.0.1 and cluster 127.0.0.1 |") {
		t.Fatalf("%d %q\n%s", code, first, out)
	}
	// A flag overrides one address; the name still comes from the file.
	code, first, _ = execute(t, "--config", cfg, "--method", "tcp", "--port", live, "--clu-ip", "127.0.0.5")
	if code != 0 || !strings.HasPrefix(first, "PBX_MASTER_ALIVE OK - master node1 reachable on telephony 127.0.0.1 and cluster 127.0.0.5 |") {
		t.Fatalf("%d %q", code, first)
	}
	// On the master the check does not apply.
	master := writeCluster(t, cluster.Master, "127.0.0.1", "127.0.0.1")
	if code, first, _ := execute(t, "--config", master); code != 0 || first != "PBX_MASTER_ALIVE OK - skipped: node is master (applies to slave)" {
		t.Fatalf("on the master: %d %q", code, first)
	}
	// The peer without a cluster IP: say which key and which flag.
	noClu := writeCluster(t, cluster.Slave, "127.0.0.1", "")
	if code, first, _ := execute(t, "--config", noClu, "--method", "tcp", "--port", live); code != 3 || first != "PBX_MASTER_ALIVE UNKNOWN - usage: the peer has no cluster_ip in cluster.toml: set it or give --clu-ip" {
		t.Fatalf("no cluster_ip: %d %q", code, first)
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--tel-ip", "node1"}, `flag --tel-ip: "node1" is not an IP address`},
		{[]string{"--method", "udp"}, `"udp" is not a method (icmp, tcp, both, banner)`},
		{[]string{"--method", "tcp"}, `flag --port: --method tcp needs a port for the tel path (--port N or --port tel:N)`},
		{[]string{"--method", "banner", "--port", "tel:22"}, `needs a port for the clu path`},
		{[]string{"--port", "22"}, `flag --port: ports are for --method tcp, both or banner, not icmp`},
		{[]string{"--method", "tcp", "--port", "sip:5060"}, `"sip:5060": the path before ':' is tel or clu`},
		{[]string{"--method", "tcp", "--port", "70000"}, `"70000" is not a port from 1 to 65535`},
		{[]string{"--count", "0"}, `flag --count: 0 is not from 1 to 100`},
		{[]string{"--interval", "0s"}, `flag --interval: 0s is less than 1ms`},
		{[]string{"--count", "20", "--interval", "1s", "-t", "5"}, `probing may take 19.2s, not less than -t 5s`},
		{[]string{"--pl-warning", "x"}, `--pl-warning`},
	}
	for _, tc := range cases {
		code, first, _ := execute(t, append([]string{"--role", "any"}, tc.args...)...)
		if code != 3 || !strings.HasPrefix(first, "PBX_MASTER_ALIVE UNKNOWN - usage: ") || !strings.Contains(first, tc.want) {
			t.Errorf("%v: %d %q, want %q", tc.args, code, first, tc.want)
		}
	}
	if _, err := os.Stat("/etc/pbxha/cluster.toml"); os.IsNotExist(err) {
		code, first, _ := execute(t, "--role", "any")
		if code != 3 || first != "PBX_MASTER_ALIVE UNKNOWN - usage: no master address: give --tel-ip and --clu-ip or a cluster config (/etc/pbxha/cluster.toml)" {
			t.Errorf("nothing given: %d %q", code, first)
		}
	}
	dir := t.TempDir()
	code, first, _ := execute(t, "--role", "any", "--config", filepath.Join(dir, "none.toml"))
	if code != 3 || !strings.Contains(first, "reading config") {
		t.Errorf("missing explicit config: %d %q", code, first)
	}
}
