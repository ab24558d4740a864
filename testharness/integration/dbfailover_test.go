package integration

// The data part of failover (lib/dbfailover) against the lab's MariaDB and
// PostgreSQL pairs at once: node1 primary with data and a writer → node1
// cut off → Promote on node2, writes go there → node1 back, Demote and
// Rejoin → node1 follows node2, every acknowledged write on both sides,
// counts and checksums equal → an errant transaction on node1 is refused.
// The library runs inside the nodes' namespaces: the test binary re-runs
// itself there as TestDBFailoverHelper.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"pbxha/lib/config"
	"pbxha/lib/dbfailover"
	"pbxha/testharness/lab"
	"pbxha/testharness/labdb"
)

const dbfoHelperEnv = "PBXHA_DBFO_HELPER"

// TestDBFailoverHelper is the library's entry inside a namespace; it does
// nothing in a normal run.
func TestDBFailoverHelper(t *testing.T) {
	action := os.Getenv(dbfoHelperEnv)
	if action == "" {
		return
	}
	cfg, err := config.Load(os.Getenv("PBXHA_CONFIG"), true)
	if err != nil {
		fmt.Println("ERR config:", err)
		os.Exit(0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var sum string
	switch action {
	case "promote":
		sum, err = dbfailover.Promote(ctx, cfg, dbfailover.Options{MasterReachable: os.Getenv("PBXHA_DBFO_REACHABLE") == "1"})
	case "demote":
		sum, err = dbfailover.Demote(ctx, cfg)
	case "rejoin":
		sum, err = dbfailover.Rejoin(ctx, cfg, *cfg.Peer())
	}
	fmt.Println(sum)
	if err != nil {
		fmt.Println("ERR", err)
	}
	os.Exit(0)
}

// dbfo runs one library function in node's namespace; it returns the
// summary and the error text ("" when none).
func dbfo(t *testing.T, l *lab.Lab, node, action string, env ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := l.Command(ctx, node, os.Args[0], "-test.run=^TestDBFailoverHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{dbfoHelperEnv + "=" + action, "PBXHA_CONFIG=" + l.ConfigPath(node)}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s on %s: %v\n%s", action, node, err, out)
	}
	sum, errText, _ := strings.Cut(strings.TrimSpace(string(out)), "\nERR ")
	sum = strings.TrimSuffix(sum, "\nPASS")
	errText = strings.TrimSuffix(errText, "\nPASS")
	t.Logf("%s on %s: %s (err: %s)", action, node, sum, errText)
	return sum, errText
}

// dbfoConns holds the application user's connections to both engines of
// both nodes.
type dbfoConns struct {
	my map[string]*sql.DB
	pg map[string]*pgx.ConnConfig
}

func dbfoOpen(t *testing.T, c *labdb.Cluster) *dbfoConns {
	t.Helper()
	d := &dbfoConns{my: map[string]*sql.DB{}, pg: map[string]*pgx.ConnConfig{}}
	for _, n := range []string{"node1", "node2"} {
		mc, err := c.MySQLConfig(n)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			t.Fatal(err)
		}
		d.my[n] = sql.OpenDB(conn)
		d.my[n].SetMaxIdleConns(0)
		t.Cleanup(func() { d.my[n].Close() })
		if d.pg[n], err = c.PGConfig(n); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// write inserts id into both engines on node; nil only when both
// acknowledged (committed).
func (d *dbfoConns) write(node string, id int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	v := fmt.Sprintf("row-%d", id)
	if _, err := d.my[node].ExecContext(ctx, "INSERT INTO dbfo_t (id, v) VALUES (?, ?)", id, v); err != nil {
		return err
	}
	pc, err := pgx.ConnectConfig(ctx, d.pg[node])
	if err != nil {
		return err
	}
	defer pc.Close(context.Background())
	_, err = pc.Exec(ctx, "INSERT INTO dbfo_t (id, v) VALUES ($1, $2)", id, v)
	return err
}

// digest is the row count and an order-independent checksum of both
// engines' tables on node, and the ids each holds.
func (d *dbfoConns) digest(t *testing.T, node string) (string, map[int]bool, map[int]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var myN, mySum int64
	if err := d.my[node].QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, ':', v))), 0) FROM dbfo_t").Scan(&myN, &mySum); err != nil {
		t.Fatalf("mariadb %s digest: %v", node, err)
	}
	pc, err := pgx.ConnectConfig(ctx, d.pg[node])
	if err != nil {
		t.Fatalf("postgresql %s: %v", node, err)
	}
	defer pc.Close(context.Background())
	var pgN, pgSum int64
	if err := pc.QueryRow(ctx, "SELECT count(*), COALESCE(sum(hashtext(id || ':' || v)::bigint), 0) FROM dbfo_t").Scan(&pgN, &pgSum); err != nil {
		t.Fatalf("postgresql %s digest: %v", node, err)
	}
	ids := func(rows interface {
		Next() bool
		Scan(...any) error
	}) map[int]bool {
		m := map[int]bool{}
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			m[id] = true
		}
		return m
	}
	mr, err := d.my[node].QueryContext(ctx, "SELECT id FROM dbfo_t")
	if err != nil {
		t.Fatal(err)
	}
	myIDs := ids(mr)
	mr.Close()
	pr, err := pc.Query(ctx, "SELECT id FROM dbfo_t")
	if err != nil {
		t.Fatal(err)
	}
	pgIDs := ids(pr)
	pr.Close()
	return fmt.Sprintf("mariadb %d rows sum %d, postgresql %d rows sum %d", myN, mySum, pgN, pgSum), myIDs, pgIDs
}

