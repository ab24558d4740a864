package labdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"pbxha/testharness/netnsdial"
)

// TestMain doubles as the child process that runs Up and exits.
func TestMain(m *testing.M) {
	if env := os.Getenv("LABDB_TEST_UP"); env != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(env), &cfg); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		cfg.Logf = func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := Up(ctx, cfg); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseGTIDsAndContained(t *testing.T) {
	for _, tc := range []struct {
		name, primaryState, replicaPos string
		want                           bool
	}{
		{"fresh replica", "0-1-5", "", true},
		{"behind", "0-1-9", "0-1-5", true},
		{"equal", "0-1-5", "0-1-5", true},
		{"ahead of primary", "0-1-5", "0-1-6", false},
		{"wrote on its own while promoted", "0-1-5", "0-2-6", false},
		{"its writes came back to the primary", "0-1-5,0-2-6", "0-2-6", true},
		{"two domains, one missing", "0-1-5", "0-1-5,1-2-1", false},
		{"spaces and newlines", "0-1-5,\n1-2-3", " 1-2-3 , 0-1-4", true},
	} {
		got, err := gtidContained(tc.primaryState, tc.replicaPos)
		if err != nil || got != tc.want {
			t.Errorf("%s: gtidContained(%q, %q) = %v, %v; want %v", tc.name, tc.primaryState, tc.replicaPos, got, err, tc.want)
		}
	}
	for _, bad := range []string{"0-1", "a-b-c", "0-1-5-6", "0--5"} {
		if _, err := parseGTIDs(bad); err == nil {
			t.Errorf("parseGTIDs(%q) accepted", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	comm, st, ppid, ok := parseStat("4242 (postgres: walsender (x)) S 17 4242 4242 0 -1")
	if !ok || comm != "postgres: walsender (x)" || st != 'S' || ppid != 17 {
		t.Fatalf("parseStat = %q %c %d %v", comm, st, ppid, ok)
	}
	if _, _, _, ok := parseStat("garbage"); ok {
		t.Fatal("parseStat accepted garbage")
	}
}

func TestParseBatch(t *testing.T) {
	m := parseBatch("Slave_IO_State\tMaster_Host\tSlave_IO_Running\n\t198.51.100.1\tYes\n")
	if m["Master_Host"] != "198.51.100.1" || m["Slave_IO_Running"] != "Yes" || m["Slave_IO_State"] != "" {
		t.Fatalf("parseBatch = %v", m)
	}
	if parseBatch("") != nil {
		t.Fatal("no rows must give nil (no source configured)")
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{
			StateDir: "/tmp/x",
			Primary:  Node{Name: "node1", Root: "/tmp/x/node1", ClusterIP: "198.51.100.1"},
			Replica:  Node{Name: "node2", Root: "/tmp/x/node2", ClusterIP: "198.51.100.2"},
			Creds:    GenerateCreds(),
		}
	}
	if err := func() *Config { c := good(); return &c }().validate(); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"relative state dir": func(c *Config) { c.StateDir = "x" },
		"same roots":         func(c *Config) { c.Replica.Root = c.Primary.Root },
		"same names":         func(c *Config) { c.Replica.Name = c.Primary.Name },
		"bad ip":             func(c *Config) { c.Primary.ClusterIP = "node1" },
		"quote in password":  func(c *Config) { c.Creds.AppPassword = "abc'defgh" },
		"short password":     func(c *Config) { c.Creds.ReplPassword = "abc" },
		"user root":          func(c *Config) { c.Creds.AppUser = "root" },
		"same users":         func(c *Config) { c.Creds.ReplUser = c.Creds.AppUser },
		"bad client host":    func(c *Config) { c.ClientHosts = []string{"everywhere"} },
		"long root":          func(c *Config) { c.Primary.Root = "/tmp/" + strings.Repeat("x", 90) },
	} {
		c := good()
		mut(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPGHBAAllowsEveryClientHost(t *testing.T) {
	c := &Cluster{st: state{Creds: Creds{AppUser: "pbx", ReplUser: "repl"}, ClientHosts: DefaultClientHosts}}
	hba := c.pgHBA()
	for _, h := range DefaultClientHosts {
		for _, want := range []string{"host all pbx " + h + "/32 scram-sha-256", "host replication repl " + h + "/32 scram-sha-256"} {
			if !strings.Contains(hba, want) {
				t.Errorf("pg_hba lacks %q", want)
			}
		}
	}
}

// needRoot skips without root, except under CI=true where the test must run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root for network namespaces and the database servers (CI=true: not skipping)")
		}
		t.Skip("needs root for network namespaces and the database servers")
	}
}

func sh(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

const (
	ns1, ns2 = "pbxdbt-n1", "pbxdbt-n2"
	testRoot = "/tmp/pbxdbt"
)

// makeNamespaces builds two namespaces joined by a veth pair, like the lab's
// cluster link.
func makeNamespaces(t *testing.T) {
	for _, ns := range []string{ns1, ns2} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	t.Cleanup(func() {
		for _, ns := range []string{ns1, ns2} {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		}
	})
	sh(t, "ip", "netns", "add", ns1)
	sh(t, "ip", "netns", "add", ns2)
	sh(t, "ip", "link", "add", "pbxdbt-v1", "netns", ns1, "type", "veth", "peer", "name", "pbxdbt-v2", "netns", ns2)
	for ns, a := range map[string][2]string{ns1: {"pbxdbt-v1", "198.51.100.1/24"}, ns2: {"pbxdbt-v2", "198.51.100.2/24"}} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		sh(t, "ip", "-n", ns, "addr", "add", a[1], "dev", a[0])
		sh(t, "ip", "-n", ns, "link", "set", a[0], "up")
	}
}

func TestClusterUpReplicateResetKill(t *testing.T) {
	needRoot(t)
	makeNamespaces(t)
	// A fixed root: a run that crashed leaves labdb.json here, and Up stops
	// its servers before starting new ones.
	if err := os.MkdirAll(testRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(testRoot)
		} else {
			t.Logf("logs kept under %s", testRoot)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cfg := Config{
		StateDir: testRoot,
		Primary:  Node{Name: "node1", Netns: ns1, Root: testRoot + "/node1", ClusterIP: "198.51.100.1"},
		Replica:  Node{Name: "node2", Netns: ns2, Root: testRoot + "/node2", ClusterIP: "198.51.100.2"},
		Creds:    GenerateCreds(),
	}
	t.Cleanup(func() {
		// Whatever happened, stop what is described under the root.
		a, err := Attach(testRoot, t.Logf)
		if err != nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Down(dctx); err != nil {
			t.Errorf("Down: %v", err)
		}
		for k, pid := range a.Pids() {
			if pid != 0 {
				t.Errorf("after Down %s still runs as pid %d", k, pid)
			}
		}
	})
	// Up runs in a child process that exits, as `pbxlab up` does; everything
	// after it must find the servers again from the files. The child's
	// output is a pipe: a server that inherited it would keep it open, and
	// WaitDelay turns that into a failure instead of a hang.
	t0 := time.Now()
	b, _ := json.Marshal(cfg)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "LABDB_TEST_UP="+string(b))
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log("up process: " + line)
	}
	if err != nil {
		t.Fatalf("Up in a child process: %v", err)
	}
	t.Logf("Up (child process): both engines up and replicating in %.1fs", time.Since(t0).Seconds())
	c, err := Attach(testRoot, t.Logf)
	if err != nil {
		t.Fatal(err)
	}

	pids := c.Pids()
	for _, k := range []string{"node1/mariadb", "node1/postgresql", "node2/mariadb", "node2/postgresql"} {
		if pids[k] == 0 {
			t.Fatalf("Pids()[%q] = 0 after Up (%v)", k, pids)
		}
	}
	t.Logf("pids: %v", pids)

	db := map[string]*sql.DB{}
	for _, n := range []string{"node1", "node2"} {
		mc, err := c.MySQLConfig(n)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			t.Fatal(err)
		}
		db[n] = sql.OpenDB(conn)
		t.Cleanup(func() { db[n].Close() })
	}
	if _, err := db["node1"].ExecContext(ctx, "CREATE TABLE t (token VARCHAR(64) PRIMARY KEY)"); err != nil {
		t.Fatalf("mariadb node1 create table: %v", err)
	}
	pgExec(t, ctx, c, "node1", "CREATE TABLE t (token text PRIMARY KEY)")

	assertRoles(t, ctx, c, db)
	assertReplicates(t, ctx, c, db, "after up")
	assertCrossNodeLogin(t, ctx, c)

	// A failover by hand, as the eventhandler would do it, then writes on
	// the promoted node2 that node1 never sees.
	if _, err := db["node2"].ExecContext(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	if _, err := db["node2"].ExecContext(ctx, "SET GLOBAL read_only = OFF"); err != nil {
		t.Fatal(err)
	}
	if _, err := db["node2"].ExecContext(ctx, "INSERT INTO t VALUES ('written-on-promoted-node2')"); err != nil {
		t.Fatal(err)
	}
	pgExec(t, ctx, c, "node2", "SELECT pg_promote(true, 30)")
	pgExec(t, ctx, c, "node2", "INSERT INTO t VALUES ('written-on-promoted-node2')")

	a := c
	t0 = time.Now()
	if err := a.Reset(ctx); err != nil {
		t.Fatalf("Reset after failover: %v", err)
	}
	t.Logf("Reset after failover with divergent writes: %.1fs", time.Since(t0).Seconds())
	assertRoles(t, ctx, c, db)
	assertReplicates(t, ctx, c, db, "after reset from failover")
	var n int
	if err := db["node2"].QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE token = 'written-on-promoted-node2'").Scan(&n); err != nil || n != 0 {
		t.Errorf("mariadb node2 kept its divergent row after Reset (count %d, err %v)", n, err)
	}
	if got := pgCount(t, ctx, c, "node2", "written-on-promoted-node2"); got != 0 {
		t.Errorf("postgresql node2 kept its divergent row after Reset (count %d)", got)
	}

	failoverAndRejoin(t, ctx, c, db)
	t0 = time.Now()
	if err := a.Reset(ctx); err != nil {
		t.Fatalf("Reset after failover and rejoin: %v", err)
	}
	t.Logf("Reset after failover and rejoin: %.1fs", time.Since(t0).Seconds())
	assertRoles(t, ctx, c, db)
	assertReplicates(t, ctx, c, db, "after reset from rejoin")
	if err := db["node2"].QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE token = 'written-by-master-node2'").Scan(&n); err != nil || n != 1 {
		t.Errorf("mariadb node2 lost the row it wrote as master, which node1 had replicated (count %d, err %v)", n, err)
	}
	if got := pgCount(t, ctx, c, "node2", "written-by-master-node2"); got != 1 {
		t.Errorf("postgresql node2 lacks the row it wrote as master, which node1 had replicated (count %d)", got)
	}

	// Crash both replicas, then let Reset restart them: replication resumes
	// without a rebuild.
	for _, e := range Engines {
		if err := a.Kill(ctx, "node2", e); err != nil {
			t.Fatalf("Kill node2 %s: %v", e, err)
		}
	}
	for _, k := range []string{"node2/mariadb", "node2/postgresql"} {
		if pid := a.Pids()[k]; pid != 0 {
			t.Fatalf("%s still runs as pid %d after Kill", k, pid)
		}
	}
	t0 = time.Now()
	if err := a.Reset(ctx); err != nil {
		t.Fatalf("Reset after kill: %v", err)
	}
	t.Logf("Reset after killing both replicas: %.1fs", time.Since(t0).Seconds())
	assertRoles(t, ctx, c, db)
	assertReplicates(t, ctx, c, db, "after kill+reset")

	// Kill and Start the primary's PostgreSQL: the standby reconnects.
	if err := a.Kill(ctx, "node1", PostgreSQL); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, "node1", PostgreSQL); err != nil {
		t.Fatalf("Start node1 postgresql: %v", err)
	}
	if err := a.WaitReplicating(ctx); err != nil {
		t.Fatalf("after restarting node1 postgresql: %v", err)
	}
	assertReplicates(t, ctx, c, db, "after primary restart")

	// The commands cluster.toml gets: stop and start node2's servers the way
	// the failover would, from inside the namespace; labdb must see the
	// servers they start.
	for _, e := range Engines {
		srv, err := a.Server("node2", e)
		if err != nil {
			t.Fatal(err)
		}
		sh(t, append([]string{"ip", "netns", "exec", ns2}, srv.StopCommand...)...)
		if pid := a.Pids()[srv.Key()]; pid != 0 {
			t.Fatalf("%s: still running as pid %d after its StopCommand", srv.Key(), pid)
		}
		sh(t, append([]string{"ip", "netns", "exec", ns2}, srv.StartCommand...)...)
		if pid := a.Pids()[srv.Key()]; pid == 0 {
			t.Fatalf("%s: StartCommand returned but labdb does not find the server", srv.Key())
		}
	}
	if err := a.WaitReplicating(ctx); err != nil {
		t.Fatalf("after StopCommand/StartCommand on node2: %v", err)
	}
	assertRoles(t, ctx, c, db)
	assertReplicates(t, ctx, c, db, "after start/stop commands")

	// A healthy lab resets fast.
	t0 = time.Now()
	if err := a.Reset(ctx); err != nil {
		t.Fatalf("Reset of a healthy lab: %v", err)
	}
	t.Logf("Reset of a healthy lab: %.1fs", time.Since(t0).Seconds())

	// Up over a running lab (make lab-up is idempotent): the old servers
	// stop, fresh ones with new passwords replace them.
	old := a.Pids()
	cfg.Creds = GenerateCreds()
	cfg.Logf = t.Logf
	t0 = time.Now()
	c2, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up over a running lab: %v", err)
	}
	t.Logf("Up over a running lab: %.1fs", time.Since(t0).Seconds())
	for k, pid := range c2.Pids() {
		if pid == 0 || pid == old[k] {
			t.Errorf("%s: pid %d after the second Up (before: %d)", k, pid, old[k])
		}
	}
	db2 := map[string]*sql.DB{}
	for _, n := range []string{"node1", "node2"} {
		mc, _ := c2.MySQLConfig(n)
		conn, _ := mysql.NewConnector(mc)
		db2[n] = sql.OpenDB(conn)
		defer db2[n].Close()
	}
	if _, err := db2["node1"].ExecContext(ctx, "CREATE TABLE t (token VARCHAR(64) PRIMARY KEY)"); err != nil {
		t.Fatalf("second lab: mariadb node1 create table (the old table must be gone): %v", err)
	}
	pgExec(t, ctx, c2, "node1", "CREATE TABLE t (token text PRIMARY KEY)")
	assertReplicates(t, ctx, c2, db2, "second lab")
}

