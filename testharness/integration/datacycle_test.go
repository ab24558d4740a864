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
	"testing"
	"time"

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
	dbfoTable(t, ctx, d)
	w := dbfoStartWriter(t, d, lab.Node1)

	w.more(t, 20)
	w.setPrimary("")
	dbfoWaitSame(t, d)
	// node1 fails; Icinga on node2 runs the handler.
	if err := l.Fault(ctx, "link-down", lab.Node1, "all"); err != nil {
		t.Fatal(err)
	}
	if r := handleOn(t, l, lab.Node2, "pbx_master_alive"); r.Code != 0 {
		t.Fatalf("promote on node2: %d %q", r.Code, r.Out)
	}
	w.setPrimary(lab.Node2)
	w.more(t, 20)

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
	w.more(t, 20)
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
	w.setPrimary("")
	if r := eh(t, l, lab.Node2, "failover"); r.Code != 0 {
		t.Fatalf("failover back: %d %q", r.Code, r.Out)
	}
	wantState(t, l, lab.Node1, cluster.Master, 3)
	wantState(t, l, lab.Node2, cluster.Slave, 3)
	w.setPrimary(lab.Node1)
	w.more(t, 20)

	w.stop()
	dbfoNoneLost(t, d, w)
}
