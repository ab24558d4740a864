package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"pbxha/testharness/lab"
	"pbxha/testharness/labdb"
)

// groupLab marks the pairs that run in the lab.
const groupLab = "lab"

// The network pairs run where a slave's Icinga runs them: inside node2's
// namespace, against node1 and the VIP.
const (
	fromNode = lab.Node2
	// hbNode is the heartbeat row our db_query writes (--node): its own
	// row, so the one the lab's tests read is left alone and the row can be
	// deleted at the end.
	hbNode = "pbxbench"
	// deadTel and deadClu are lab addresses nobody holds: a master that
	// answers nothing, without touching the lab (no fault to undo).
	deadTel = "192.0.2.99"
	deadClu = "198.51.100.99"
	// lockWait bounds the wait for the lab lock: another package's
	// integration tests may hold it for minutes.
	lockWait = 20 * time.Minute
)

// labFixture is what the lab pairs share: the attached lab, node2's
// cluster.toml, and the peers' credential files.
type labFixture struct {
	l       *lab.Lab
	why     string // non-empty: every lab pair shows n/a with this
	ns      string
	cfg     string // node2's cluster.toml: our checks' secrets come from it
	myCnf   string // client options file for check_mysql(_query) -f
	pgPass  string // PGPASSFILE for check_pgsql
	created map[string]bool
	unlock  func()
}

// runLab takes the lab lock, attaches to the lab (bringing it up when none
// runs), measures the lab pairs and puts back what it changed.
func runLab(ctx context.Context, o options, f *fixtures, tmp string, useRSSTool bool) []pairResult {
	lf := &labFixture{ns: lab.Netns(fromNode), created: map[string]bool{}}
	lf.setup(ctx, o, f, tmp)
	defer lf.close(ctx, f)
	var results []pairResult
	for _, p := range labPairs(o, lf) {
		if !o.selected(p.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s (lab) ...\n", p.name)
		results = append(results, measurePair(o, p, tmp, useRSSTool))
	}
	f.failover = lf.failoverBench(ctx, o)
	return results
}

func (lf *labFixture) setup(ctx context.Context, o options, f *fixtures, tmp string) {
	if os.Geteuid() != 0 {
		lf.why = "the lab needs root"
		return
	}
	fmt.Fprintln(os.Stderr, "bench: taking the lab lock", lab.LockPath())
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	unlock, err := lab.Lock(lctx)
	cancel()
	if err != nil {
		lf.why = "lab lock: " + err.Error()
		return
	}
	lf.unlock = unlock
	l, err := lab.Attach()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: no lab (%v): bringing it up\n", err)
		bin := ""
		if executable(filepath.Join(o.bin, "pbxlab")) {
			bin = o.bin
		}
		logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: lab: "+format+"\n", a...) }
		t0 := time.Now()
		if l, err = lab.UpWith(ctx, lab.Options{Bin: bin, Logf: logf}); err != nil {
			lf.why = "bringing the lab up: " + err.Error()
			return
		}
		f.note("lab: none was running, so the harness brought it up as `pbxlab up` does (%.0f s) and left it running (`make lab-down` removes it).", time.Since(t0).Seconds())
	} else if err := labReady(ctx, l); err != nil {
		fmt.Fprintf(os.Stderr, "bench: the lab is not in its initial state (%v): resetting it\n", err)
		if err := l.Reset(ctx); err != nil {
			lf.why = "resetting the lab: " + err.Error()
			return
		}
		f.note("lab: it was not in its initial state (%s), so the harness reset it first (`pbxlab reset`).", oneLine(err.Error()))
	}
	if err := labReady(ctx, l); err != nil {
		lf.why = "the lab is not healthy: " + oneLine(err.Error())
		return
	}
	lf.l = l
	lf.cfg = l.ConfigPath(fromNode)
	if err := lf.checkNetns(); err != nil {
		lf.why = err.Error()
		return
	}
	if err := lf.writeSecrets(tmp); err != nil {
		lf.why = "writing the peers' credential files: " + err.Error()
		return
	}
	if err := lf.heartbeatTables(ctx, o); err != nil {
		lf.why = "heartbeat table: " + err.Error()
		return
	}
	f.note("lab: every lab row runs inside %s (node2, the slave), against node1 (%s, %s) and the VIP %s; the harness enters the namespace with setns on one thread and forks the check from it, so neither side pays for a wrapper such as `ip netns exec`.",
		lf.ns, node1().TelIP, node1().ClusterIP, lab.VIP)
	f.note("lab credentials: our checks read every secret from node2's cluster.toml (`{ file = ... }` under %s/secrets); check_mysql and check_mysql_query from a 0600 client options file ($TMP/my.cnf, -f), check_pgsql from a 0600 PGPASSFILE ($TMP/pgpass, read by libpq): no password on any command line.", l.RootDir())
}

