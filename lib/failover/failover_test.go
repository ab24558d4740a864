package failover

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
)

func testConfig(t *testing.T) *config.Config {
	return &config.Config{
		Node:             "node2",
		StateFile:        filepath.Join(t.TempDir(), "state.json"),
		FailoverServices: []string{"pbx_master_alive", "pbx_cluster", "pbx_net_failover"},
		Nodes:            []config.Node{{Name: "node1"}, {Name: "node2"}},
		VIP:              config.VIP{Address: "192.0.2.10/24", Interface: "tel0"},
		Services:         []config.Service{{Name: "kamailio", Start: []string{"start-kamailio"}, Stop: []string{"stop-kamailio"}}, {Name: "ami", Start: []string{"start-ami"}, Stop: []string{"stop-ami"}}},
		Failover:         config.Failover{GARPCount: 3, GARPInterval: config.Duration{Duration: time.Millisecond}},
	}
}

func TestDecide(t *testing.T) {
	cfg := testConfig(t)
	for _, c := range []struct {
		svc, state, typ, role string
		want                  Action
		reason                string
	}{
		{"pbx_master_alive", "CRITICAL", "HARD", cluster.Slave, ActPromote, "on the slave"},
		{"pbx_net_failover", "critical", "hard", cluster.Slave, ActPromote, "on the slave"},
		{"pbx_cluster", "CRITICAL", "HARD", cluster.Master, ActDemote, "on the master"},
		{"pbx_master_alive", "CRITICAL", "HARD", cluster.Master, Ignore, "already master"},
		{"pbx_master_alive", "CRITICAL", "SOFT", cluster.Slave, Ignore, "waiting for HARD"},
		{"pbx_master_alive", "WARNING", "HARD", cluster.Slave, Ignore, "only CRITICAL"},
		{"pbx_master_alive", "UNKNOWN", "HARD", cluster.Slave, Ignore, "only CRITICAL"},
		{"pbx_master_alive", "OK", "HARD", cluster.Slave, Ignore, "never fails back"},
		{"pbx_disk", "CRITICAL", "HARD", cluster.Slave, Ignore, "not failover class"},
		{"pbx_master_alive", "CRITICAL", "HARD", cluster.Standby, Ignore, "standby"},
		{"pbx_master_alive", "CRITICAL", "HARD", "", Ignore, "unknown"},
	} {
		d := Decide(cfg, Trigger{Service: c.svc, State: c.state, StateType: c.typ, Attempt: 3}, c.role)
		if d.Action != c.want || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s %s %s role %q: %s (%s); want %s (%q)", c.svc, c.state, c.typ, c.role, d.Action, d.Reason, c.want, c.reason)
		}
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "failover.lock")
	unlock, err := Lock(context.Background(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := Lock(context.Background(), path, 200*time.Millisecond); !errors.Is(err, ErrLocked) || time.Since(t0) < 200*time.Millisecond {
		t.Fatalf("second lock: %v after %s; want ErrLocked after the wait", err, time.Since(t0))
	}
	go func() { time.Sleep(100 * time.Millisecond); unlock() }()
	unlock2, err := Lock(context.Background(), path, 5*time.Second)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

type fakes struct {
	vipAdded   atomic.Int32
	started    []string
	dupMAC     net.HardwareAddr
	fence      FenceResult
	fenceErr   error
	failStart  string
	lagging    bool
	peerErr    error
	fenced     atomic.Int32
	stonith    atomic.Int32
	stonithErr error
	dbs        []string
	delVIP     atomic.Int32
}

func (f *fakes) ops() Ops {
	return Ops{
		Fence: func(context.Context) (FenceResult, error) { f.fenced.Add(1); return f.fence, f.fenceErr },
		FenceCommand: func(context.Context) (string, error) {
			if f.vipAdded.Load() == 0 {
				return "", errors.New("stonith before the VIP was taken")
			}
			f.stonith.Add(1)
			return "port down", f.stonithErr
		}, LaggingDBs: func(context.Context) (bool, string, error) {
			return f.lagging, "replica of node1 (lag 95s)", nil
		},
		PeerReachable: func(context.Context) error { return f.peerErr },
		PromoteDBs:    func(context.Context, bool) (string, error) { f.dbs = append(f.dbs, "promote"); return "promoted", nil },
		DemoteDBs:     func(context.Context) (string, error) { f.dbs = append(f.dbs, "demote"); return "read only", nil },
		RejoinDBs: func(_ context.Context, n config.Node) (string, error) {
			f.dbs = append(f.dbs, "rejoin "+n.Name)
			return "replica of " + n.Name, nil
		},
		DelVIP: func(string, netip.Prefix) error { f.delVIP.Add(1); return nil },
		DetectDup: func(context.Context, string, netip.Addr) (net.HardwareAddr, bool, error) {
			return f.dupMAC, f.dupMAC != nil, nil
		},
		AddVIP: func(string, netip.Prefix) error { f.vipAdded.Add(1); return nil },
		GARP: func(ctx context.Context, _ string, _ netip.Addr, count int, _ time.Duration) (int, time.Time, error) {
			return 2 * count, time.Now(), nil
		},
		RunCommand: func(_ context.Context, argv []string) error {
			if argv[0] == f.failStart {
				return errors.New("exit status 1")
			}
			f.started = append(f.started, argv[0])
			return nil
		},
	}
}

func names(r *Report) string {
	var s []string
	for _, st := range r.Steps {
		s = append(s, st.Name)
	}
	return strings.Join(s, ",")
}

func TestPromote(t *testing.T) {
	ctx := context.Background()
	t.Run("peer down", func(t *testing.T) {
		cfg := testConfig(t)
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		f := &fakes{fenceErr: errors.New("no route to host")}
		r, err := Promote(ctx, cfg, Options{}, f.ops())
		if err != nil {
			t.Fatal(err)
		}
		// DAD's probes go out first, beside the lag gate.
		if got := names(r); got != "dad,dblag,fence,vip,garp,databases,service,service,state" {
			t.Fatalf("steps %s", got)
		}
		if f.vipAdded.Load() != 1 || strings.Join(f.started, " ") != "start-kamailio start-ami" || r.GARPSent != 6 {
			t.Fatalf("vip %d, started %v, garp %d", f.vipAdded.Load(), f.started, r.GARPSent)
		}
		st, _ := cluster.ReadState(cfg.StateFile)
		if st.Role != cluster.Master || st.Epoch != 2 || r.Epoch != 2 {
			t.Fatalf("state %+v", st)
		}
		// A rerun (after a crash, or a second handler) keeps the epoch.
		if r, err := Promote(ctx, cfg, Options{}, f.ops()); err != nil || r.Epoch != 2 {
			t.Fatalf("rerun: epoch %d, %v", r.Epoch, err)
		}
	})
	t.Run("epoch past the peer's", func(t *testing.T) {
		cfg := testConfig(t)
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		f := &fakes{fence: FenceResult{Reached: true, Demoted: true, PeerEpoch: 7}}
		r, err := Promote(ctx, cfg, Options{}, f.ops())
		if err != nil || r.Epoch != 8 {
			t.Fatalf("epoch %d, %v; want 8", r.Epoch, err)
		}
	})
	t.Run("split brain refused", func(t *testing.T) {
		cfg := testConfig(t)
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		f := &fakes{dupMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, fenceErr: errors.New("timeout")}
		r, err := Promote(ctx, cfg, Options{}, f.ops())
		if !errors.Is(err, ErrRefused) || !strings.Contains(r.Refused, "still answered by MAC 02:00:00:00:00:01 (possible split brain)") {
			t.Fatalf("err %v, refused %q", err, r.Refused)
		}
		if f.vipAdded.Load() != 0 || len(f.started) != 0 {
			t.Fatal("VIP taken or services started despite the refusal")
		}
		if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave {
			t.Fatalf("state changed: %+v", st)
		}
		// A hung old master (kernel answers, sshd never does): taken.
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		h := &fakes{dupMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, fence: FenceResult{Hung: true}, fenceErr: errors.New("no SSH handshake within 3s")}
		if r, err := Promote(ctx, cfg, Options{}, h.ops()); err != nil || h.vipAdded.Load() != 1 || !strings.Contains(r.Steps[0].Result+r.Steps[1].Result, "hung") {
			t.Fatalf("hung master: %v, vip %d, steps %+v", err, h.vipAdded.Load(), r.Steps)
		}
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		// --force, or a peer that confirmed its demotion (stale ARP), go on.
		if _, err := Promote(ctx, cfg, Options{Force: true}, f.ops()); err != nil || f.vipAdded.Load() != 1 {
			t.Fatalf("--force: %v", err)
		}
	})
	t.Run("lagging replica, master answers: refused before any change", func(t *testing.T) {
		cfg := testConfig(t)
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		f := &fakes{lagging: true}
		r, err := Promote(ctx, cfg, Options{}, f.ops())
		if !errors.Is(err, ErrLagging) || !strings.Contains(r.Refused, "refusing to promote: replica of node1 (lag 95s)") {
			t.Fatalf("err %v, refused %q", err, r.Refused)
		}
		if f.fenced.Load() != 0 || f.vipAdded.Load() != 0 || len(f.dbs) != 0 || len(f.started) != 0 {
			t.Fatalf("changed something: fenced %d, vip %d, dbs %v, started %v", f.fenced.Load(), f.vipAdded.Load(), f.dbs, f.started)
		}
		if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave {
			t.Fatalf("state changed: %+v", st)
		}
		// The master gone: promote what is here. --force: promote anyway.
		for _, c := range []struct {
			f *fakes
			o Options
		}{{&fakes{lagging: true, peerErr: errors.New("no route"), fenceErr: errors.New("no route")}, Options{}}, {&fakes{lagging: true, fenceErr: errors.New("x")}, Options{Force: true}}} {
			cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
			if _, err := Promote(ctx, cfg, c.o, c.f.ops()); err != nil || strings.Join(c.f.dbs, ",") != "promote" {
				t.Fatalf("%+v: %v, dbs %v", c.o, err, c.f.dbs)
			}
		}
	})
	t.Run("service fails", func(t *testing.T) {
		cfg := testConfig(t)
		cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
		f := &fakes{fenceErr: errors.New("down"), failStart: "start-kamailio"}
		r, err := Promote(ctx, cfg, Options{}, f.ops())
		if err == nil || !strings.Contains(err.Error(), "starting kamailio") || r.Failed() == nil {
			t.Fatalf("err %v", err)
		}
		if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave {
			t.Fatalf("state written despite the failure: %+v", st)
		}
		if !strings.Contains(names(r), "garp") {
			t.Fatalf("GARP not waited for: %s", names(r))
		}
	})
}

// TestStonith: fence_command runs only when the promote takes the VIP and
// the old master did not confirm its demotion; never for a refused
// promote (that would cut off the master it leaves in place).
func TestStonith(t *testing.T) {
	ctx := context.Background()
	dup := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, c := range []struct {
		name    string
		f       *fakes
		fenced  bool // fence_command ran and succeeded
		ran     int32
		refused bool
	}{
		{"unreachable old master", &fakes{fenceErr: errors.New("no route to host")}, true, 1, false},
		{"hung old master", &fakes{dupMAC: dup, fence: FenceResult{Hung: true}, fenceErr: errors.New("no SSH handshake")}, true, 1, false},
		{"confirmed demotion", &fakes{fence: FenceResult{Reached: true, Demoted: true, PeerEpoch: 1}}, false, 0, false},
		{"refused: cut off but answering ARP", &fakes{dupMAC: dup, fenceErr: errors.New("timeout")}, false, 0, true},
		{"fence_command fails", &fakes{fenceErr: errors.New("no route"), stonithErr: errors.New("exit status 1")}, false, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Failover.FenceCommand = []string{"fence-it"}
			cfg.Failover.FenceTimeout.Duration = time.Second
			cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
			r, err := Promote(ctx, cfg, Options{}, c.f.ops())
			if c.refused != errors.Is(err, ErrRefused) || (!c.refused && err != nil) {
				t.Fatalf("err %v", err)
			}
			if c.f.stonith.Load() != c.ran || r.PeerFenced != c.fenced {
				t.Fatalf("fence_command ran %d times, PeerFenced %v; want %d, %v (steps %s)", c.f.stonith.Load(), r.PeerFenced, c.ran, c.fenced, names(r))
			}
			if c.ran > 0 && !strings.Contains(names(r), "stonith") {
				t.Fatalf("no stonith step in the report: %s", names(r))
			}
			if c.f.stonithErr != nil && (r.Failed() == nil || r.Failed().Name != "stonith") {
				t.Fatalf("a failed fence_command is not in the report: %+v", r.Steps)
			}
		})
	}
	// Without fence_command nothing of the kind runs.
	cfg := testConfig(t)
	cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Slave, Epoch: 1})
	f := &fakes{fenceErr: errors.New("no route")}
	if r, err := Promote(ctx, cfg, Options{}, f.ops()); err != nil || f.stonith.Load() != 0 || r.PeerFenced {
		t.Fatalf("no fence_command: %v, ran %d", err, f.stonith.Load())
	}
}