// failoverAndRejoin does by hand what the eventhandler's failover and an
// admin's rejoin do, with the application user's rights only: node2 becomes
// primary and takes a write, node1 becomes its replica (MariaDB re-pointed,
// PostgreSQL rewound with pg_rewind, which needs wal_log_hints).
func failoverAndRejoin(t *testing.T, ctx context.Context, c *Cluster, db map[string]*sql.DB) {
	t.Helper()
	cr := c.Creds()
	mexec := func(node, q string) {
		t.Helper()
		if _, err := db[node].ExecContext(ctx, q); err != nil {
			t.Fatalf("mariadb %s: %s: %v", node, q, err)
		}
	}
	mexec("node2", "STOP SLAVE")
	mexec("node2", "RESET SLAVE ALL")
	mexec("node2", "SET GLOBAL read_only = OFF")
	mexec("node2", "INSERT INTO t VALUES ('written-by-master-node2')")
	mexec("node1", "SET GLOBAL read_only = ON")
	mexec("node1", "SET GLOBAL gtid_slave_pos = @@gtid_current_pos")
	mexec("node1", fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = '198.51.100.2', MASTER_USER = '%s', MASTER_PASSWORD = '%s', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1", cr.ReplUser, cr.ReplPassword))
	mexec("node1", "START SLAVE")

	pgExec(t, ctx, c, "node2", "SELECT pg_promote(true, 30)")
	pgExec(t, ctx, c, "node2", "INSERT INTO t VALUES ('written-by-master-node2')")
	// The old primary took a write of its own after the split: pg_rewind
	// has something to undo.
	pgExec(t, ctx, c, "node1", "INSERT INTO t VALUES ('lost-on-old-master-node1')")
	if err := c.Stop(ctx, "node1", PostgreSQL); err != nil {
		t.Fatal(err)
	}
	srv, _ := c.Server("node1", PostgreSQL)
	rewind := exec.CommandContext(ctx, "ip", "netns", "exec", ns1, "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
		PGBinDir+"/pg_rewind", "--target-pgdata="+srv.DataDir, "--no-sync",
		fmt.Sprintf("--source-server=host=198.51.100.2 port=5432 user=%s dbname=postgres sslmode=disable", cr.AppUser))
	rewind.Env = append(os.Environ(), "PGPASSWORD="+cr.AppPassword)
	if out, err := rewind.CombinedOutput(); err != nil {
		t.Fatalf("pg_rewind node1 from node2 as %s: %v: %s", cr.AppUser, err, out)
	}
	auto := srv.DataDir + "/postgresql.auto.conf"
	f, err := os.OpenFile(auto, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "primary_conninfo = 'host=198.51.100.2 port=5432 user=%s password=%s application_name=node1'\n", cr.ReplUser, cr.ReplPassword)
	f.Close()
	if err := os.WriteFile(srv.DataDir+"/standby.signal", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "chown", "postgres:postgres", srv.DataDir+"/standby.signal")
	if err := c.Start(ctx, "node1", PostgreSQL); err != nil {
		t.Fatalf("starting rewound node1: %v", err)
	}

	// node1 now follows node2 in both engines.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var m int
		err := db["node1"].QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE token = 'written-by-master-node2'").Scan(&m)
		p := pgCount(t, ctx, c, "node1", "written-by-master-node2")
		lost := pgCount(t, ctx, c, "node1", "lost-on-old-master-node1")
		if err == nil && m == 1 && p == 1 && lost == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1 does not follow node2: mariadb count %d (err %v), postgresql count %d, rewound row count %d", m, err, p, lost)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Log("failover and rejoin by hand: node1 replicates from node2 in both engines")
}

func pgConnect(t *testing.T, ctx context.Context, c *Cluster, node string) *pgx.Conn {
	t.Helper()
	cfg, err := c.PGConfig(node)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("postgresql %s: %v", node, err)
	}
	return conn
}

