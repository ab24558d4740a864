package integration

// check_pbx_db_query and check_pbx_db_sync against the lab's MariaDB and
// PostgreSQL pairs: node1 primary, node2 replica (LAB.md).

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbxha/testharness/lab"
	"pbxha/testharness/labdb"
	"pbxha/testharness/labtest"
)

const (
	dbQuery = "check_pbx_db_query"
	dbSync  = "check_pbx_db_sync"
	// dbSecret is a password no message could contain by accident.
	dbSecret = "PBXHA-SECRET-zebra-4711"
)

// dbPrimary is node1's cluster address, where node2 finds its primary.
var dbPrimary = lab.Hosts[0].ClusterIP

// dbCheck runs a database check in a node's namespace with that node's
// cluster.toml and the driver; env entries are added to the environment.
func dbCheck(t *testing.T, l *lab.Lab, node, name, driver string, env []string, args ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append([]string{bin(t, name), "--config", l.ConfigPath(node), "--driver", driver}, args...)
	cmd := l.Command(ctx, node, argv...)
	cmd.Env = append(os.Environ(), env...)
	r := labtest.Collect(cmd)
	if r.Err != nil {
		t.Fatalf("running %s in %s: %v", name, node, r.Err)
	}
	t.Logf("%s %s %s: %s", node, name, strings.Join(args, " "), r.First)
	return r
}

var dbPerfValue = regexp.MustCompile(`(?:^|[ |])'?([a-z_]+)'?=([-0-9.]+|U)`)

// dbPerf returns a perfdata value of the first line (NaN-free: -1 for U).
func dbPerf(t *testing.T, r Run, label string) float64 {
	t.Helper()
	_, p, _ := strings.Cut(r.First, " | ")
	for _, m := range dbPerfValue.FindAllStringSubmatch(p, -1) {
		if m[1] == label {
			if m[2] == "U" {
				return -1
			}
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	t.Fatalf("no perfdata %s in %q", label, r.First)
	return 0
}

// dbMySQLExec runs statements as the lab's application user on a node's
// MariaDB (it holds SUPER and REPLICATION SLAVE ADMIN).
func dbMySQLExec(t *testing.T, c *labdb.Cluster, node string, stmts ...string) {
	t.Helper()
	cfg, err := c.MySQLConfig(node)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, node, err)
		}
	}
}

// dbPsqlAdmin runs SQL as postgres over a node's socket (peer
// authentication, root mapped to postgres): pausing replay needs a
// superuser.
func dbPsqlAdmin(t *testing.T, c *labdb.Cluster, node, sql string) {
	t.Helper()
	s, err := c.Server(node, labdb.PostgreSQL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(labdb.PGBinDir, "psql"), "-X", "-q", "-h", s.Socket, "-U", "postgres", "-d", "pbx", "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q on %s: %v: %s", sql, node, err, out)
	}
}

// dbEngine is a driver's name in labdb and in the lab's services.
func dbEngine(driver string) labdb.Engine {
	if driver == "pgsql" {
		return labdb.PostgreSQL
	}
	return labdb.MariaDB
}