func TestGARPFrames(t *testing.T) {
	fr, err := garpFrames(net.HardwareAddr{2, 0, 0, 0, 0, 2}, netip.MustParseAddr("192.0.2.10"))
	if err != nil || len(fr) != 2 {
		t.Fatal(err)
	}
	for i, f := range fr {
		// Every frame is a claim of the VIP by our MAC (what DAD on the
		// peer would see), in request then reply form.
		if len(f) < 42 || f[21] != byte(i+1) {
			t.Fatalf("frame %d: op %d", i, f[21])
		}
	}
}

func TestDemoteAndRejoin(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 3})
	f := &fakes{failStart: "stop-ami"}
	r, err := Demote(ctx, cfg, "test", f.ops())
	// Every step runs even after a failed one; databases before the VIP,
	// services in reverse order.
	if got := names(r); got != "databases,vip,service,service,state" {
		t.Fatalf("steps %s", got)
	}
	if err == nil || !strings.Contains(err.Error(), "stopping ami") {
		t.Fatalf("err %v", err)
	}
	if f.delVIP.Load() != 1 || strings.Join(f.started, " ") != "stop-kamailio" || strings.Join(f.dbs, ",") != "demote" {
		t.Fatalf("vip %d, ran %v, dbs %v", f.delVIP.Load(), f.started, f.dbs)
	}
	st, _ := cluster.ReadState(cfg.StateFile)
	if st.Role != cluster.Standby || st.Epoch != 3 {
		t.Fatalf("state %+v; want standby, epoch kept", st)
	}
	// Fenced by the peer's promote: the VIP first.
	cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Master, Epoch: 3})
	if r, _ := DemoteFenced(ctx, cfg, "fenced", (&fakes{}).ops()); names(r) != "vip,databases,service,service,state" {
		t.Fatalf("fenced demote steps %s; want the VIP first", names(r))
	}
	cluster.WriteState(cfg.StateFile, cluster.State{Node: "node2", Role: cluster.Standby, Epoch: 3})
	rr, err := Rejoin(ctx, cfg, config.Node{Name: "node1"}, 4, f.ops())
	if err != nil || rr.Epoch != 4 || strings.Join(f.dbs, ",") != "demote,rejoin node1" {
		t.Fatalf("rejoin: %v epoch %d dbs %v", err, rr.Epoch, f.dbs)
	}
	if st, _ := cluster.ReadState(cfg.StateFile); st.Role != cluster.Slave || st.Epoch != 4 {
		t.Fatalf("state after rejoin %+v", st)
	}
}

