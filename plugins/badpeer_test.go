package plugins_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The bad-peer table: every plugin that talks to a peer, against a peer
// that never answers, one that answers garbage, one that closes in the
// middle of its answer, and a closed port. Each row is what README.md's
// "Bad input" table promises: the state, a clear first line naming what
// went wrong, the exit by -t, and never a panic.

// peerMode is how a fake peer misbehaves.
type peerMode string

const (
	silent  peerMode = "silent"  // accepts (or receives) and never answers
	garbage peerMode = "garbage" // answers bytes of no protocol
	halfway peerMode = "halfway" // starts its protocol's answer, then closes
	closed  peerMode = "closed"  // nothing listens: connection refused / ICMP unreachable
)

// garbageBytes is what the garbage peer sends: binary, a NUL, a line that
// is too long, no protocol's greeting.
var garbageBytes = append(append([]byte("\x00\xff\xfe garbage \r\n\x1b[31m"), bytes.Repeat([]byte("Z"), 9000)...), "\n|||\n"...)

// fakeTCP listens on loopback and misbehaves as mode says. half is what a
// halfway peer sends first (the start of its protocol's answer); when
// waitFirst is set it reads the client's first bytes before answering
// (protocols where the client speaks first).
func fakeTCP(t *testing.T, mode peerMode, half []byte, waitFirst bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if mode == closed {
		ln.Close()
		return port
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				if waitFirst {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 4096)
					c.Read(buf)
				}
				switch mode {
				case garbage:
					c.Write(garbageBytes)
				case halfway:
					c.Write(half)
					time.Sleep(50 * time.Millisecond)
					c.Close()
				}
				// silent, and garbage after its bytes: hold the connection
				// open until the test ends.
			}()
		}
	}()
	return port
}

// fakeUDP binds a loopback UDP port that misbehaves as mode says.
func fakeUDP(t *testing.T, mode peerMode) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if mode == closed {
		pc.Close()
		return port
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			switch mode {
			case garbage:
				pc.WriteTo(garbageBytes[:1200], from)
			case halfway:
				// The first bytes of a real answer and no more.
				if n > 0 {
					pc.WriteTo(buf[:min(n, 7)], from)
				}
			}
		}
	}()
	return port
}