// labReady is Healthy plus the roles every lab row assumes: node1 master,
// node2 slave.
func labReady(ctx context.Context, l *lab.Lab) error {
	if err := l.Healthy(ctx); err != nil {
		return err
	}
	for _, h := range l.Status(ctx).Hosts {
		want := map[string]string{lab.Node1: "master@", lab.Node2: "slave@"}[h.Host]
		if want != "" && !strings.HasPrefix(h.Role, want) {
			return fmt.Errorf("%s is %q, want %s...", h.Host, h.Role, want)
		}
	}
	return nil
}

// checkNetns proves that a child started through runInNetns lives in the
// node's namespace: a harness that silently measured from the host would
// report the loopback, not the lab.
func (lf *labFixture) checkNetns() error {
	var want syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+lf.ns, &want); err != nil {
		return fmt.Errorf("namespace %s: %w", lf.ns, err)
	}
	_, got, err := runOnce(side{argv: []string{"/bin/readlink", "/proc/self/ns/net"}, netns: lf.ns})
	if err != nil {
		return fmt.Errorf("running in %s: %w", lf.ns, err)
	}
	if wantLink := fmt.Sprintf("net:[%d]", want.Ino); strings.TrimSpace(got) != wantLink {
		return fmt.Errorf("a child started in %s is in %s, want %s", lf.ns, strings.TrimSpace(got), wantLink)
	}
	return nil
}

// writeSecrets writes the peers' credential files, mode 0600 in the
// harness's 0700 temp dir (removed at the end).
func (lf *labFixture) writeSecrets(tmp string) error {
	c := lf.l.Creds()
	lf.myCnf = filepath.Join(tmp, "my.cnf")
	if err := writeSecret(lf.myCnf, fmt.Sprintf("[client]\nuser=%s\npassword=%s\n", c.MySQLUser, c.MySQLPassword)); err != nil {
		return err
	}
	lf.pgPass = filepath.Join(tmp, "pgpass")
	return writeSecret(lf.pgPass, fmt.Sprintf("*:%d:%s:%s:%s\n", labdb.PostgreSQLPort, labdb.Database, c.PGUser, c.PGPassword))
}

func writeSecret(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// heartbeatTables makes sure both primaries hold the heartbeat table
// db_query writes to: a freshly built lab has none until a test ran
// db_query --create. A table the harness creates is dropped at the end.
func (lf *labFixture) heartbeatTables(ctx context.Context, o options) error {
	for _, driver := range []string{"mysql", "pgsql"} {
		exists, err := lf.sqlOnPrimary(ctx, driver, "exists")
		if err != nil {
			return err
		}
		if exists {
			continue
		}
		argv := append([]string{filepath.Join(o.bin, "check_pbx_db_query"), "--config", lf.cfg}, lf.dbQueryArgs(driver)...)
		smp, first, err := runOnce(side{argv: append(argv, "--create"), netns: lf.ns})
		if err != nil || smp.exit != 0 {
			return fmt.Errorf("creating it on the %s primary: exit %d, %q %v", driver, smp.exit, first, err)
		}
		lf.created[driver] = true
	}
	return nil
}

// sqlOnPrimary runs one of the harness's own statements on node1's
// server, as the lab's application user: "exists" (is the heartbeat table
// there), "delete" (our heartbeat row) or "drop" (the table).
func (lf *labFixture) sqlOnPrimary(ctx context.Context, driver, what string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := lf.l.DB()
	if err != nil {
		return false, err
	}
	const table = "pbxha_heartbeat"
	switch driver {
	case "mysql":
		cfg, err := c.MySQLConfig(lab.Node1)
		if err != nil {
			return false, err
		}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return false, err
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		switch what {
		case "exists":
			var n int
			err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n)
			return n > 0, err
		case "delete":
			_, err := db.ExecContext(ctx, "DELETE FROM "+table+" WHERE node = ?", hbNode)
			return true, err
		case "drop":
			_, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table)
			return true, err
		}
	case "pgsql":
		cfg, err := c.PGConfig(lab.Node1)
		if err != nil {
			return false, err
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return false, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		switch what {
		case "exists":
			var ok bool
			err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok)
			return ok, err
		case "delete":
			_, err := conn.Exec(ctx, "DELETE FROM "+table+" WHERE node = $1", hbNode)
			return true, err
		case "drop":
			_, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			return true, err
		}
	}
	return false, fmt.Errorf("unknown %s statement %q", driver, what)
}