func TestDBQueryAndSync(t *testing.T) {
	l := useLab(t)
	for _, driver := range []string{"mysql", "pgsql"} {
		t.Run(driver, func(t *testing.T) {
			// The first run creates the table, which then replicates.
			r := dbCheck(t, l, lab.Node1, dbQuery, driver, nil, "--create")
			expect(t, r, 0, "PBX_DB_QUERY OK - "+driver+" 127.0.0.1:")
			if !strings.Contains(r.First, "heartbeat of node1 written and read back") || dbPerf(t, r, "connect_time") <= 0 || dbPerf(t, r, "query_time") <= 0 {
				t.Fatalf("%q", r.First)
			}
			expect(t, dbCheck(t, l, lab.Node1, dbQuery, driver, nil), 0, "PBX_DB_QUERY OK - ")
			expect(t, dbCheck(t, l, lab.Node2, dbQuery, driver, nil), 0, "PBX_DB_QUERY OK - skipped: node is slave (applies to master)")
			expect(t, dbCheck(t, l, lab.Node1, dbSync, driver, nil), 0, "PBX_DB_SYNC OK - skipped: node is master (applies to slave)")

			// The replica, against the primary's heartbeat: caught up.
			r = dbCheck(t, l, lab.Node2, dbSync, driver, nil, "--primary-host", dbPrimary)
			expect(t, r, 0, "PBX_DB_SYNC OK - ")
			if lag := dbPerf(t, r, "lag_seconds"); lag < 0 || lag > 2 {
				t.Fatalf("heartbeat lag %v on a healthy lab: %q", lag, r.First)
			}
			if dbPerf(t, r, "server_lag_seconds") != 0 {
				t.Fatalf("server lag on a healthy lab: %q", r.First)
			}
			if driver == "pgsql" && dbPerf(t, r, "bytes_behind") > 64*1024 {
				t.Fatalf("bytes behind on a healthy lab: %q", r.First)
			}
			r = dbCheck(t, l, lab.Node2, dbSync, driver, nil, "--primary-host", dbPrimary, "--write-heartbeat")
			expect(t, r, 0, "PBX_DB_SYNC OK - ")
			if lag := dbPerf(t, r, "lag_seconds"); lag < 0 || lag > 2 || !strings.Contains(r.First, "heartbeat reached the replica") {
				t.Fatalf("--write-heartbeat: %q", r.First)
			}
			r = dbCheck(t, l, lab.Node2, dbSync, driver, nil)
			expect(t, r, 0, "PBX_DB_SYNC OK - ")
			if !strings.Contains(r.First, "by this server's clock: no --primary-host") {
				t.Fatalf("no --primary-host must be said: %q", r.First)
			}

			// Each where it does not belong.
			r = dbCheck(t, l, lab.Node1, dbSync, driver, nil, "--role", "any")
			expect(t, r, 2, "PBX_DB_SYNC CRITICAL - not replicating: ")
			if driver == "pgsql" {
				r = dbCheck(t, l, lab.Node2, dbQuery, driver, nil, "--role", "any")
				expect(t, r, 2, "PBX_DB_QUERY CRITICAL - primary is in recovery")
			}

			// A wrong password, from a file and from the environment, at
			// -vvv: CRITICAL with the server's message, never the password.
			pw := filepath.Join(t.TempDir(), "pw")
			if err := os.WriteFile(pw, []byte(dbSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, r := range []Run{
				dbCheck(t, l, lab.Node1, dbQuery, driver, nil, "--password-file", pw, "-vvv"),
				dbCheck(t, l, lab.Node1, dbQuery, driver, []string{"PBXHA_DB_PASSWORD=" + dbSecret}, "-vvv"),
				dbCheck(t, l, lab.Node2, dbSync, driver, []string{"PBXHA_DB_PASSWORD=" + dbSecret}, "-vvv", "--primary-host", dbPrimary),
			} {
				if r.Code != 2 || !strings.Contains(r.First, "CRITICAL - connecting to "+driver+" at 127.0.0.1:") {
					t.Fatalf("wrong password: %d %q", r.Code, r.First)
				}
				if !strings.Contains(r.First, "ERROR 1045 (28000): Access denied") && !strings.Contains(r.First, "FATAL: password authentication failed") {
					t.Fatalf("the server's message is missing: %q", r.First)
				}
				if strings.Contains(r.Out+r.Stderr, dbSecret) {
					t.Fatalf("the password is in the output:\n%s", r.Out)
				}
			}
		})
	}
}

func TestDBMySQLFaults(t *testing.T) {
	l := useLab(t)
	c, err := l.DB()
	if err != nil {
		t.Fatal(err)
	}
	expect(t, dbCheck(t, l, lab.Node1, dbQuery, "mysql", nil, "--create"), 0, "PBX_DB_QUERY OK - ")

	// A stopped SQL thread, named.
	dbMySQLExec(t, c, lab.Node2, "STOP SLAVE SQL_THREAD")
	r := dbCheck(t, l, lab.Node2, dbSync, "mysql", nil, "--primary-host", dbPrimary)
	expect(t, r, 2, "PBX_DB_SYNC CRITICAL - replication from 198.51.100.1:3306 broken: SQL thread not running (Slave_SQL_Running: No)")
	dbMySQLExec(t, c, lab.Node2, "START SLAVE SQL_THREAD")
	dbWaitState(t, "replication to resume", func() Run { return dbCheck(t, l, lab.Node2, dbSync, "mysql", nil, "--primary-host", dbPrimary) }, 0)

	// A read-only primary: the lab's user could still write (it holds
	// READ_ONLY ADMIN), the check must not.
	dbMySQLExec(t, c, lab.Node1, "SET GLOBAL read_only = ON")
	r = dbCheck(t, l, lab.Node1, dbQuery, "mysql", nil)
	dbMySQLExec(t, c, lab.Node1, "SET GLOBAL read_only = OFF")
	expect(t, r, 2, "PBX_DB_QUERY CRITICAL - primary is read-only (read_only = ON on mysql 127.0.0.1:3306)")

	dbPrimaryHungAndKilled(t, l, c, "mysql")
}

func TestDBPostgreSQLFaults(t *testing.T) {
	l := useLab(t)
	c, err := l.DB()
	if err != nil {
		t.Fatal(err)
	}
	expect(t, dbCheck(t, l, lab.Node1, dbQuery, "pgsql", nil, "--create"), 0, "PBX_DB_QUERY OK - ")
	dbWaitState(t, "a caught-up standby", func() Run { return dbCheck(t, l, lab.Node2, dbSync, "pgsql", nil, "--primary-host", dbPrimary) }, 0)

	// Replay paused while db_query keeps writing: the lag crosses WARNING,
	// then CRITICAL.
	dbPsqlAdmin(t, c, lab.Node2, "SELECT pg_wal_replay_pause()")
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			dbPsqlAdmin(t, c, lab.Node2, "SELECT pg_wal_replay_resume()")
		}
	}
	defer resume()
	var seen []string
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		expect(t, dbCheck(t, l, lab.Node1, dbQuery, "pgsql", nil), 0, "PBX_DB_QUERY OK - ")
		r := dbCheck(t, l, lab.Node2, dbSync, "pgsql", nil, "--primary-host", dbPrimary, "-w", "2", "-c", "6", "-t", "4")
		state := map[int]string{0: "OK", 1: "WARNING", 2: "CRITICAL"}[r.Code]
		if state == "" {
			t.Fatalf("exit %d: %s", r.Code, r.Out)
		}
		if len(seen) == 0 || seen[len(seen)-1] != state {
			seen = append(seen, state)
		}
		if state == "CRITICAL" {
			if !strings.Contains(r.Out, "WAL replay paused") || dbPerf(t, r, "lag_seconds") <= 6 && dbPerf(t, r, "server_lag_seconds") <= 6 {
				t.Fatalf("CRITICAL without the reason: %q", r.First)
			}
			break
		}
	}
	if s := strings.Join(seen, " "); !strings.Contains(s, "WARNING CRITICAL") {
		t.Fatalf("states while replay was paused: %s; want WARNING, then CRITICAL", s)
	}
	resume()
	dbWaitState(t, "replay to catch up", func() Run { return dbCheck(t, l, lab.Node2, dbSync, "pgsql", nil, "--primary-host", dbPrimary) }, 0)

	dbPrimaryHungAndKilled(t, l, c, "pgsql")
}

