package lab

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
)

// The tests share one lab: TestMain takes the lab lock, attaches to the
// running lab or brings one up (and then takes it down at the end). Every
// test leaves the lab healthy (Reset in a cleanup where it injects faults).
var (
	theLab   *Lab
	setupErr error // why there is no lab; tests fail or skip with it
	ownLab   bool  // this binary brought the lab up
)

func TestMain(m *testing.M) {
	flag.Parse() // logf asks testing.Verbose before m.Run
	code := func() int {
		if os.Geteuid() != 0 {
			setupErr = fmt.Errorf("needs root (network namespaces)")
			return m.Run()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		unlock, err := Lock(ctx)
		if err != nil {
			setupErr = err
			return m.Run()
		}
		defer unlock()
		// Up returns a healthy running lab as it is and rebuilds a broken
		// one; only a lab this binary created is taken down at the end.
		_, err = Attach()
		ownLab = err != nil
		if theLab, err = UpWith(ctx, Options{Logf: logf}); err != nil {
			setupErr = fmt.Errorf("bringing the lab up: %w", err)
			return m.Run()
		}
		code := m.Run()
		if ownLab {
			if err := Down(context.Background()); err != nil {
				fmt.Fprintf(os.Stderr, "lab down: %v\n", err)
				code = 1
			}
		}
		if !leftovers(Root()) {
			RemoveLockFile() // the lab is gone; so goes its lock, as after `pbxlab down`
		}
		return code
	}()
	os.Exit(code)
}

func logf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...)
	}
}

// need returns the lab, or skips (fails under CI=true) without one.
func need(t *testing.T) *Lab {
	t.Helper()
	if setupErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no lab (CI=true: not skipping): %v", setupErr)
		}
		t.Skipf("no lab: %v", setupErr)
	}
	return theLab
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// resetAfter restores the healthy lab when the test ends.
func resetAfter(t *testing.T, l *Lab) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := l.Reset(ctx); err != nil {
			t.Errorf("reset: %v", err)
		}
	})
}

func TestHealthy(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 30*time.Second)
	if err := l.Healthy(ctx); err != nil {
		t.Fatalf("lab not healthy: %v", err)
	}
	if v := l.VIPHolders(ctx); len(v) != 1 || v[0] != Node1 {
		t.Errorf("VIP holders = %v, want [node1]", v)
	}
	for node, role := range map[string]string{Node1: cluster.Master, Node2: cluster.Slave} {
		s, err := cluster.ReadState(l.StatePath(node))
		if err != nil {
			t.Fatal(err)
		}
		if s.Role != role || s.Epoch != 1 || s.Node != node {
			t.Errorf("%s state = %+v, want %s at epoch 1", node, s, role)
		}
	}
}

func TestNodeConfigsLoadAndPointAtSecrets(t *testing.T) {
	l := need(t)
	for _, n := range Nodes {
		c, err := config.Load(l.ConfigPath(n), true)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if c.Self() == nil || c.Self().Name != n || c.Peer() == nil {
			t.Errorf("%s: self/peer wrong: %+v", n, c.Nodes)
		}
		pw, err := c.MySQL.Password.Value()
		if err != nil || pw != l.Creds().MySQLPassword {
			t.Errorf("%s: mysql password from config does not match the lab's (err %v)", n, err)
		}
		sec, err := c.AMI.Secret.Value()
		if err != nil || sec != l.Creds().AMISecret {
			t.Errorf("%s: AMI secret from config does not match the lab's (err %v)", n, err)
		}
		// Root's alone, or root:nagios 0640 when there is a nagios group.
		want := fs.FileMode(0o600)
		if NagiosGID() >= 0 {
			want = 0o640
		}
		st, err := os.Stat(c.MySQL.Password.File)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: secret file %s mode: %v %v, want %v", n, c.MySQL.Password.File, st.Mode(), err, want)
		}
		if c.VIP.Address != VIPPrefix || len(c.NTP.Servers) != 1 || c.NTP.Servers[0] != InfraTelIP {
			t.Errorf("%s: vip/ntp wrong: %+v %+v", n, c.VIP, c.NTP)
		}
	}
	env, err := os.ReadFile(l.EnvFile())
	if err != nil {
		t.Fatal(err)
	}
	for k := range l.Env() {
		if !strings.Contains(string(env), "\n"+k+"=") {
			t.Errorf("lab.env lacks %s", k)
		}
	}
}