func pgExec(t *testing.T, ctx context.Context, c *Cluster, node, q string, args ...any) {
	t.Helper()
	conn := pgConnect(t, ctx, c, node)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, q, args...); err != nil {
		t.Fatalf("postgresql %s: %s: %v", node, q, err)
	}
}

func pgCount(t *testing.T, ctx context.Context, c *Cluster, node, token string) int {
	t.Helper()
	conn := pgConnect(t, ctx, c, node)
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t WHERE token = $1", token).Scan(&n); err != nil {
		t.Fatalf("postgresql %s: %v", node, err)
	}
	return n
}

// assertRoles: node1 writable in both engines, node2 read-only.
func assertRoles(t *testing.T, ctx context.Context, c *Cluster, db map[string]*sql.DB) {
	t.Helper()
	for n, want := range map[string]int{"node1": 0, "node2": 1} {
		var ro int
		if err := db[n].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err != nil || ro != want {
			t.Errorf("mariadb %s read_only = %d (err %v), want %d", n, ro, err, want)
		}
		conn := pgConnect(t, ctx, c, n)
		var rec bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil || rec != (want == 1) {
			t.Errorf("postgresql %s in recovery = %v (err %v), want %v", n, rec, err, want == 1)
		}
		conn.Close(ctx)
	}
	conn := pgConnect(t, ctx, c, "node2")
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES ('must-fail-on-standby')"); err == nil {
		t.Error("postgresql node2 accepted a write as a standby")
	}
}

