package eventhandler

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/failover"
	"pbxha/lib/mail"
)

// writeConfig writes a cluster.toml for node2 whose SMTP server is a
// closed loopback port, so every mail is spooled.
func writeConfig(t *testing.T) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	text := `cluster_id = "lab"
node = "node2"
state_file = "` + dir + `/state.json"
run_dir = "` + dir + `/run"
admin_email = "admin@example.net"
failover_services = ["pbx_master_alive", "pbx_cluster"]
[vip]
address = "192.0.2.10/24"
interface = "tel0"
[[nodes]]
name = "node1"
[[nodes]]
name = "node2"
[smtp]
host = "127.0.0.1"
port = ` + itoa(port) + `
from = "pbxha@node2.example.net"
tls = "none"
spool_dir = "` + dir + `/spool"
`
	path := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestHandleIgnores(t *testing.T) {
	cfg, path := writeConfig(t)
	for _, args := range [][]string{
		{"--service", "pbx_master_alive", "--state", "CRITICAL", "--state-type", "SOFT", "--attempt", "1"},
		{"--service", "pbx_master_alive", "--state", "WARNING", "--state-type", "HARD", "--attempt", "3"},
		{"--service", "pbx_master_alive", "--state", "OK", "--state-type", "HARD", "--attempt", "1"},
		{"--service", "pbx_disk", "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3"},
	} {
		var out, errb bytes.Buffer
		code := Main(append([]string{"handle", "--config", path}, args...), &out, &errb)
		if code != ExitOK || !strings.Contains(errb.String(), "nothing to do") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	st, _ := cluster.ReadState(cfg.StateFile)
	if st.Role != cluster.Slave {
		t.Fatalf("state changed: %+v", st)
	}
	log, err := os.ReadFile(filepath.Join(cfg.RunDir, "eventhandler.log"))
	if err != nil || strings.Count(string(log), "nothing to do") != 4 {
		t.Fatalf("log: %v\n%s", err, log)
	}
}

func TestHandleDryRun(t *testing.T) {
	cfg, path := writeConfig(t)
	var out, errb bytes.Buffer
	code := Main([]string{"handle", "--config", path, "--dry-run", "--service", "pbx_master_alive", "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3"}, &out, &errb)
	if code != ExitOK || !strings.Contains(out.String(), "promote") || !strings.Contains(out.String(), "bind 192.0.2.10/24 to tel0") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave {
		t.Fatalf("dry run changed the state: %+v", st)
	}
	if mail.Pending(cfg.SMTP.SpoolDir) != 0 {
		t.Fatal("dry run wrote mail")
	}
}

func fakeOps(dup net.HardwareAddr) failover.Ops {
	return failover.Ops{
		Fence: func(context.Context) (failover.FenceResult, error) {
			return failover.FenceResult{}, errors.New("unreachable")
		},
		DetectDup: func(context.Context, string, netip.Addr) (net.HardwareAddr, bool, error) {
			return dup, dup != nil, nil
		},
		AddVIP: func(string, netip.Prefix) error { return nil },
		GARP: func(context.Context, string, netip.Addr, int, time.Duration) (int, time.Time, error) {
			return 2, time.Now(), nil
		},
		RunCommand: func(context.Context, []string) error { return nil },
	}
}

func TestPromoteMailSpooled(t *testing.T) {
	cfg, _ := writeConfig(t)
	var out, errb bytes.Buffer
	h := &handler{cfg: cfg, log: newLogger(cfg.RunDir, &errb), out: &out, ops: fakeOps(nil),
		trigger: failover.Trigger{Service: "pbx_master_alive", State: "CRITICAL", StateType: "HARD", Attempt: 3, Output: "node1 unreachable"}}
	if code := h.run(); code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Master || st.Epoch != 2 {
		t.Fatalf("state %+v", st)
	}
	ents, _ := os.ReadDir(cfg.SMTP.SpoolDir)
	if len(ents) != 1 {
		t.Fatalf("%d spooled, want 1 (SMTP is down)\n%s", len(ents), errb.String())
	}
	b, _ := os.ReadFile(filepath.Join(cfg.SMTP.SpoolDir, ents[0].Name()))
	for _, want := range []string{"[lab] FAILOVER: node2 is now master (epoch 2", "node1 unreachable", "role=master epoch=2", "node2: master (epoch 2)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("spooled mail lacks %q:\n%s", want, b)
		}
	}
	// Run again: already master, nothing done, nothing mailed.
	if code := h.run(); code != ExitOK || mail.Pending(cfg.SMTP.SpoolDir) != 1 {
		t.Fatalf("rerun: exit %d, %d spooled", code, mail.Pending(cfg.SMTP.SpoolDir))
	}
}