// close puts back what the lab pairs changed: our heartbeat rows (and a
// table we created), the neighbour entries the dead-master probes left in
// node2; if the lab is then not in its initial state it is reset. Then
// the lock is released.
func (lf *labFixture) close(ctx context.Context, f *fixtures) {
	if lf.unlock == nil {
		return
	}
	defer lf.unlock()
	if lf.l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	var errs []error
	for _, driver := range []string{"mysql", "pgsql"} {
		what := "delete"
		if lf.created[driver] {
			what = "drop"
		}
		if _, err := lf.sqlOnPrimary(ctx, driver, what); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", driver, what, err))
		}
	}
	for _, ip := range []string{deadTel, deadClu} {
		// A missing entry is fine: flush of nothing succeeds.
		if out, err := exec.CommandContext(ctx, "ip", "-n", lf.ns, "neigh", "flush", "to", ip).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip neigh flush %s: %v: %s", ip, err, strings.TrimSpace(string(out))))
		}
	}
	if err := labReady(ctx, lf.l); err != nil {
		errs = append(errs, fmt.Errorf("after the lab pairs: %w", err))
		if rerr := lf.l.Reset(ctx); rerr != nil {
			errs = append(errs, fmt.Errorf("reset: %w", rerr))
		}
	}
	if len(errs) > 0 {
		msg := oneLine(errors.Join(errs...).Error())
		fmt.Fprintln(os.Stderr, "bench: lab cleanup:", msg)
		f.note("lab cleanup: %s", msg)
	}
}

func node1() lab.HostInfo { h, _ := lab.Host(lab.Node1); return h }
func node2() lab.HostInfo { h, _ := lab.Host(lab.Node2); return h }

// dbQueryArgs points db_query at node1's server of driver, writing the
// harness's own heartbeat row.
func (lf *labFixture) dbQueryArgs(driver string) []string {
	port := fmt.Sprint(labdb.MariaDBPort)
	if driver == "pgsql" {
		port = fmt.Sprint(labdb.PostgreSQLPort)
	}
	return []string{"--driver", driver, "-H", node1().ClusterIP, "-P", port, "--node", hbNode, "--role", "any"}
}

// freshHeartbeat writes a heartbeat on the primary before a replica pair,
// so the replica checks read a young row (they take its age as the lag
// when no --primary-host is given) and return OK as their peers do.
func (lf *labFixture) freshHeartbeat(o options, driver string) func() error {
	return func() error {
		argv := append([]string{filepath.Join(o.bin, "check_pbx_db_query"), "--config", lf.cfg}, lf.dbQueryArgs(driver)...)
		smp, first, err := runOnce(side{argv: argv, netns: lf.ns})
		if err != nil {
			return err
		}
		if smp.exit != 0 {
			return fmt.Errorf("writing a heartbeat: exit %d: %s", smp.exit, first)
		}
		time.Sleep(300 * time.Millisecond) // let it replicate
		return nil
	}
}