// dbfoWaitSame waits until node1 and node2 hold the same data.
func dbfoWaitSame(t *testing.T, d *dbfoConns) string {
	t.Helper()
	var a, b string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		a, _, _ = d.digest(t, "node1")
		b, _, _ = d.digest(t, "node2")
		if a == b {
			return a
		}
	}
	t.Fatalf("node1 and node2 differ: node1 %s; node2 %s", a, b)
	return ""
}

func TestDBFailoverCycle(t *testing.T) {
	l := useLab(t)
	c, err := l.DB()
	if err != nil {
		t.Fatal(err)
	}
	d := dbfoOpen(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dbfoTable(t, ctx, d)

	w := dbfoStartWriter(t, d, "node1")
	w.more(t, 20)
	w.setPrimary("")
	dbfoWaitSame(t, d)
	if err := l.Fault(ctx, "link-down", "node1", "all"); err != nil {
		t.Fatal(err)
	}
	sum, errText := dbfo(t, l, "node2", "promote")
	if errText != "" {
		t.Fatalf("promote on node2: %s (%s)", errText, sum)
	}
	for _, want := range []string{"mysql: promoted", "gtid_current_pos 0-", "pgsql: promoted", "last replayed LSN "} {
		if !strings.Contains(sum, want) {
			t.Errorf("promote summary %q lacks %q", sum, want)
		}
	}
	// Idempotent: a second run finds the work done.
	if sum, errText := dbfo(t, l, "node2", "promote"); errText != "" || !strings.Contains(sum, "mysql: already primary") || !strings.Contains(sum, "pgsql: already primary") {
		t.Errorf("second promote: %q, %q", sum, errText)
	}
	w.setPrimary("node2")
	w.more(t, 20)

	if err := l.Fault(ctx, "link-up", "node1", "all"); err != nil {
		t.Fatal(err)
	}
	if sum, errText := dbfo(t, l, "node1", "demote"); errText != "" || !strings.Contains(sum, "mysql: read only") || !strings.Contains(sum, "pgsql: stopped") {
		t.Fatalf("demote on node1: %q, %q", sum, errText)
	}
	var ro int
	if err := d.my["node1"].QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err != nil || ro != 1 {
		t.Fatalf("node1 read_only after demote = %d, %v", ro, err)
	}
	sum, errText = dbfo(t, l, "node1", "rejoin")
	if errText != "" {
		t.Fatalf("rejoin on node1: %s (%s)", errText, sum)
	}
	for _, want := range []string{"mysql: replica of node2", "IO Yes, SQL Yes", "pgsql: standby of node2", "streaming"} {
		if !strings.Contains(sum, want) {
			t.Errorf("rejoin summary %q lacks %q", sum, want)
		}
	}
	if sum, errText := dbfo(t, l, "node1", "rejoin"); errText != "" || !strings.Contains(sum, "already a standby of node2") {
		t.Errorf("second rejoin: %q, %q", sum, errText)
	}
	w.more(t, 20)
	for _, drv := range []string{"mysql", "pgsql"} {
		// node2's state file still says slave: --role any.
		expect(t, dbCheck(t, l, "node2", dbQuery, drv, nil, "--role", "any", "--create"), 0, "PBX_DB_QUERY OK - ")
		r := dbCheck(t, l, "node1", dbSync, drv, nil, "--role", "any", "--primary-host", lab.Hosts[1].ClusterIP)
		if r.Code != 0 {
			t.Errorf("check_pbx_db_sync %s on node1: exit %d: %s", drv, r.Code, r.Out)
		}
	}

	w.stop()
	dbfoNoneLost(t, d, w)

	// An errant transaction on node1 (written while its replica is
	// stopped) makes a rejoin refuse, naming it.
	dbMySQLExec(t, c, "node1", "STOP SLAVE", "INSERT INTO dbfo_t (id, v) VALUES (-1, 'errant')")
	var pos string
	if err := d.my["node1"].QueryRowContext(ctx, "SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	sum, errText = dbfo(t, l, "node1", "rejoin")
	if !strings.Contains(errText, "errant transactions") || !strings.Contains(sum, "node1 has transactions node2 never got") || !strings.Contains(sum, pos) {
		t.Errorf("rejoin with errant GTID %s: summary %q, error %q", pos, sum, errText)
	}
	var io string
	row := d.my["node1"].QueryRowContext(ctx, "SELECT COUNT(*) FROM dbfo_t WHERE id = -1")
	var cnt int
	if err := row.Scan(&cnt); err != nil || cnt != 1 {
		t.Errorf("the errant row was discarded: count %d, %v %s", cnt, err, io)
	}
}

// dbfoTable (re)creates the test table dbfo_t on node1's MariaDB and
// PostgreSQL (the replicas get it by replication).
func dbfoTable(t *testing.T, ctx context.Context, d *dbfoConns) {
	t.Helper()
	for _, q := range []string{"DROP TABLE IF EXISTS dbfo_t", "CREATE TABLE dbfo_t (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL)"} {
		if _, err := d.my["node1"].ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := pgx.ConnectConfig(ctx, d.pg["node1"])
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	for _, q := range []string{"DROP TABLE IF EXISTS dbfo_t", "CREATE TABLE dbfo_t (id int PRIMARY KEY, v text NOT NULL)"} {
		if _, err := pc.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// dbfoWriter writes one id after another, every 20 ms, to whichever node
// is the primary ("" while there is none, as when the roles move); an id
// is acknowledged only when both engines committed it.
type dbfoWriter struct {
	mu      sync.Mutex
	primary string
	acked   []int
	failed  int
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func dbfoStartWriter(t *testing.T, d *dbfoConns, primary string) *dbfoWriter {
	w := &dbfoWriter{primary: primary, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for id := 1; ; id++ {
			select {
			case <-w.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			w.mu.Lock()
			p := w.primary
			w.mu.Unlock()
			if p == "" {
				id--
				continue
			}
			err := d.write(p, id)
			w.mu.Lock()
			if err != nil {
				w.failed++
			} else {
				w.acked = append(w.acked, id)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *dbfoWriter) setPrimary(n string) { w.mu.Lock(); w.primary = n; w.mu.Unlock() }

func (w *dbfoWriter) ackedN() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }

// more waits (at most 30 s) for k more acknowledged writes.
func (w *dbfoWriter) more(t *testing.T, k int) {
	t.Helper()
	want := w.ackedN() + k
	for end := time.Now().Add(30 * time.Second); w.ackedN() < want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("writer acknowledged %d writes, want %d", w.ackedN(), want)
		}
	}
}

// stop ends the writer and waits for it.
func (w *dbfoWriter) stop() { w.once.Do(func() { close(w.quit); <-w.done }) }

// dbfoNoneLost waits until both nodes hold the same rows and checks that
// every write the (stopped) writer had acknowledged is on both, in both
// engines.
func dbfoNoneLost(t *testing.T, d *dbfoConns, w *dbfoWriter) {
	t.Helper()
	w.mu.Lock()
	all, failed := append([]int(nil), w.acked...), w.failed
	w.mu.Unlock()
	same := dbfoWaitSame(t, d)
	t.Logf("writer: %d acknowledged, %d failed; both nodes: %s", len(all), failed, same)
	for _, node := range []string{"node1", "node2"} {
		_, my, pg := d.digest(t, node)
		for _, id := range all {
			if !my[id] || !pg[id] {
				t.Errorf("%s lost acknowledged write %d (mariadb %v, postgresql %v)", node, id, my[id], pg[id])
			}
		}
	}
}