// fence_command gets the old master's name and addresses in its
// environment, its output in the result, and is bounded by ctx.
func TestRunFenceCommand(t *testing.T) {
	cfg := testConfig(t)
	cfg.Nodes[0].TelephonyIP, cfg.Nodes[0].ClusterIP = "192.0.2.11", "198.51.100.1"
	ctx := context.Background()
	res, err := RunFenceCommand(ctx, cfg, []string{"/bin/sh", "-c", `echo "fenced $PBXHA_PEER $PBXHA_PEER_TELEPHONY_IP $PBXHA_PEER_CLUSTER_IP"`})
	if err != nil || res != "/bin/sh exit 0 fenced node1 192.0.2.11 198.51.100.1" {
		t.Fatalf("%q %v", res, err)
	}
	if _, err := RunFenceCommand(ctx, cfg, []string{"/bin/sh", "-c", "echo switch says no; exit 3"}); err == nil || err.Error() != "/bin/sh: exit status 3 switch says no" {
		t.Fatalf("failing fence_command: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := RunFenceCommand(sctx, cfg, []string{"/bin/sleep", "30"}); err == nil || !strings.Contains(err.Error(), "no end within its deadline") {
		t.Fatalf("hanging fence_command: %v", err)
	}
	if _, err := RunFenceCommand(ctx, cfg, nil); err == nil {
		t.Fatal("no command: no error")
	}
}