func labPairs(o options, lf *labFixture) []pair {
	blocked := func(s side) side {
		if lf.why != "" && s.missing == "" {
			s.missing = lf.why
		}
		return s
	}
	ours := func(name string, args ...string) side {
		path := filepath.Join(o.bin, name)
		s := side{label: name, argv: append([]string{path, "--config", lf.cfg}, args...), env: o.oursEnv, netns: lf.ns}
		if !executable(path) {
			s.missing = path + " not built"
		}
		return blocked(s)
	}
	peerAt := func(path string, args ...string) side {
		s := side{label: filepath.Base(path), argv: append([]string{path}, args...), netns: lf.ns}
		if !executable(path) {
			s.missing = path + " not installed"
		}
		return blocked(s)
	}
	peer := func(name string, args ...string) side { return peerAt(filepath.Join(o.peers, name), args...) }
	none := func(why string) side { return side{label: "none", missing: "no peer: " + why} }
	sipsak := "/usr/bin/sipsak"
	if p, err := exec.LookPath("sipsak"); err == nil {
		sipsak = p
	}

	n1, n2 := node1(), node2()
	mysqlPort, pgPort := fmt.Sprint(labdb.MariaDBPort), fmt.Sprint(labdb.PostgreSQLPort)
	const hbCount = "SELECT COUNT(*) FROM pbxha_heartbeat"
	const streaming = "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"
	probes := []string{"-n", "3", "--interval", "100ms", "--probe-timeout", "200ms"}
	pgEnv := []string{"PGPASSFILE=" + lf.pgPass}
	pgUser := "" // no lab: every row is n/a anyway
	if lf.l != nil {
		pgUser = lf.l.Creds().PGUser
	}
	withEnv := func(s side, env []string) side { s.env = append(s.env, env...); return s }

	return []pair{
		{
			name: "icmp", group: groupLab,
			note: "both probe node1's telephony and cluster IPs, 3 echo requests each at most 100 ms apart; check_icmp has no per-probe timeout (its -t 10 bounds the run, as ours does).",
			ours: ours("check_pbx_master_alive", append([]string{"--method", "icmp", "--tel-ip", n1.TelIP, "--clu-ip", n1.ClusterIP}, probes...)...),
			peer: peer("check_icmp", "-H", n1.TelIP, "-H", n1.ClusterIP, "-n", "3", "-i", "100ms"),
		},
		{
			name: "icmp-dead", group: groupLab, wallMS: 600,
			note: "a dead master: two lab addresses nobody holds (" + deadTel + ", " + deadClu + "; no ARP answer, as from a powered-off node), so no fault is set in the lab. Ours decides after its 3 probes of 200 ms (defaults); check_icmp waits for its -t, and 1 s is the shortest it takes (whole seconds). Issue 4's target: ours ≤ 600 ms wall.",
			ours: ours("check_pbx_master_alive", append([]string{"--method", "icmp", "--tel-ip", deadTel, "--clu-ip", deadClu}, probes...)...),
			peer: peer("check_icmp", "-H", deadTel, "-H", deadClu, "-n", "3", "-i", "100ms", "-t", "1"),
		},
		{
			name: "rsync", group: groupLab,
			note: "the plain greeting check of issue 7: ours reads @RSYNCD:, sends its own and lists the modules (--no-auth: no login), check_tcp reads the greeting and matches @RSYNCD:; both against node1's rsyncd on the cluster network.",
			ours: ours("check_pbx_rsync", "-H", n1.ClusterIP, "-p", fmt.Sprint(lab.RsyncPort), "-m", "pbx", "--no-auth"),
			peer: peer("check_tcp", "-H", n1.ClusterIP, "-p", fmt.Sprint(lab.RsyncPort), "-e", "@RSYNCD:"),
		},
		{
			name: "rsync-login", group: groupLab, noPeer: true,
			note: "ours with its default work: greeting, module list, and a login to module pbx with the password from cluster.toml.",
			ours: ours("check_pbx_rsync", "-H", n1.ClusterIP, "-p", fmt.Sprint(lab.RsyncPort), "-m", "pbx"),
			peer: none("no monitoring plugin logs in to an rsync module (check_tcp stops at the greeting)"),
		},
		{
			name: "mysql", group: groupLab, rssMiB: 20,
			note: "ours upserts and reads back a heartbeat row in one transaction (--node " + hbNode + ", a row of the harness's own, deleted at the end); check_mysql connects and asks for the server's status. Issue 6's RSS ceiling for the database checks: 20 MiB.",
			ours: ours("check_pbx_db_query", lf.dbQueryArgs("mysql")...),
			peer: peer("check_mysql", "-H", n1.ClusterIP, "-P", mysqlPort, "-d", labdb.Database, "-f", lf.myCnf),
		},
		{
			name: "mysql-query", group: groupLab, rssMiB: 20,
			note: "the same SELECT on both sides; ours also writes its heartbeat first.",
			ours: ours("check_pbx_db_query", append(lf.dbQueryArgs("mysql"), "--query", hbCount)...),
			peer: peer("check_mysql_query", "-H", n1.ClusterIP, "-P", mysqlPort, "-d", labdb.Database, "-f", lf.myCnf, "-q", hbCount),
		},
		{
			name: "mysql-replica", group: groupLab, rssMiB: 20, before: lf.freshHeartbeat(o, "mysql"),
			note: "node2's replica: ours reads SHOW REPLICA STATUS and the heartbeat's age (no --primary-host, so one connection like the peer), check_mysql -S reads SHOW SLAVE STATUS; same -w 30 -c 120. A heartbeat is written on the primary just before.",
			ours: ours("check_pbx_db_sync", "--driver", "mysql", "-H", n2.ClusterIP, "-P", mysqlPort, "-w", "30", "-c", "120"),
			peer: peer("check_mysql", "-H", n2.ClusterIP, "-P", mysqlPort, "-d", labdb.Database, "-f", lf.myCnf, "-S", "-w", "30", "-c", "120"),
		},
		{
			name: "pgsql", group: groupLab, rssMiB: 20,
			note: "ours upserts and reads back its heartbeat row; check_pgsql connects and disconnects (its default work). Both without TLS (cluster.toml says tls = disable; the peer gets -o sslmode=disable, or libpq would first ask for TLS).",
			ours: ours("check_pbx_db_query", lf.dbQueryArgs("pgsql")...),
			peer: withEnv(peer("check_pgsql", "-H", n1.ClusterIP, "-P", pgPort, "-d", labdb.Database, "-l", pgUser, "-o", "sslmode=disable"), pgEnv),
		},
		{
			name: "pgsql-standby", group: groupLab, rssMiB: 20, before: lf.freshHeartbeat(o, "pgsql"),
			note: "node2's standby: ours checks recovery, the WAL receiver, replay lag and the heartbeat's age; check_pgsql gets the nearest query it can judge, the number of streaming WAL receivers (-W 1: -C 1:).",
			ours: ours("check_pbx_db_sync", "--driver", "pgsql", "-H", n2.ClusterIP, "-P", pgPort, "-w", "30", "-c", "120"),
			peer: withEnv(peer("check_pgsql", "-H", n2.ClusterIP, "-P", pgPort, "-d", labdb.Database, "-l", pgUser, "-o", "sslmode=disable",
				"-q", streaming, "-W", "1:", "-C", "1:"), pgEnv),
		},
		{
			name: "sip", group: groupLab,
			note: "one OPTIONS over UDP to Kamailio on the VIP. sipsak gets -H with node2's address so it puts that in Via, as ours does, instead of resolving its host name (which it would otherwise look up through nscd and /etc/hosts). sipsak prints nothing without -v: its exit code 0 is the 200.",
			ours: ours("check_pbx_sip", "-H", lab.VIP, "-p", fmt.Sprint(lab.SIPPort), "--transport", "udp", "--role", "any"),
			peer: peerAt(sipsak, "-s", fmt.Sprintf("sip:%s:%d", lab.VIP, lab.SIPPort), "-H", n2.TelIP),
		},
		{
			name: "ami", group: groupLab, noPeer: true, cpuMS: 5,
			note: "connect, login (secret from cluster.toml), Ping, CoreStatus, Logoff against the lab's AMI endpoint on the VIP. Issue 5's target: CPU ≤ 5 ms, wall dominated by the round trips.",
			ours: ours("check_pbx_ami", "-H", lab.VIP, "-p", fmt.Sprint(lab.AMIPort), "--role", "any"),
			peer: none("no monitoring plugin speaks AMI (check_tcp could only read the greeting)"),
		},
		{
			name: "time-lab", group: groupLab,
			note: "both ask infra's chronyd (" + lab.InfraTelIP + ") once, over the telephony network.",
			ours: ours("check_pbx_time", "-H", lab.InfraTelIP, "--role", "any"),
			peer: peer("check_ntp_time", "-H", lab.InfraTelIP),
		},
		{
			name: "time-peer", group: groupLab, noPeer: true,
			note: "ours also reads node1's clock over SSH (cluster.toml [ssh], the forced pbxha-peer command): the cost of --peer is this row minus time-lab's.",
			ours: ours("check_pbx_time", "-H", lab.InfraTelIP, "--peer", "--role", "any"),
			peer: none("no monitoring plugin measures the skew to another host over SSH"),
		},
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
