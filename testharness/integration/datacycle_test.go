package integration

// Issue 9's full cycle, driven by the event handler as Icinga and the admin
// would: node1 master with data and a writer → node1 cut off → node2
// promoted by `handle`, takes writes → node1 back: it steps down, `rejoin`
// makes it node2's replica → files made on node2 reach node1 by `sync` →
// planned `failover` back to node1 → both sides equal, no acknowledged
// write lost.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pbxha/lib/cluster"
	"pbxha/testharness/lab"
)

func TestDataFailoverCycleWithHandler(t *testing.T) {
	l := useLab(t)
	c, err := l.DB()
	if err != nil {
		t.Fatal(err)
	}
	d := dbfoOpen(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, q := range []string{"DROP TABLE IF EXISTS dbfo_t", "CREATE TABLE dbfo_t (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL)"} {
		if _, err := d.my[lab.Node1].ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := pgx.ConnectConfig(ctx, d.pg[lab.Node1])
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TABLE IF EXISTS dbfo_t", "CREATE TABLE dbfo_t (id int PRIMARY KEY, v text NOT NULL)"} {
		if _, err := pc.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pc.Close(ctx)

	// The writer writes to whichever node is master ("" while the roles
	// move); an id counts as acknowledged when both engines committed it.
	var (
		mu      sync.Mutex
		primary = lab.Node1
		acked   []int
		failed  int
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for id := 1; ; id++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			mu.Lock()
			p := primary
			mu.Unlock()
			if p == "" {
				id--
				continue
			}
			err := d.write(p, id)
			mu.Lock()
			if err != nil {
				failed++
			} else {
				acked = append(acked, id)
			}
			mu.Unlock()
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); <-done })
	defer stopWriter()
	setPrimary := func(n string) { mu.Lock(); primary = n; mu.Unlock() }
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	more := func(k int) {
		t.Helper()
		want := ackedN() + k
		for end := time.Now().Add(30 * time.Second); ackedN() < want; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("writer acknowledged %d writes, want %d", ackedN(), want)
			}
		}
	}

	more(20)
	setPrimary("")
	dbfoWaitSame(t, d)
	// node1 fails; Icinga on node2 runs the handler.
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	if r := handleOn(t, l, lab.Node2, "pbx_master_alive"); r.Code != 0 {
		t.Fatalf("promote on node2: %d %q", r.Code, r.Out)
	}
	setPrimary(lab.Node2)
	more(20)

	// node1 comes back: it steps down (its databases stop taking writes),
	// then the admin rejoins it.
	if err := l.Fault(ctx, "link-up", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	if r := handleOn(t, l, lab.Node1, "pbx_cluster"); r.Code != 0 || !strings.Contains(r.Out, "stepped down") {
		t.Fatalf("node1 back: %d %q", r.Code, r.Out)
	}
	if r := eh(t, l, lab.Node1, "rejoin"); r.Code != 0 {
		t.Fatalf("rejoin on node1: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Slave, 2)
	more(20)
	for _, drv := range []string{"mysql", "pgsql"} {
		expect(t, dbCheck(t, l, lab.Node2, dbQuery, drv, nil, "--create"), 0, "PBX_DB_QUERY OK - ")
		if r := dbCheck(t, l, lab.Node1, dbSync, drv, nil, "--primary-host", lab.Hosts[1].ClusterIP); r.Code != 0 {
			t.Errorf("check_pbx_db_sync %s on node1 after the rejoin: exit %d: %s", drv, r.Code, r.Out)
		}
	}

	// Files follow the roles: made on node2 (master), pushed to node1.
	f := filepath.Join(l.SyncDir(lab.Node2), "cycle-"+time.Now().Format("150405.000")+".txt")
	if err := os.WriteFile(f, []byte("made on node2 while it was master\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := eh(t, l, lab.Node2, "sync"); r.Code != 0 {
		t.Fatalf("sync on node2: %d %q", r.Code, r.Out)
	}
	if b, err := os.ReadFile(filepath.Join(l.SyncDir(lab.Node1), filepath.Base(f))); err != nil || !strings.Contains(string(b), "made on node2") {
		t.Fatalf("the file made on node2 is not on node1 after sync: %v", err)
	}

	// Planned switchover back to node1.
	setPrimary("")
	if r := eh(t, l, lab.Node2, "failover"); r.Code != 0 {
		t.Fatalf("failover back: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Master, 3)
	wantState(t, l, lab.Node2, cluster.Slave, 3)
	setPrimary(lab.Node1)
	more(20)

	stopWriter()
	mu.Lock()
	all, nFailed := append([]int(nil), acked...), failed
	mu.Unlock()
	same := dbfoWaitSame(t, d)
	t.Logf("writer: %d acknowledged, %d failed; both nodes: %s", len(all), nFailed, same)
	for _, node := range lab.Nodes {
		_, my, pg := d.digest(t, node)
		for _, id := range all {
			if !my[id] || !pg[id] {
				t.Errorf("%s lost acknowledged write %d (mariadb %v, postgresql %v)", node, id, my[id], pg[id])
			}
		}
	}
}