// sshPeerConfig writes a cluster.toml whose peer is 127.0.0.1:port over
// SSH, with a real key and a known_hosts entry, so only the peer's
// misbehaviour is tested.
func sshPeerConfig(t *testing.T, port int) string {
	t.Helper()
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewPublicKey(hostPub)
	kh := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hk))))
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sync := filepath.Join(dir, "sync")
	os.Mkdir(sync, 0o755)
	state := filepath.Join(dir, "state.json")
	os.WriteFile(state, []byte(`{"node":"n1","role":"master","epoch":1,"since":"2026-11-24T00:00:00Z"}`), 0o644)
	cfg := fmt.Sprintf(`cluster_id = "badpeer"
node = "n1"
state_file = %q
run_dir = %q
[vip]
address = "127.0.0.1/8"
interface = "lo"
[[nodes]]
name = "n1"
telephony_ip = "127.0.0.2"
cluster_ip = "127.0.0.2"
[[nodes]]
name = "n2"
telephony_ip = "127.0.0.1"
cluster_ip = "127.0.0.1"
[ssh]
user = "root"
port = %d
key_file = %q
known_hosts = %q
connect_timeout = "10s"
[sync]
dirs = [%q]
[telephony]
targets = ["127.0.0.1"]
`, state, dir, port, key, kh, sync)
	path := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func secretFile(t *testing.T, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// badPeerTimeout is the -t of every row; a plugin must be gone by then
// plus start-up slack.
const badPeerTimeout = 3

type badPeerRow struct {
	plugin string
	mode   peerMode
	state  string // OK, WARNING, CRITICAL, UNKNOWN
	says   string // the first line contains this
}

// badPeerTable is README.md's table. The args of each plugin come from
// badPeerArgs.
var badPeerTable = []badPeerRow{
	{"check_pbx_ami", silent, "CRITICAL", "waiting for the greeting from 127.0.0.1"},
	{"check_pbx_ami", garbage, "CRITICAL", "not an Asterisk manager greeting"},
	{"check_pbx_ami", halfway, "CRITICAL", "connection reset by the server"},
	{"check_pbx_ami", closed, "CRITICAL", "refused"},

	{"check_pbx_sip", silent, "CRITICAL", "no SIP response after"},
	{"check_pbx_sip", garbage, "CRITICAL", "connection lost before a response"},
	{"check_pbx_sip", halfway, "CRITICAL", "connection lost before a response"},
	{"check_pbx_sip", closed, "CRITICAL", "refused"},

	{"check_pbx_rsync", silent, "CRITICAL", "waiting for the greeting from 127.0.0.1"},
	{"check_pbx_rsync", garbage, "CRITICAL", "not an rsync daemon"},
	{"check_pbx_rsync", halfway, "CRITICAL", "closed the connection mid-line"},
	{"check_pbx_rsync", closed, "CRITICAL", "refused"},

	{"check_pbx_db_query mysql", silent, "CRITICAL", "timed out after 3s while"},
	{"check_pbx_db_query mysql", garbage, "CRITICAL", "timed out after 3s while connecting"},
	{"check_pbx_db_query mysql", halfway, "CRITICAL", "connection lost"},
	{"check_pbx_db_query mysql", closed, "CRITICAL", "refused"},
	{"check_pbx_db_query pgsql", silent, "CRITICAL", "timed out after 3s while"},
	{"check_pbx_db_query pgsql", garbage, "CRITICAL", "connecting to pgsql at 127.0.0.1"},
	{"check_pbx_db_query pgsql", halfway, "CRITICAL", "connecting to pgsql at 127.0.0.1"},
	{"check_pbx_db_query pgsql", closed, "CRITICAL", "refused"},

	{"check_pbx_db_sync mysql", silent, "CRITICAL", "timed out after 3s while"},
	{"check_pbx_db_sync mysql", garbage, "CRITICAL", "timed out after 3s while connecting"},
	{"check_pbx_db_sync mysql", halfway, "CRITICAL", "connection lost"},
	{"check_pbx_db_sync mysql", closed, "CRITICAL", "refused"},

	{"check_pbx_time", silent, "CRITICAL", "no response within"},
	{"check_pbx_time", garbage, "CRITICAL", "bad reply"},
	{"check_pbx_time", halfway, "CRITICAL", "bad reply"},
	{"check_pbx_time", closed, "CRITICAL", "connection refused"},

	{"check_pbx_master_alive banner", silent, "CRITICAL", "accepts connections but does not greet"},
	{"check_pbx_master_alive banner", closed, "CRITICAL", "master unreachable on telephony"},

	{"check_pbx_cluster", silent, "WARNING", "peer n2 unreachable over SSH"},
	{"check_pbx_cluster", garbage, "WARNING", "peer n2 unreachable over SSH"},
	{"check_pbx_cluster", closed, "WARNING", "peer n2 unreachable over SSH"},

	{"check_pbx_net_failover", silent, "UNKNOWN", "cannot ask master n2"},
	{"check_pbx_net_failover", garbage, "UNKNOWN", "cannot ask master n2"},
	{"check_pbx_net_failover", closed, "UNKNOWN", "cannot ask master n2"},

	{"check_pbx_fs_sync", silent, "UNKNOWN", "no SSH greeting within 1s"},
	{"check_pbx_fs_sync", garbage, "UNKNOWN", "cannot ask the peer"},
	{"check_pbx_fs_sync", closed, "UNKNOWN", "cannot ask the peer"},
}

// badPeerArgs starts the misbehaving peer for a row and returns the
// plugin's arguments pointing at it.
func badPeerArgs(t *testing.T, row badPeerRow) []string {
	name, variant, _ := strings.Cut(row.plugin, " ")
	to := []string{"-t", strconv.Itoa(badPeerTimeout)}
	p := func(port int) string { return strconv.Itoa(port) }
	switch name {
	case "check_pbx_ami":
		port := fakeTCP(t, row.mode, []byte("Asterisk Call Manager/6.0.0\r\nResponse: Succ"), false)
		return append(to, "-H", "127.0.0.1", "-p", p(port), "-u", "pbxha", "--secret-file", secretFile(t, "s3cret"), "--role", "any")
	case "check_pbx_sip":
		port := fakeTCP(t, row.mode, []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1"), true)
		return append(to, "-H", "127.0.0.1", "-p", p(port), "--transport", "tcp", "--role", "any")
	case "check_pbx_rsync":
		port := fakeTCP(t, row.mode, []byte("@RSYNCD: 31"), false)
		return append(to, "-H", "127.0.0.1", "-p", p(port), "--no-auth", "--role", "any")
	case "check_pbx_db_query", "check_pbx_db_sync":
		var port int
		if variant == "mysql" {
			// The server speaks first: a MySQL handshake's header and a
			// few bytes of its body.
			port = fakeTCP(t, row.mode, []byte{0x4a, 0, 0, 0, 0x0a, '1', '1', '.'}, false)
		} else {
			// The client speaks first; the server's first byte of an
			// authentication request, then nothing.
			port = fakeTCP(t, row.mode, []byte{'R', 0, 0}, true)
		}
		return append(to, "--driver", variant, "-H", "127.0.0.1", "-P", p(port), "-d", "pbx", "-u", "pbx",
			"--password-file", secretFile(t, "s3cret"), "--role", "any")
	case "check_pbx_time":
		port := fakeUDP(t, row.mode)
		return append(to, "-H", "127.0.0.1:"+p(port), "--role", "any")
	case "check_pbx_master_alive":
		port := fakeTCP(t, row.mode, nil, false)
		return append(to, "--method", "banner", "--tel-ip", "127.0.0.1", "--clu-ip", "127.0.0.1", "-p", p(port), "-n", "1", "--role", "any")
	case "check_pbx_cluster", "check_pbx_net_failover", "check_pbx_fs_sync":
		port := fakeTCP(t, row.mode, []byte("SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x01"), false)
		args := append(to, "--config", sshPeerConfig(t, port), "--role", "any")
		if name == "check_pbx_cluster" {
			args = append(args, "--arp-wait", "0") // lo has no ARP
		}
		if name == "check_pbx_net_failover" {
			args = append(args, "-H", "127.0.0.1")
		}
		return args
	}
	t.Fatalf("no arguments for %s", row.plugin)
	return nil
}

func TestBadPeers(t *testing.T) {
	bins := binaries(t)
	for _, row := range badPeerTable {
		name, _, _ := strings.Cut(row.plugin, " ")
		t.Run(row.plugin+"/"+string(row.mode), func(t *testing.T) {
			t.Parallel()
			bin, ok := bins[name]
			if !ok {
				t.Fatalf("no binary for %s", name)
			}
			args := badPeerArgs(t, row)
			t0 := time.Now()
			code, first, all := runBin(t, bin, args...)
			took := time.Since(t0)
			t.Logf("%s %s: %s (%.2fs)", row.plugin, row.mode, first, took.Seconds())
			if took > badPeerTimeout*time.Second+2*time.Second {
				t.Errorf("took %s; -t %d", took.Round(time.Millisecond), badPeerTimeout)
			}
			if strings.Contains(all, "panic") || strings.Contains(all, "goroutine ") {
				t.Errorf("panicked:\n%s", all)
			}
			if !firstLine.MatchString(first) {
				t.Errorf("first line %q is not NAME STATE - summary | perfdata", first)
			}
			want := name2prefix(name) + " " + row.state + " - "
			codes := map[string]int{"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
			if code != codes[row.state] || !strings.HasPrefix(first, want) || !strings.Contains(first, row.says) {
				t.Errorf("exit %d, first line %q; want exit %d, %q...%q", code, first, codes[row.state], want, row.says)
			}
			if len(strings.TrimPrefix(first, want)) < 10 {
				t.Errorf("first line %q says too little", first)
			}
		})
	}
}