func TestPromoteRefusedSplitBrain(t *testing.T) {
	cfg, _ := writeConfig(t)
	var out, errb bytes.Buffer
	h := &handler{cfg: cfg, log: newLogger(cfg.RunDir, &errb), out: &out, ops: fakeOps(net.HardwareAddr{2, 0, 0, 0, 0, 1}),
		trigger: failover.Trigger{Service: "pbx_master_alive", State: "CRITICAL", StateType: "HARD", Attempt: 3}}
	if code := h.run(); code != ExitRefused {
		t.Fatalf("exit %d, want %d\n%s", code, ExitRefused, errb.String())
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave {
		t.Fatalf("state %+v", st)
	}
	ents, _ := os.ReadDir(cfg.SMTP.SpoolDir)
	if len(ents) != 1 {
		t.Fatalf("%d spooled", len(ents))
	}
	b, _ := os.ReadFile(filepath.Join(cfg.SMTP.SpoolDir, ents[0].Name()))
	if !strings.Contains(string(b), "refusing to take the VIP: still answered by MAC 02:00:00:00:00:01 (possible split brain)") || !strings.Contains(string(b), `"urgent": true`) {
		t.Fatalf("mail: %s", b)
	}
}

func TestHandleWaitsForLock(t *testing.T) {
	cfg, path := writeConfig(t)
	unlock, err := failover.Lock(context.Background(), filepath.Join(cfg.RunDir, "failover.lock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// While the "first handler" holds the lock it finishes the promote.
	go func() {
		time.Sleep(200 * time.Millisecond)
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 2})
		unlock()
	}()
	var out, errb bytes.Buffer
	code := Main([]string{"handle", "--config", path, "--service", "pbx_master_alive", "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3"}, &out, &errb)
	if code != ExitOK || !strings.Contains(errb.String(), "already master") || strings.Contains(errb.String(), "step ") {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
}

func TestMaintenanceHoldsHandle(t *testing.T) {
	cfg, path := writeConfig(t)
	m := cluster.Maintenance{Since: time.Now(), Until: time.Now().Add(time.Hour), By: "node1", Reason: "update"}
	if err := cluster.WriteMaintenance(cfg.StateFile, m); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main([]string{"handle", "--config", path, "--service", "pbx_master_alive", "--state", "CRITICAL", "--state-type", "HARD", "--attempt", "3"}, &out, &errb)
	if code != ExitOK || !strings.Contains(errb.String(), "nothing done: maintenance until") || strings.Contains(errb.String(), "step ") {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave {
		t.Fatalf("state changed during maintenance: %+v", st)
	}
	// Expired: cleared, its end mailed (spooled: SMTP is down here), and
	// handle acts again.
	m.Until = time.Now().Add(-time.Second)
	cluster.WriteMaintenance(cfg.StateFile, m)
	out.Reset()
	if code := Main([]string{"maintenance", "status", "--config", path}, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "maintenance off") {
		t.Fatalf("status after expiry: %d %q", code, out.String())
	}
	ents, _ := os.ReadDir(cfg.SMTP.SpoolDir)
	if len(ents) != 1 {
		t.Fatalf("%d spooled, want the expiry mail", len(ents))
	}
	b, _ := os.ReadFile(filepath.Join(cfg.SMTP.SpoolDir, ents[0].Name()))
	if !strings.Contains(string(b), "MAINTENANCE ENDED on node2 (expired)") {
		t.Fatalf("mail: %s", b)
	}
}

func TestHandOverRefusedWithoutPeer(t *testing.T) {
	cfg, _ := writeConfig(t)
	cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 3})
	var out, errb bytes.Buffer
	h := &handler{cfg: cfg, log: newLogger(cfg.RunDir, &errb), out: &out, ops: fakeOps(nil),
		trigger: failover.Trigger{Service: "pbx_cluster", State: "CRITICAL", StateType: "HARD", Attempt: 3}}
	if code := h.run(); code != ExitFailed || !strings.Contains(out.String(), "refused: cannot hand over: node1 does not answer") {
		t.Fatalf("exit %d %q\n%s", code, out.String(), errb.String())
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Master || st.Epoch != 3 {
		t.Fatalf("state changed: %+v", st)
	}
}

func TestUsage(t *testing.T) {
	_, path := writeConfig(t)
	for _, args := range [][]string{
		{"maintenance", "--config", path},
		{"maintenance", "sideways", "--config", path},
		{"maintenance", "on", "--for", "48h", "--config", path},
		{"status", "--config", "/nonexistent/cluster.toml"},
		{"status", "--bogus"},
		{"handle", "--bogus"},
		{"bogus"},
	} {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb); code != ExitUsage || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

func TestPeerDemote(t *testing.T) {
	cfg, _ := writeConfig(t)
	cfg.Services = []config.Service{{Name: "kamailio", Stop: []string{"stop-kamailio"}}, {Name: "ami", Stop: []string{"stop-ami"}}}
	cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 4})
	var released, ran []string
	peerDemoteOps = failover.Ops{
		DelVIP: func(iface string, p netip.Prefix) error {
			released = append(released, iface+" "+p.String())
			return nil
		},
		RunCommand: func(_ context.Context, argv []string) error {
			ran = append(ran, argv[0])
			if argv[0] == "stop-ami" {
				return errors.New("exit status 1")
			}
			return nil
		},
		DemoteDBs: func(context.Context) (string, error) { return "read only", nil },
	}
	t.Cleanup(func() { peerDemoteOps = failover.Ops{} })
	for i := range 2 { // a second demote is harmless
		r, err := PeerDemote(context.Background(), cfg)
		if err != nil || r.Node != "node2" || r.Role != cluster.Standby || r.Epoch != 4 || !r.VIPReleased ||
			len(r.Stopped) != 1 || r.Stopped[0] != "kamailio" || len(r.Failed) != 1 || r.Databases != "read only" {
			t.Fatalf("run %d: %+v %v", i, r, err)
		}
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Standby || st.Epoch != 4 {
		t.Fatalf("state %+v; want standby epoch 4 kept", st)
	}
	// Services stop in reverse order of start.
	if len(released) != 2 || released[0] != "tel0 192.0.2.10/24" || strings.Join(ran, " ") != "stop-ami stop-kamailio stop-ami stop-kamailio" {
		t.Fatalf("released %v, ran %v", released, ran)
	}
}

func TestSudoGuard(t *testing.T) {
	env := func(sudo string) func(string) string {
		return func(k string) string {
			if k == "SUDO_UID" {
				return sudo
			}
			return ""
		}
	}
	dir := t.TempDir()
	own := filepath.Join(dir, "cluster.toml")
	os.WriteFile(own, nil, 0o644)
	rootOwned := func(mode os.FileMode) func(string) (os.FileInfo, error) {
		return func(string) (os.FileInfo, error) {
			fi, err := os.Stat(own)
			if err != nil {
				return nil, err
			}
			return fakeFI{fi, mode}, nil
		}
	}
	for _, c := range []struct {
		name, sudo, path string
		euid             int
		stat             func(string) (os.FileInfo, error)
		want             string
	}{
		{"no sudo", "", "/tmp/x.toml", 0, os.Stat, ""},
		{"sudo, other config", "1000", "/tmp/evil.toml", 0, rootOwned(0o640), "only /etc/pbxha/cluster.toml is read"},
		{"sudo, default, root-owned", "1000", "", 0, rootOwned(0o640), ""},
		{"sudo, default spelled out", "1000", "/etc/pbxha/../pbxha/cluster.toml", 0, rootOwned(0o640), ""},
		{"sudo, group-writable", "1000", "", 0, rootOwned(0o664), "writable by no one else"},
	} {
		err := sudoGuard(c.path, env(c.sudo), c.euid, c.stat)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
}

// fakeFI is a root-owned file with the given mode (the test does not run
// as root necessarily).
type fakeFI struct {
	os.FileInfo
	mode os.FileMode
}

func (f fakeFI) Mode() os.FileMode { return f.mode }
func (f fakeFI) Sys() any          { return &syscall.Stat_t{Uid: 0} }

// fence_command after a promote whose old master did not confirm: the
// mail says so, the fence is recorded, and unfence runs unfence_command
// once and clears the record; a failing fence_command makes the mail
// urgent and records nothing.
func TestStonithRecordedAndUndone(t *testing.T) {
	for _, fail := range []bool{false, true} {
		cfg, _ := writeConfig(t)
		cfg.Failover.FenceCommand = []string{"fence-node1"}
		cfg.Failover.UnfenceCommand = []string{"unfence-node1"}
		var out, errb bytes.Buffer
		var fenced, unfenced int
		ops := fakeOps(nil)
		ops.FenceCommand = func(context.Context) (string, error) {
			fenced++
			if fail {
				return "", errors.New("fence-node1: exit status 1")
			}
			return "port ge-0/0/11 down", nil
		}
		ops.UnfenceCommand = func(context.Context) (string, error) { unfenced++; return "port ge-0/0/11 up", nil }
		h := &handler{cfg: cfg, log: newLogger(cfg.RunDir, &errb), out: &out, ops: ops,
			trigger: failover.Trigger{Service: "pbx_master_alive", State: "CRITICAL", StateType: "HARD", Attempt: 3}}
		if code := h.run(); code != ExitOK || fenced != 1 {
			t.Fatalf("fail=%v: exit %d, fence_command ran %d times\n%s", fail, code, fenced, errb.String())
		}
		ents, _ := os.ReadDir(cfg.SMTP.SpoolDir)
		if len(ents) != 1 {
			t.Fatalf("%d mails spooled", len(ents))
		}
		m, _ := os.ReadFile(filepath.Join(cfg.SMTP.SpoolDir, ents[0].Name()))
		if fail {
			if !strings.Contains(string(m), "FENCE COMMAND FAILED") || peerFenced(cfg) != "" {
				t.Fatalf("failed fence_command: record %q, mail:\n%s", peerFenced(cfg), m)
			}
			continue
		}
		if !strings.Contains(string(m), "stonith ") || !strings.Contains(string(m), "isolated by fence_command") || strings.Contains(string(m), "FAILED") {
			t.Fatalf("mail:\n%s", m)
		}
		if rec := peerFenced(cfg); !strings.Contains(rec, "node1 isolated by fence_command") {
			t.Fatalf("fence record %q", rec)
		}
		if u := h.unfence(context.Background(), "node1 confirmed its demotion"); !strings.Contains(u, "node1 unfenced") || unfenced != 1 || peerFenced(cfg) != "" {
			t.Fatalf("unfence: %q, ran %d, record %q", u, unfenced, peerFenced(cfg))
		}
		if u := h.unfence(context.Background(), "again"); u != "" || unfenced != 1 {
			t.Fatalf("second unfence: %q, ran %d; want nothing to undo", u, unfenced)
		}
	}
}