// assertReplicates writes a fresh token on node1 and waits at most 2 s for
// it on node2, in both engines.
func assertReplicates(t *testing.T, ctx context.Context, c *Cluster, db map[string]*sql.DB, label string) {
	t.Helper()
	const limit = 2 * time.Second
	token := rand.Text()
	if _, err := db["node1"].ExecContext(ctx, "INSERT INTO t VALUES (?)", token); err != nil {
		t.Fatalf("%s: mariadb node1 insert: %v", label, err)
	}
	t0 := time.Now()
	for {
		var n int
		err := db["node2"].QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE token = ?", token).Scan(&n)
		if err == nil && n == 1 {
			t.Logf("%s: mariadb row visible on node2 after %v", label, time.Since(t0).Round(time.Millisecond))
			break
		}
		if time.Since(t0) > limit {
			t.Fatalf("%s: mariadb row not on node2 after %v (last err %v)", label, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	w := pgConnect(t, ctx, c, "node1")
	defer w.Close(ctx)
	r := pgConnect(t, ctx, c, "node2")
	defer r.Close(ctx)
	if _, err := w.Exec(ctx, "INSERT INTO t VALUES ($1)", token); err != nil {
		t.Fatalf("%s: postgresql node1 insert: %v", label, err)
	}
	t0 = time.Now()
	for {
		var n int
		err := r.QueryRow(ctx, "SELECT count(*) FROM t WHERE token = $1", token).Scan(&n)
		if err == nil && n == 1 {
			t.Logf("%s: postgresql row visible on node2 after %v", label, time.Since(t0).Round(time.Millisecond))
			break
		}
		if time.Since(t0) > limit {
			t.Fatalf("%s: postgresql row not on node2 after %v (last err %v)", label, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertCrossNodeLogin logs in to node1 from node2's address, as the slave's
// checks and the failover do, and checks a foreign address is refused.
func assertCrossNodeLogin(t *testing.T, ctx context.Context, c *Cluster) {
	t.Helper()
	mc, _ := c.MySQLConfig("node1")
	mc.DialFunc = netnsdial.Dialer(ns2)
	conn, _ := mysql.NewConnector(mc)
	d := sql.OpenDB(conn)
	defer d.Close()
	if err := d.PingContext(ctx); err != nil {
		t.Errorf("mariadb login on node1 from node2: %v", err)
	}
	pc, _ := c.PGConfig("node1")
	pc.DialFunc = netnsdial.Dialer(ns2)
	pconn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		t.Errorf("postgresql login on node1 from node2: %v", err)
	} else {
		pconn.Close(ctx)
	}

	// An address that is not a lab client: add one to node2 and bind to it.
	sh(t, "ip", "-n", ns2, "addr", "add", "198.51.100.99/24", "dev", "pbxdbt-v2")
	defer sh(t, "ip", "-n", ns2, "addr", "del", "198.51.100.99/24", "dev", "pbxdbt-v2")
	from := func(ctx context.Context, network, addr string) (netConn, error) {
		return dialFrom(ctx, ns2, "198.51.100.99", addr)
	}
	mc2, _ := c.MySQLConfig("node1")
	mc2.DialFunc = from
	conn2, _ := mysql.NewConnector(mc2)
	d2 := sql.OpenDB(conn2)
	defer d2.Close()
	if err := d2.PingContext(ctx); err == nil || !strings.Contains(err.Error(), "1045") && !strings.Contains(err.Error(), "1130") {
		t.Errorf("mariadb login from 198.51.100.99: err %v, want access denied", err)
	}
	pc2, _ := c.PGConfig("node1")
	pc2.DialFunc = from
	if pconn, err := pgx.ConnectConfig(ctx, pc2); err == nil {
		pconn.Close(ctx)
		t.Error("postgresql login from 198.51.100.99 accepted")
	} else if !strings.Contains(err.Error(), "pg_hba.conf") {
		t.Errorf("postgresql login from 198.51.100.99: %v, want a pg_hba.conf refusal", err)
	}
}

type netConn = net.Conn

// dialFrom dials addr inside ns from the source address src.
func dialFrom(ctx context.Context, ns, src, addr string) (net.Conn, error) {
	var conn net.Conn
	err := netnsdial.Do(ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}