func TestReplicationBothEngines(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	db, err := l.DB()
	if err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprintf("t%d", time.Now().UnixNano())

	t.Run("mariadb", func(t *testing.T) {
		open := func(node string) *sql.DB {
			cfg, err := db.MySQLConfig(node)
			if err != nil {
				t.Fatal(err)
			}
			c, err := mysql.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			d := sql.OpenDB(c)
			t.Cleanup(func() { d.Close() })
			return d
		}
		p, r := open(Node1), open(Node2)
		if _, err := p.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS labtest (token VARCHAR(64) PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := p.ExecContext(ctx, "INSERT INTO labtest VALUES (?)", token); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := WaitFor(wctx, "the row on node2", func() error {
			var got string
			return r.QueryRowContext(wctx, "SELECT token FROM labtest WHERE token = ?", token).Scan(&got)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("row replicated in %v", time.Since(start))
	})

	t.Run("postgresql", func(t *testing.T) {
		open := func(node string) *pgx.Conn {
			cfg, err := db.PGConfig(node)
			if err != nil {
				t.Fatal(err)
			}
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
			return c
		}
		p, r := open(Node1), open(Node2)
		if _, err := p.Exec(ctx, "CREATE TABLE IF NOT EXISTS labtest (token text PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := p.Exec(ctx, "INSERT INTO labtest VALUES ($1)", token); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := WaitFor(wctx, "the row on node2", func() error {
			var got string
			return r.QueryRow(wctx, "SELECT token FROM labtest WHERE token = $1", token).Scan(&got)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("row replicated in %v", time.Since(start))
	})
}

func TestSIPOptionsFromInfra(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	for _, addr := range []string{"192.0.2.11:5060", "192.0.2.10:5060"} {
		code, err := SIPOptions(ctx, Infra, addr)
		if err != nil || code != 200 {
			t.Errorf("OPTIONS %s from infra = %d, %v; want 200", addr, code, err)
		}
	}
	// node2 runs no Kamailio while it is the slave.
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if code, err := SIPOptions(sctx, Infra, "192.0.2.12:5060"); err == nil {
		t.Errorf("node2 answered OPTIONS (%d) but runs no SIP service as slave", code)
	}

	resetAfter(t, l)
	if err := l.Fault(ctx, "sip-code", Node1, "503"); err != nil {
		t.Fatal(err)
	}
	if code, err := SIPOptions(ctx, Infra, "192.0.2.10:5060"); err != nil || code != 503 {
		t.Errorf("after sip-code 503: %d, %v", code, err)
	}
	if err := l.Fault(ctx, "sip-code", Node1, "0"); err != nil {
		t.Fatal(err)
	}
	sctx2, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if code, err := SIPOptions(sctx2, Infra, "192.0.2.10:5060"); err == nil {
		t.Errorf("after sip-code 0 OPTIONS was answered %d", code)
	}
}

func TestAMIGreetingAndLogin(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 30*time.Second)
	c, err := DialIn(ctx, Node1, "tcp", "127.0.0.1:5038")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "Asterisk Call Manager/") {
		t.Fatalf("greeting %q, %v", line, err)
	}
	cr := l.Creds()
	fmt.Fprintf(c, "Action: Login\r\nUsername: %s\r\nSecret: %s\r\n\r\n", cr.AMIUser, cr.AMISecret)
	resp, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(resp, "Response: Success") {
		t.Fatalf("login response %q, %v", resp, err)
	}
}

func TestRsyncdListsModule(t *testing.T) {
	l := need(t)
	out, err := l.ExecContext(ctxT(t, 20*time.Second), Node1, "rsync", "--contimeout=3", "rsync://198.51.100.2/")
	if err != nil {
		t.Fatalf("rsync list: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "pbx") {
		t.Errorf("module list %q does not name pbx", out)
	}
}

func TestSSHWithClusterKeyAndKnownHosts(t *testing.T) {
	l := need(t)
	key, err := os.ReadFile(l.Creds().SSHKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(l.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := DialIn(ctxT(t, 10*time.Second), Node1, "tcp", "198.51.100.2:22")
	if err != nil {
		t.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, "198.51.100.2:22", &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh node1 -> node2: %v", err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// The cluster key is pinned to pbxha-peer: it answers `state` from
	// node2's own state file, and refuses anything else (no shell).
	out, err := s.Output("state")
	if err != nil || !strings.Contains(string(out), `"node":"node2"`) {
		t.Errorf("state over ssh: %q, %v", out, err)
	}
	s2, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err = s2.Output("ip -o -4 addr show dev clu0")
	if err == nil || strings.Contains(string(out), "198.51.100.2/24") {
		t.Errorf("the cluster key ran a shell command: %q, %v", out, err)
	}
}

func TestSMTPSinkStoresMail(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 20*time.Second)
	conn, err := DialIn(ctx, Node1, "tcp", "192.0.2.1:25")
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	subject := fmt.Sprintf("lab test %d", time.Now().UnixNano())
	if err := c.Hello("node1.example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("pbxha@node1.example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("pbx-admin@example.net"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "From: pbxha@node1.example.net\r\nTo: pbx-admin@example.net\r\nSubject: %s\r\n\r\nbody\r\n", subject)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	err = WaitFor(ctx, "the message in the maildir", func() error {
		files, _ := filepath.Glob(filepath.Join(l.Maildir(), "*.eml"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "Subject: "+subject) {
				if !strings.Contains(string(b), "Delivered-To: pbx-admin@example.net") {
					return fmt.Errorf("%s lacks Delivered-To", f)
				}
				return nil
			}
		}
		return fmt.Errorf("not among %d files", len(files))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNTPAndOffset(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	query := func() time.Duration {
		t.Helper()
		var off time.Duration
		err := WaitFor(ctx, "an NTP answer", func() error {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err := NTPQuery(qctx, Node1, "192.0.2.1:123")
			if err != nil {
				return err
			}
			if err := r.Validate(); err != nil {
				return err
			}
			if r.Stratum != 8 {
				return fmt.Errorf("stratum %d, want 8 (local stratum 8)", r.Stratum)
			}
			off = r.ClockOffset
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	if off := query(); off.Abs() > 2*time.Second {
		t.Errorf("offset %v before the fault, want ~0", off)
	}
	resetAfter(t, l)
	if err := l.Fault(ctx, "ntp-offset", "300"); err != nil {
		t.Fatal(err)
	}
	if off := query(); (off - 300*time.Second).Abs() > 5*time.Second {
		t.Errorf("offset %v under ntp-offset 300, want ~300s", off)
	}
	if err := l.Fault(ctx, "ntp-offset", "-120"); err != nil {
		t.Fatal(err)
	}
	if off := query(); (off + 120*time.Second).Abs() > 5*time.Second {
		t.Errorf("offset %v under ntp-offset -120, want ~-120s", off)
	}
	if err := l.Fault(ctx, "ntp-offset", "0"); err != nil {
		t.Fatal(err)
	}
	if off := query(); off.Abs() > 2*time.Second {
		t.Errorf("offset %v after ntp-offset 0, want ~0", off)
	}
}

func ping(ctx context.Context, l *Lab, from, to string) error {
	out, err := l.ExecContext(ctx, from, "ping", "-c1", "-W1", "-n", to)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", to, from, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func TestLinkDownUp(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	resetAfter(t, l)
	if err := ping(ctx, l, Infra, "192.0.2.11"); err != nil {
		t.Fatal(err)
	}
	if err := l.Fault(ctx, "link-down", Node1, "tel"); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, l, Infra, "192.0.2.11"); err == nil {
		t.Error("infra reaches 192.0.2.11 with node1's tel link down")
	}
	if err := ping(ctx, l, Node2, "198.51.100.1"); err != nil {
		t.Errorf("the cluster link should be untouched: %v", err)
	}
	if err := l.Fault(ctx, "link-up", Node1, "tel"); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, "infra to reach node1 again", func() error { return ping(ctx, l, Infra, "192.0.2.11") }); err != nil {
		t.Error(err)
	}
	if err := l.Fault(ctx, "link-down", Node2, "clu"); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, l, Node1, "198.51.100.2"); err == nil {
		t.Error("node1 reaches node2's cluster IP with node2's clu link down")
	}
	if err := ping(ctx, l, Infra, "192.0.2.12"); err != nil {
		t.Errorf("node2's telephony link should be untouched: %v", err)
	}
}

// The switch-port fence (the lab's fence_command): node1's telephony port
// out of the switch cuts it off there, a cable's link-down/up does not
// undo it, enabling it does, and reset restores it.
func TestSwitchPortFence(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	resetAfter(t, l)
	if !SwitchPortEnabled(ctx, Node1) {
		t.Fatal("node1's switch port is out of the switch after a reset")
	}
	if err := SetSwitchPort(ctx, Node1, false); err != nil {
		t.Fatal(err)
	}
	if SwitchPortEnabled(ctx, Node1) {
		t.Fatal("SwitchPortEnabled says enabled after disabling")
	}
	if err := ping(ctx, l, Infra, "192.0.2.11"); err == nil {
		t.Error("infra reaches 192.0.2.11 with node1's switch port disabled")
	}
	if err := ping(ctx, l, Node2, "198.51.100.1"); err != nil {
		t.Errorf("the cluster link should be untouched: %v", err)
	}
	for _, f := range []string{"link-down", "link-up"} {
		if err := l.Fault(ctx, f, Node1, "tel"); err != nil {
			t.Fatal(err)
		}
	}
	if err := ping(ctx, l, Infra, "192.0.2.11"); err == nil {
		t.Error("link-down/link-up undid the switch-port fence")
	}
	if st := l.Status(ctx); !strings.Contains(strings.Join(st.Hosts[0].Links, " "), "fenced") {
		t.Errorf("status does not show the fence: %v", st.Hosts[0].Links)
	}
	if err := SetSwitchPort(ctx, Node1, true); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, "infra to reach node1 again", func() error { return ping(ctx, l, Infra, "192.0.2.11") }); err != nil {
		t.Error(err)
	}
	if err := SetSwitchPort(ctx, Node1, false); err != nil {
		t.Fatal(err)
	}
	if err := l.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if !SwitchPortEnabled(ctx, Node1) {
		t.Error("reset left node1's switch port out of the switch")
	}
}

func TestKillStartFreezeThaw(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	resetAfter(t, l)
	pid := l.Pid(Node2, SvcRsyncd)
	if pid == 0 {
		t.Fatal("node2 rsyncd not running")
	}
	if err := l.Fault(ctx, "kill", Node2, "rsyncd"); err != nil {
		t.Fatal(err)
	}
	if l.Pid(Node2, SvcRsyncd) != 0 || !gone(pid) {
		t.Fatal("rsyncd still running after kill")
	}
	if err := l.Fault(ctx, "start", Node2, "rsyncd"); err != nil {
		t.Fatal(err)
	}
	if l.Pid(Node2, SvcRsyncd) == 0 {
		t.Fatal("rsyncd not running after start")
	}

	if err := l.Fault(ctx, "freeze", Node2); err != nil {
		t.Fatal(err)
	}
	// A frozen host accepts TCP (the kernel answers) but its programs say
	// nothing: the rsync greeting never comes.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err := probeBanner(pctx, Node1, "198.51.100.2:873", "@RSYNCD:")
	cancel()
	if err == nil {
		t.Error("frozen node2's rsyncd still greets")
	}
	for _, p := range l.hostPids(Node2) {
		if s := procState(p); s != 'T' && s != 0 {
			t.Errorf("pid %d of node2 in state %c after freeze", p, s)
		}
	}
	if err := l.Fault(ctx, "thaw", Node2); err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(ctx, "node2's rsyncd after thaw", func() error {
		return probeBanner(ctx, Node1, "198.51.100.2:873", "@RSYNCD:")
	}); err != nil {
		t.Error(err)
	}
}

func TestDiskFill(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 30*time.Second)
	resetAfter(t, l)
	used := func() int {
		var st unix.Statfs_t
		if err := unix.Statfs(l.DiskDir(Node1), &st); err != nil {
			t.Fatal(err)
		}
		return int(100 * (st.Blocks - st.Bfree) / st.Blocks)
	}
	if err := l.Fault(ctx, "disk-fill", Node1, "90"); err != nil {
		t.Fatal(err)
	}
	if u := used(); u < 89 || u > 91 {
		t.Errorf("disk-fill 90: %d%% used", u)
	}
	if err := l.Fault(ctx, "disk-fill", Node1, "100"); err != nil {
		t.Fatal(err)
	}
	if u := used(); u != 100 {
		t.Errorf("disk-fill 100: %d%% used", u)
	}
	if err := l.Fault(ctx, "disk-fill", Node1, "0"); err != nil {
		t.Fatal(err)
	}
	if u := used(); u > 1 {
		t.Errorf("disk-fill 0: %d%% used", u)
	}
	// The checks run inside the namespace: the mount must be visible there.
	out, err := l.ExecContext(ctx, Node1, "stat", "-f", "-c", "%T", l.DiskDir(Node1))
	if err != nil || strings.TrimSpace(string(out)) != "tmpfs" {
		t.Errorf("node1's disk inside its namespace: %q, %v", out, err)
	}
}

func TestIcingaTrivialConfig(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 60*time.Second)
	dir := t.TempDir()
	conf := `const PluginDir = "/usr/lib/nagios/plugins"
include <itl>
include <plugins>
object CheckerComponent "checker" { }
`
	if err := os.WriteFile(filepath.Join(dir, "icinga2.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckIcinga(ctx, Node2, dir); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "icinga2.conf"), []byte("object Nonsense {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckIcinga(ctx, Node2, bad); err == nil {
		t.Error("a broken config validated")
	}
	resetAfter(t, l)
	if err := l.StartIcinga(ctx, Node2, dir); err != nil {
		t.Fatal(err)
	}
	pid := l.Pid(Node2, SvcIcinga)
	if pid == 0 {
		t.Fatal("icinga2 not running after StartIcinga")
	}
	want, _ := os.Readlink("/proc/self/ns/net")
	got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if got == want {
		t.Error("icinga2 runs in the test's namespace, not node2's")
	}
	if err := l.StopIcinga(ctx, Node2); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Error("icinga2 still running after StopIcinga")
	}
}

func TestResetUndoesEverything(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 2*time.Minute)
	for _, f := range [][]string{
		{"link-down", Node1, "all"}, {"kill", Node1, "kamailio"}, {"disk-fill", Node2, "95"},
		{"ami", Node1, "refuse-login"}, {"freeze", Infra}, {"kill", Node2, "postgresql"},
	} {
		if err := l.Fault(ctx, f...); err != nil {
			t.Fatalf("fault %v: %v", f, err)
		}
	}
	// Stage a failover's leftovers: the VIP on node2, roles swapped.
	if err := placeVIP(ctx, Node2); err != nil {
		t.Fatal(err)
	}
	if err := l.SetRole(Node2, cluster.Master, 2, "test"); err != nil {
		t.Fatal(err)
	}
	if err := l.StartService(ctx, Node2, SvcKamailio); err != nil {
		t.Fatal(err)
	}
	if l.Healthy(ctx) == nil {
		t.Fatal("lab healthy with faults injected")
	}
	start := time.Now()
	if err := l.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reset took %v", time.Since(start))
	if err := l.Healthy(ctx); err != nil {
		t.Fatalf("not healthy after reset: %v", err)
	}
	if v := l.VIPHolders(ctx); len(v) != 1 || v[0] != Node1 {
		t.Errorf("VIP on %v after reset", v)
	}
	if s, _ := cluster.ReadState(l.StatePath(Node2)); s.Role != cluster.Slave || s.Epoch != 1 {
		t.Errorf("node2 state after reset: %+v", s)
	}
	if l.Pid(Node2, SvcKamailio) != 0 {
		t.Error("node2 still runs kamailio after reset")
	}
	if err := ping(ctx, l, Infra, VIP); err != nil {
		t.Error(err)
	}
}

// TestDialInIsInsideTheNamespace guards DialIn's contract: 192.0.2.1 does
// not exist in the test's own namespace.
func TestDialInIsInsideTheNamespace(t *testing.T) {
	l := need(t)
	c, err := l.DialIn(Node1, "tcp", "192.0.2.1:25")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if la := c.LocalAddr().(*net.TCPAddr); !la.IP.Equal(net.ParseIP("192.0.2.11")) && !la.IP.Equal(net.ParseIP(VIP)) {
		t.Errorf("local address %v is not node1's", la)
	}
}

// TestDownLeavesNothing runs last (file order): it tears the lab down,
// checks nothing is left, and brings it back up when it found one running,
// so later test packages still have their lab.
func TestDownLeavesNothing(t *testing.T) {
	l := need(t)
	ctx := ctxT(t, 5*time.Minute)
	var pids []int
	for _, h := range Hosts {
		pids = append(pids, l.hostPids(h.Name)...)
	}
	if len(pids) < 10 {
		t.Fatalf("only %d lab processes before down", len(pids))
	}
	if err := DownWith(ctx, Options{Root: l.root, Logf: logf}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if !gone(p) {
			t.Errorf("pid %d still alive after down", p)
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), NsPrefix) {
		t.Errorf("namespaces left: %s", out)
	}
	if m := mountsUnder(l.root); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(l.root); !os.IsNotExist(err) {
		t.Errorf("root %s left behind (%v)", l.root, err)
	}
	if _, err := Attach(); err == nil {
		t.Error("Attach succeeds after down")
	}
	if ownLab {
		// This binary built the lab to take it down at the end: done.
		ownLab = false
		return
	}
	nl, err := UpWith(ctx, Options{Root: l.root, Bin: l.st.Bin, Logf: logf})
	if err != nil {
		t.Fatalf("bringing the lab back up: %v", err)
	}
	theLab = nl
	if err := nl.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
}
