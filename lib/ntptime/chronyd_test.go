package ntptime_test

import (
	"bytes"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pbxha/lib/ntptime"
	"pbxha/lib/ntptime/chronydtest"
	"pbxha/lib/plugin"
)

// run executes check_pbx_time in-process with no cluster.toml around.
func run(t *testing.T, args ...string) (code int, first string, out string) {
	t.Helper()
	t.Setenv("PBXHA_CONFIG", "")
	var b bytes.Buffer
	code = plugin.Execute(ntptime.Spec(), args, &b)
	out = b.String()
	first, _, _ = strings.Cut(out, "\n")
	if _, perf, ok := strings.Cut(first, " | "); ok {
		if _, err := plugin.SplitPerfdata(perf); err != nil {
			t.Errorf("perfdata %q: %v", perf, err)
		}
	}
	return code, first, out
}

// perfValue is the value of one perfdata item ("offset"), NaN when absent
// or U.
func perfValue(t *testing.T, first, label string) float64 {
	t.Helper()
	_, perf, _ := strings.Cut(first, " | ")
	items, _ := plugin.SplitPerfdata(perf)
	for _, it := range items {
		l, v, _ := strings.Cut(it, "=")
		if strings.Trim(l, "'") != label {
			continue
		}
		v, _, _ = strings.Cut(v, ";")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "s"), 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	t.Fatalf("no perfdata %q in %q", label, first)
	return 0
}

func TestHealthyAndShiftedChronyd(t *testing.T) {
	healthy := chronydtest.Start(t, chronydtest.Options{Serve: true})
	ahead := chronydtest.Start(t, chronydtest.Options{Serve: true, Offset: "+300s"})
	behind := chronydtest.Start(t, chronydtest.Options{Serve: true, Offset: "-300s"})

	t.Run("healthy", func(t *testing.T) {
		code, first, out := run(t, "-H", healthy.NTPAddr)
		if code != 0 || !strings.HasPrefix(first, "PBX_TIME OK - "+healthy.NTPAddr+": offset ") {
			t.Fatalf("%d %q\n%s", code, first, out)
		}
		if off := perfValue(t, first, "offset"); math.Abs(off) > 0.1 {
			t.Fatalf("offset %v from an unshifted chronyd", off)
		}
		if st := perfValue(t, first, "stratum"); st != 8 {
			t.Fatalf("stratum %v, want chronyd's local stratum 8", st)
		}
	})
	t.Run("300 s ahead", func(t *testing.T) {
		code, first, out := run(t, "-H", healthy.NTPAddr, "-H", ahead.NTPAddr)
		want := "PBX_TIME CRITICAL - " + ahead.NTPAddr + ": offset +"
		if code != 2 || !strings.HasPrefix(first, want) || !strings.Contains(first, "(critical > 1), stratum 8 | ") {
			t.Fatalf("%d %q, want %q...\n%s", code, first, want, out)
		}
		if off := perfValue(t, first, ahead.NTPAddr+"_offset"); math.Abs(off-300) > 2 {
			t.Fatalf("offset %v, want 300±2", off)
		}
		if off := perfValue(t, first, healthy.NTPAddr+"_offset"); math.Abs(off) > 0.1 {
			t.Fatalf("healthy server's offset %v", off)
		}
	})
	t.Run("300 s behind", func(t *testing.T) {
		code, first, _ := run(t, "-H", behind.NTPAddr)
		if code != 2 || !strings.Contains(first, ": offset -") {
			t.Fatalf("%d %q", code, first)
		}
		if off := perfValue(t, first, "offset"); math.Abs(off+300) > 2 {
			t.Fatalf("offset %v, want -300±2", off)
		}
	})
	t.Run("thresholds decide, not the shift itself", func(t *testing.T) {
		code, first, _ := run(t, "-H", ahead.NTPAddr, "-w", "400", "-c", "500")
		if code != 0 || !strings.Contains(first, "s;400;500 stratum=8 rtt=") {
			t.Fatalf("%d %q", code, first)
		}
		code, first, _ = run(t, "-H", ahead.NTPAddr, "-w", "299", "-c", "500")
		if code != 1 || !strings.Contains(first, "(warning > 299)") {
			t.Fatalf("%d %q", code, first)
		}
	})
	t.Run("--any takes the best", func(t *testing.T) {
		code, first, out := run(t, "--any", "-H", ahead.NTPAddr, "-H", healthy.NTPAddr)
		if code != 0 || !strings.HasPrefix(first, "PBX_TIME OK - best of 2 servers: "+healthy.NTPAddr+": offset ") ||
			!strings.Contains(out, "[CRITICAL] "+ahead.NTPAddr+": offset +") {
			t.Fatalf("%d %q\n%s", code, first, out)
		}
	})
	t.Run("stratum thresholds", func(t *testing.T) {
		code, first, _ := run(t, "-H", healthy.NTPAddr, "--stratum-warning", "4", "--stratum-critical", "7")
		if code != 2 || !strings.Contains(first, "stratum 8 (critical > 7)") || !strings.Contains(first, " stratum=8;4;7 ") {
			t.Fatalf("%d %q", code, first)
		}
	})
}