// dbPrimaryHungAndKilled: node1's server stopped with SIGSTOP (the kernel
// still accepts connections, nobody answers) makes db_query CRITICAL by
// -t, naming the step; killed, CRITICAL at once, and the replica notices.
func dbPrimaryHungAndKilled(t *testing.T, l *lab.Lab, c *labdb.Cluster, driver string) {
	t.Helper()
	key := lab.Node1 + "/" + string(dbEngine(driver))
	pid := c.Pids()[key]
	if pid == 0 {
		t.Fatalf("%s is not running", key)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := dbCheck(t, l, lab.Node1, dbQuery, driver, nil, "-t", "2")
	syscall.Kill(pid, syscall.SIGCONT)
	took := time.Since(start)
	expect(t, r, 2, "PBX_DB_QUERY CRITICAL - timed out after 2s while connecting to "+driver+" at 127.0.0.1:")
	if took > 4*time.Second {
		t.Fatalf("-t 2 returned after %v", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Fault(ctx, "kill", lab.Node1, string(dbEngine(driver))); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Fault(ctx, "start", lab.Node1, string(dbEngine(driver))); err != nil {
			t.Errorf("restarting %s: %v", key, err)
		}
	}()
	r = dbCheck(t, l, lab.Node1, dbQuery, driver, nil, "-t", "3")
	expect(t, r, 2, "PBX_DB_QUERY CRITICAL - connecting to "+driver+" at 127.0.0.1:")
	if !strings.Contains(r.First, "connection refused") {
		t.Fatalf("%q", r.First)
	}
	// The replica's own view: MariaDB's IO thread retrying with error
	// 2003 (after a 2013 while the connection broke); PostgreSQL's WAL
	// receiver gone, or restarting and not streaming.
	want := map[string][]string{
		"mysql": {"replication from 198.51.100.1:3306 broken: IO thread not connected (Slave_IO_Running: Connecting): last IO error 2003: "},
		"pgsql": {"not replicating: no WAL receiver runs", "not streaming"},
	}[driver]
	dbWaitFor(t, "the replica to notice", func() Run {
		return dbCheck(t, l, lab.Node2, dbSync, driver, nil, "--primary-host", dbPrimary, "-t", "3")
	}, func(r Run) bool {
		for _, w := range want {
			if r.Code == 2 && strings.Contains(r.First, w) {
				return true
			}
		}
		return false
	})
}

// dbWaitState reruns fn until it exits with code.
func dbWaitState(t *testing.T, what string, fn func() Run, code int) Run {
	t.Helper()
	return dbWaitFor(t, what, fn, func(r Run) bool { return r.Code == code })
}

// dbWaitFor reruns fn until ok (at most 30 s) and returns that run.
func dbWaitFor(t *testing.T, what string, fn func() Run, ok func(Run) bool) Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := fn()
		if r.Stderr != "" {
			t.Fatalf("wrote to stderr: %q", r.Stderr)
		}
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up at exit %d: %s", what, r.Code, r.Out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