// A server that never answers: the check reports it before -t, with -t's
// state, and never hangs.
func TestSilentServer(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	addr := silent.LocalAddr().String()
	for _, tc := range []struct {
		timeout string
		code    int
		state   string
	}{{"2", 2, "CRITICAL"}, {"2:UNKNOWN", 3, "UNKNOWN"}, {"2:WARNING", 1, "WARNING"}} {
		code, first, _ := run(t, "-H", addr, "-t", tc.timeout)
		if code != tc.code || !strings.HasPrefix(first, "PBX_TIME "+tc.state+" - "+addr+": no response within ") ||
			!strings.Contains(first, "| offset=U;0.5;1 stratum=U rtt=U;;;0") {
			t.Errorf("-t %s: %d %q", tc.timeout, code, first)
		}
	}
}

func TestLocalChronyd(t *testing.T) {
	server := chronydtest.Start(t, chronydtest.Options{Serve: true})
	client := chronydtest.Start(t, chronydtest.Options{Upstream: server.NTPAddr})
	lonely := chronydtest.Start(t, chronydtest.Options{})
	nobody := chronydtest.FreeUDPPort(t)

	cases := []struct {
		name, chrony string
		code         int
		want         string // the local sub-result's line
	}{
		{"client over UDP", client.CmdAddr, 0, "[OK] local chronyd: synchronised to 127.0.0.1, stratum 9, offset "},
		{"client over its socket", client.Socket, 0, "[OK] local chronyd: synchronised to 127.0.0.1, stratum 9, offset "},
		{"free-running server over UDP", server.CmdAddr, 1, "[WARNING] local chronyd: free-running on its own clock (local stratum 8), no time source"},
		{"free-running server over its socket", server.Socket, 1, "[WARNING] local chronyd: free-running on its own clock (local stratum 8), no time source"},
		{"no source", lonely.CmdAddr, 1, "[WARNING] local clock not synchronised (chronyd)"},
		{"nobody there", "127.0.0.1:" + strconv.Itoa(nobody), 3,
			"[UNKNOWN] local chronyd at 127.0.0.1:" + strconv.Itoa(nobody) + ": connection refused (nothing listens there)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, first, out := run(t, "-H", server.NTPAddr, "--chrony", tc.chrony)
			if code != tc.code || !strings.Contains(out, "\\_ "+tc.want) {
				t.Fatalf("%d %q, want %d with %q\n%s", code, first, tc.code, tc.want, out)
			}
			if tc.code == 0 {
				if st := perfValue(t, first, "local_stratum"); st != 9 {
					t.Fatalf("local_stratum %v", st)
				}
				if off := perfValue(t, first, "local_offset"); math.Abs(off) > 0.1 {
					t.Fatalf("local_offset %v", off)
				}
			}
		})
	}
	// The client socket chronyd answers to is removed afterwards.
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(client.Socket), "pbxha-time.*"))
	if len(left) > 0 {
		t.Fatalf("client sockets left behind: %v", left)
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-H", "a b"}, `usage: flag -H/--host: "a b": "a b" is neither an IP address nor a host name`},
		{[]string{"-H", "192.0.2.1:0"}, `usage: flag -H/--host: "192.0.2.1:0": port "0" is not a number from 1 to 65535`},
		{[]string{"-H", "192.0.2.1", "-p", "0"}, "usage: flag --port: 0 is not a port from 1 to 65535"},
		{[]string{"-H", "192.0.2.1", "-w", "abc"}, `usage: invalid argument "abc" for "-w, --warning" flag`},
		{[]string{"-H", "192.0.2.1", "--stratum-critical", "5:1"}, `for "--stratum-critical" flag: range "5:1": start 5 is greater than end 1`},
		{[]string{"-H", "192.0.2.1", "--chrony", "x:y:z"}, "usage: flag --chrony: "},
		{[]string{"-H", "192.0.2.1", "--timesyncd-dir", ""}, "usage: flag --timesyncd-dir: empty"},
		{nil, "usage: no NTP server: give -H/--host or set [ntp] servers in /etc/pbxha/cluster.toml"},
	}
	if _, err := os.Stat("/etc/pbxha/cluster.toml"); err == nil {
		cases = cases[:len(cases)-1] // this machine has a cluster.toml
	}
	for _, tc := range cases {
		code, first, _ := run(t, tc.args...)
		if code != 3 || !strings.Contains(first, tc.want) || !strings.HasPrefix(first, "PBX_TIME UNKNOWN - usage: ") {
			t.Errorf("%v: %d %q, want %q", tc.args, code, first, tc.want)
		}
	}
}

func TestServersFromConfig(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withServer := write("a.toml", "[ntp]\nservers = [\""+silent.LocalAddr().String()+"\"]\n")
	none := write("b.toml", "cluster_id = \"x\"\n")
	bad := write("c.toml", "[ntp]\nservers = [\"a b\"]\n")
	broken := write("d.toml", "[ntp\n")

	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", withServer, "-t", "1"}, 2, "PBX_TIME CRITICAL - " + silent.LocalAddr().String() + ": no response within "},
		{[]string{"--config", none}, 3, "PBX_TIME UNKNOWN - usage: no NTP server: give -H/--host or set [ntp] servers in " + none},
		{[]string{"--config", bad}, 3, "PBX_TIME UNKNOWN - usage: " + bad + ": ntp.servers[0]: "},
		{[]string{"--config", broken}, 3, "PBX_TIME UNKNOWN - " + broken + ": line "},
		{[]string{"--config", filepath.Join(dir, "missing.toml")}, 3, "PBX_TIME UNKNOWN - reading config: "},
	}
	for _, tc := range cases {
		code, first, _ := run(t, tc.args...)
		if code != tc.code || !strings.HasPrefix(first, tc.want) {
			t.Errorf("%v: %d %q, want %d %q", tc.args, code, first, tc.code, tc.want)
		}
	}
}
