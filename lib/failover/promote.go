package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/dbfailover"
)

// Step deadlines. The whole promote must finish well inside Icinga's
// EventCommand timeout (60 s by default).
const (
	FenceTimeout = 5 * time.Second
	// DADTimeout is how long ARP duplicate address detection listens
	// (three probes spread over it). A host that holds the VIP answers in
	// well under a millisecond on a LAN (its kernel answers, however busy
	// its processes are); the window is what the VIP waits for in the
	// master-down case.
	DADTimeout     = 40 * time.Millisecond
	VIPTimeout     = 2 * time.Second
	ServiceTimeout = 20 * time.Second
	StateTimeout   = 2 * time.Second
	// DBTimeout bounds one database step (promote waits for the replica
	// to apply what it received; demote stops PostgreSQL).
	DBTimeout = 30 * time.Second
	// LagTimeout bounds reading the replicas' lag before anything changes.
	LagTimeout = 3 * time.Second
)

// StepResult is one step as the log and the email show it.
type StepResult struct {
	Name     string
	Start    time.Time
	Duration time.Duration
	Result   string // what happened, one line
	Err      error
}

func (s StepResult) String() string {
	st := "ok"
	if s.Err != nil {
		st = "FAILED"
	}
	msg := s.Result
	if s.Err != nil {
		msg = s.Err.Error()
	}
	return fmt.Sprintf("%-9s %-6s %8.1f ms  %s", s.Name, st, float64(s.Duration.Microseconds())/1000, msg)
}

// FenceResult is what the old master said to `demote`.
type FenceResult struct {
	Reached   bool   // it answered on the cluster network
	Demoted   bool   // it confirmed it released the VIP and is standby
	PeerEpoch uint64 // its epoch as it reported it
	Detail    string
	// Hung: its kernel accepted the SSH connection but its sshd never
	// answered: a node whose processes are frozen or hung. Its kernel
	// still answers ARP for the VIP, but nothing behind it serves calls.
	Hung bool
}

// Ops are the side effects of a promote; zero fields take the real thing
// (tests replace them).
type Ops struct {
	Fence func(ctx context.Context) (FenceResult, error)
	// FenceCommand runs failover.fence_command (STONITH) against the old
	// master; UnfenceCommand undoes it.
	FenceCommand   func(ctx context.Context) (string, error)
	UnfenceCommand func(ctx context.Context) (string, error)
	DetectDup      func(ctx context.Context, iface string, ip netip.Addr) (net.HardwareAddr, bool, error)
	AddVIP         func(iface string, vip netip.Prefix) error
	GARP           func(ctx context.Context, iface string, ip netip.Addr, count int, interval time.Duration) (int, time.Time, error)
	// LaggingDBs says whether a local replica is too far behind to be
	// promoted while the old master is reachable; PeerReachable asks (without
	// changing anything) whether the old master answers. Both run only
	// before anything is changed.
	LaggingDBs    func(ctx context.Context) (bool, string, error)
	PeerReachable func(ctx context.Context) error
	// PromoteDBs makes the local databases primaries.
	PromoteDBs func(ctx context.Context, force bool) (string, error)
	DemoteDBs  func(ctx context.Context) (string, error)
	RejoinDBs  func(ctx context.Context, newMaster config.Node) (string, error)
	DelVIP     func(iface string, vip netip.Prefix) error
	RunCommand func(ctx context.Context, argv []string) error
	ReadState  func(path string) (cluster.State, error)
	WriteState func(path string, s cluster.State) error
	Logf       func(format string, args ...any)
	Now        func() time.Time

	cfg *config.Config
}

// Options change a promote.
type Options struct {
	Force  bool   // take the VIP even when another MAC answers for it
	Reason string // recorded in the state file
	// LagChecked: the old master checked this node's replicas before it
	// demoted itself (a hand-over or switchover), so the lag gate, which
	// would now see replication stopped by that demotion, is skipped.
	LagChecked bool
}

// Report is the outcome of a promote.
type Report struct {
	Steps      []StepResult
	Refused    string // non-empty: split-brain guard refused (no VIP taken)
	Epoch      uint64
	Start      time.Time
	VIPAt      time.Duration // from Start to VIP bound (0: not bound)
	ServicesAt time.Duration // from Start to services started
	GARPSent   int
	GARPAt     time.Duration // from Start to the first gratuitous ARP on the wire
	// PeerDemoted: the old master confirmed its demotion (the fence
	// worked); when false it may come back still holding the VIP.
	PeerDemoted bool
	// PeerFenced: it did not confirm, and failover.fence_command isolated
	// or powered it off (exit 0); unfence_command is then due once it is
	// demoted.
	PeerFenced bool
}

// run runs one step bounded by timeout, times it, records it in the report
// and logs it; it returns the step's error.
func (r *Report) run(ctx context.Context, ops *Ops, name string, timeout time.Duration, fn func(ctx context.Context) (string, error)) error {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := ops.Now()
	res, err := fn(sctx)
	s := StepResult{Name: name, Start: t0, Duration: ops.Now().Sub(t0), Result: res, Err: err}
	r.Steps = append(r.Steps, s)
	ops.Logf("step %s", s)
	return err
}

// Failed is the first failed step, or nil.
func (r *Report) Failed() *StepResult {
	for i := range r.Steps {
		if r.Steps[i].Err != nil {
			return &r.Steps[i]
		}
	}
	return nil
}

// ErrRefused marks a promote stopped by the split-brain guard.
var ErrRefused = errors.New("refusing to take the VIP")

// ErrLagging marks a promote refused before any change because the local
// replica lags behind a master that still answers.
var ErrLagging = errors.New("replica lagging")

func (o *Ops) defaults(cfg *config.Config) {
	o.cfg = cfg
	if o.DetectDup == nil {
		o.DetectDup = func(ctx context.Context, iface string, ip netip.Addr) (net.HardwareAddr, bool, error) {
			return cluster.DetectDuplicate(ctx, iface, ip, nil)
		}
	}
	if o.AddVIP == nil {
		o.AddVIP = cluster.AddVIP
	}
	if o.GARP == nil {
		o.GARP = GARP
	}
	if o.PromoteDBs == nil {
		o.PromoteDBs = func(ctx context.Context, force bool) (string, error) {
			// The lag gate ran before the fence (see Promote).
			return dbfailover.Promote(ctx, o.cfg, dbfailover.Options{Force: force})
		}
	}
	if o.LaggingDBs == nil {
		o.LaggingDBs = func(ctx context.Context) (bool, string, error) { return dbfailover.Lagging(ctx, o.cfg) }
	}
	if o.PeerReachable == nil {
		o.PeerReachable = func(context.Context) error { return errors.New("no way to reach the peer") }
	}
	if o.DemoteDBs == nil {
		o.DemoteDBs = func(ctx context.Context) (string, error) { return dbfailover.Demote(ctx, o.cfg) }
	}
	if o.RejoinDBs == nil {
		o.RejoinDBs = func(ctx context.Context, nm config.Node) (string, error) { return dbfailover.Rejoin(ctx, o.cfg, nm) }
	}
	if o.DelVIP == nil {
		o.DelVIP = cluster.DelVIP
	}
	if o.RunCommand == nil {
		o.RunCommand = RunCommand
	}
	if o.ReadState == nil {
		o.ReadState = cluster.ReadState
	}
	if o.WriteState == nil {
		o.WriteState = cluster.WriteState
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Fence == nil {
		o.Fence = func(context.Context) (FenceResult, error) {
			return FenceResult{}, errors.New("no way to reach the peer")
		}
	}
	if o.FenceCommand == nil {
		o.FenceCommand = func(ctx context.Context) (string, error) {
			return RunFenceCommand(ctx, cfg, cfg.Failover.FenceCommand)
		}
	}
	if o.UnfenceCommand == nil {
		o.UnfenceCommand = func(ctx context.Context) (string, error) {
			return RunFenceCommand(ctx, cfg, cfg.Failover.UnfenceCommand)
		}
	}
}

// RunFenceCommand runs failover.fence_command or unfence_command (argv,
// no shell) bounded by ctx, with the old master's name and addresses in
// PBXHA_PEER, PBXHA_PEER_TELEPHONY_IP and PBXHA_PEER_CLUSTER_IP.
func RunFenceCommand(ctx context.Context, cfg *config.Config, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("no command configured")
	}
	var env []string
	if p := cfg.Peer(); p != nil {
		env = []string{"PBXHA_PEER=" + p.Name, "PBXHA_PEER_TELEPHONY_IP=" + p.TelephonyIP, "PBXHA_PEER_CLUSTER_IP=" + p.ClusterIP}
	}
	out, err := run(ctx, argv, env)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(argv[0] + " exit 0 " + out), nil
}

// RunCommand runs argv without a shell, bounded by ctx; its output is
// returned in the error when it fails.
func RunCommand(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command")
	}
	_, err := run(ctx, argv, nil)
	return err
}

// run runs argv (no shell) bounded by ctx, with env added to ours, and
// returns its output on one line, at most its last 300 bytes; the error
// carries that output too.
func run(ctx context.Context, argv, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	msg := strings.Join(strings.Fields(string(out)), " ")
	if len(msg) > 300 {
		msg = msg[len(msg)-300:]
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return "", fmt.Errorf("%s: no end within its deadline: %v %s", argv[0], err, msg)
	case err != nil:
		return "", fmt.Errorf("%s: %v %s", argv[0], err, msg)
	}
	return msg, nil
}

// Plan lists the steps a promote would take, for --dry-run.
func Plan(cfg *config.Config) []string {
	p := []string{
		"dblag: read the replicas' lag; when more than max_promote_lag and the old master answers, refuse before any change (unless --force)",
		fmt.Sprintf("fence: ask %s over SSH to demote (deadline %s); carry on if unreachable", PeerName(cfg), FenceTimeout),
		fmt.Sprintf("dad: ARP duplicate address detection for %s on %s (%s); refuse if another MAC answers and the peer did not confirm", cfg.VIP.Address, cfg.VIP.Interface, DADTimeout),
		fmt.Sprintf("vip: bind %s to %s", cfg.VIP.Address, cfg.VIP.Interface),
	}
	if len(cfg.Failover.FenceCommand) > 0 {
		p = append(p, fmt.Sprintf("stonith: when %s did not confirm its demotion, run %s (deadline %s), in the background", PeerName(cfg), strings.Join(cfg.Failover.FenceCommand, " "), cfg.Failover.FenceTimeout.Duration))
	}
	p = append(p,
		fmt.Sprintf("garp: %d request+reply pairs, %s apart, in the background", cfg.Failover.GARPCount, cfg.Failover.GARPInterval.Duration),
		dbPlan(cfg, "promote: stop the replica, clear its configuration, writable (MariaDB/MySQL); pg_promote (PostgreSQL); refused when lagging more than max_promote_lag behind a reachable master"),
	)
	for _, s := range cfg.Services {
		p = append(p, fmt.Sprintf("service %s: %s (deadline %s)", s.Name, strings.Join(s.Start, " "), ServiceTimeout))
	}
	p = append(p, fmt.Sprintf("state: write role=master, epoch+1 to %s", cfg.StateFile))
	return p
}

// PeerName is the other node's name from cfg, or "the peer".
func PeerName(cfg *config.Config) string {
	if p := cfg.Peer(); p != nil {
		return p.Name
	}
	return "the peer"
}

// Promote makes this node master. It returns a report even on error; the
// error is ErrRefused (wrapped) when the split-brain guard refused.
func Promote(ctx context.Context, cfg *config.Config, o Options, ops Ops) (*Report, error) {
	ops.defaults(cfg)
	r := &Report{Start: ops.Now()}
	step := func(name string, timeout time.Duration, fn func(ctx context.Context) (string, error)) error {
		return r.run(ctx, &ops, name, timeout, fn)
	}
	vip, err := netip.ParsePrefix(cfg.VIP.Address)
	if err != nil {
		return r, fmt.Errorf("vip.address %q: %v", cfg.VIP.Address, err)
	}
	own, err := ops.ReadState(cfg.StateFile)
	if err != nil {
		return r, err
	}

	// Duplicate address detection only listens, so its probes go out now,
	// beside the lag gate: the VIP then waits for the longer of the two,
	// not for their sum.
	type dadOut struct {
		mac    net.HardwareAddr
		dup    bool
		err    error
		t0, t1 time.Time
	}
	dadCh := make(chan dadOut, 1)
	dadT0 := ops.Now()
	go func() {
		t0 := dadT0
		dctx, cancel := context.WithTimeout(ctx, DADTimeout)
		mac, dup, err := ops.DetectDup(dctx, cfg.VIP.Interface, vip.Addr())
		cancel()
		dadCh <- dadOut{mac, dup, err, t0, ops.Now()}
	}()

	// (0) the lag gate, before anything changes: a replica far behind a
	// master that still answers must not become primary (what it lacks
	// would be lost) unless the admin forces it. Read now, while
	// replication still runs: the fence stops the old master's databases.
	// Only a lagging replica costs the question to the peer.
	if !o.Force && !o.LagChecked && own.Role != cluster.Master {
		var lagErr error
		step("dblag", LagTimeout+FenceTimeout, func(ctx context.Context) (string, error) {
			lctx, cancel := context.WithTimeout(ctx, LagTimeout)
			lagging, detail, err := ops.LaggingDBs(lctx)
			cancel()
			switch {
			case err != nil:
				return "lag unreadable (" + err.Error() + "): carrying on, the databases step will tell", nil
			case !lagging:
				return detail, nil
			}
			if perr := ops.PeerReachable(ctx); perr != nil {
				return detail + "; lagging, but the old master does not answer (" + perr.Error() + "): promoting what is here", nil
			}
			r.Refused = fmt.Sprintf("refusing to promote: %s, more than max_promote_lag (%s) behind a master that still answers (use --force to promote anyway)", detail, cfg.Failover.MaxPromoteLag.Duration)
			lagErr = fmt.Errorf("%w: %s", ErrLagging, r.Refused)
			return "", lagErr
		})
		if lagErr != nil {
			return r, lagErr
		}
	}

	// (a) fence, in the background: an unreachable old master (the normal
	// master-down case) costs its whole connect timeout, which must not
	// delay the VIP when DAD shows the address free. Its answer is waited
	// for when DAD finds the VIP taken, and before the epoch is written.
	var (
		fence     FenceResult
		fenceStep StepResult
		fenceDone = make(chan struct{})
		fenceJoin sync.Once
	)
	fenceT0 := ops.Now()
	go func() {
		defer close(fenceDone)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FenceTimeout)
		defer cancel()
		t0 := fenceT0
		f, err := ops.Fence(fctx)
		fence = f
		var res string
		switch {
		case err != nil:
			res = "peer not reached (" + err.Error() + "): carrying on"
		case f.Demoted:
			res = "peer demoted: " + f.Detail
		default:
			res = "peer reached but did not confirm: " + f.Detail
		}
		fenceStep = StepResult{Name: "fence", Start: t0, Duration: ops.Now().Sub(t0), Result: res}
	}()
	joinFence := func() {
		fenceJoin.Do(func() {
			<-fenceDone
			r.PeerDemoted = fence.Demoted
			r.Steps = append(r.Steps, fenceStep)
			ops.Logf("step %s", fenceStep)
		})
	}
	defer func() {
		joinFence()
		slices.SortStableFunc(r.Steps, func(a, b StepResult) int { return a.Start.Compare(b.Start) })
	}()

	// (b) duplicate address detection: the split-brain guard. Its probes
	// went out at the start (see above); here its answer is read.
	d := <-dadCh
	var (
		dupErr error
		dadRes string
		dadErr error
	)
	switch {
	case d.err != nil:
		dadErr = d.err
	case !d.dup:
		dadRes = "no other MAC answers for " + vip.Addr().String()
	default:
		joinFence() // the VIP is taken: did its holder agree to let go?
		switch {
		case fence.Demoted:
			dadRes = fmt.Sprintf("%s still answered by %s, but the peer confirmed its demotion (stale ARP)", vip.Addr(), d.mac)
		case fence.Hung:
			// Its kernel answers ARP, its processes do not run: waiting
			// leaves every call dead. Take the VIP; the gratuitous ARPs
			// move the phones, and when it thaws it sees the higher epoch
			// (and the fence watch demotes it).
			dadRes = fmt.Sprintf("%s still answered by %s, but the old master is hung (its kernel accepts SSH connections, its sshd never answers): taking it", vip.Addr(), d.mac)
		case o.Force:
			dadRes = fmt.Sprintf("%s still answered by %s: taking it anyway (--force)", vip.Addr(), d.mac)
		default:
			r.Refused = fmt.Sprintf("refusing to take the VIP: still answered by MAC %s (possible split brain)", d.mac)
			dupErr = fmt.Errorf("%w: still answered by MAC %s (possible split brain)", ErrRefused, d.mac)
			dadErr = dupErr
		}
	}
	dadStep := StepResult{Name: "dad", Start: d.t0, Duration: d.t1.Sub(d.t0), Result: dadRes, Err: dadErr}
	r.Steps = append(r.Steps, dadStep)
	ops.Logf("step %s", dadStep)
	if dupErr != nil {
		return r, dupErr
	}
	if f := r.Failed(); f != nil {
		return r, fmt.Errorf("step %s: %w", f.Name, f.Err)
	}

	// (c) the VIP, then (d) gratuitous ARP in the background.
	if err := step("vip", VIPTimeout, func(ctx context.Context) (string, error) {
		if err := ops.AddVIP(cfg.VIP.Interface, vip); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s bound to %s", vip, cfg.VIP.Interface), nil
	}); err != nil {
		return r, fmt.Errorf("step vip: %w", err)
	}
	r.VIPAt = ops.Now().Sub(r.Start)

	// (c') STONITH, in the background once the fence has answered: the VIP
	// is ours now, and an old master that did not confirm its demotion (cut
	// off, or hung with its kernel still answering ARP) may hold it too.
	// Only now: a refused promote must never fence the master it leaves in
	// place.
	if len(cfg.Failover.FenceCommand) > 0 {
		stonithDone := make(chan struct{})
		var stonith *StepResult
		go func() {
			defer close(stonithDone)
			<-fenceDone
			if fence.Demoted {
				return
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Failover.FenceTimeout.Duration)
			defer cancel()
			t0 := ops.Now()
			res, err := ops.FenceCommand(sctx)
			if err == nil {
				res = "fence_command isolated " + PeerName(cfg) + ": " + res
			}
			stonith = &StepResult{Name: "stonith", Start: t0, Duration: ops.Now().Sub(t0), Result: res, Err: err}
		}()
		defer func() {
			<-stonithDone
			if stonith != nil {
				r.Steps = append(r.Steps, *stonith)
				r.PeerFenced = stonith.Err == nil
				ops.Logf("step %s", *stonith)
				slices.SortStableFunc(r.Steps, func(a, b StepResult) int { return a.Start.Compare(b.Start) })
			}
		}()
	}

	count, interval := cfg.Failover.GARPCount, cfg.Failover.GARPInterval.Duration
	garpBudget := time.Duration(max(count, 1))*interval + 2*time.Second
	gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), garpBudget)
	var (
		wg      sync.WaitGroup
		garpRes StepResult
	)
	garpT0 := ops.Now()
	wg.Go(func() {
		defer gcancel()
		t0 := garpT0
		n, first, err := ops.GARP(gctx, cfg.VIP.Interface, vip.Addr(), count, interval)
		garpRes = StepResult{Name: "garp", Start: t0, Duration: ops.Now().Sub(t0), Err: err,
			Result: fmt.Sprintf("%d frames (request+reply) on %s, first %.1f ms after start", n, cfg.VIP.Interface, float64(first.Sub(r.Start).Microseconds())/1000)}
		r.GARPSent = n
		if !first.IsZero() {
			r.GARPAt = first.Sub(r.Start)
		}
	})
	waitGARP := func() {
		wg.Wait()
		r.Steps = append(r.Steps, garpRes)
		ops.Logf("step %s", garpRes)
	}

	// (e) databases (the lag gate ran first of all).
	if err := step("databases", DBTimeout, func(ctx context.Context) (string, error) {
		return ops.PromoteDBs(ctx, o.Force)
	}); err != nil {
		waitGARP()
		return r, fmt.Errorf("step databases: %w", err)
	}

	// (f) services, in order.
	for _, s := range cfg.Services {
		if len(s.Start) == 0 {
			continue
		}
		if err := step("service", ServiceTimeout, func(ctx context.Context) (string, error) {
			if err := ops.RunCommand(ctx, s.Start); err != nil {
				return "", fmt.Errorf("starting %s: %w", s.Name, err)
			}
			return s.Name + " started", nil
		}); err != nil {
			waitGARP()
			return r, fmt.Errorf("step service: %w", err)
		}
	}
	r.ServicesAt = ops.Now().Sub(r.Start)

	// (g) state: the epoch moves past anything either node has seen.
	joinFence()
	epoch := max(own.Epoch, fence.PeerEpoch) + 1
	if own.Role == cluster.Master {
		epoch = own.Epoch // a rerun after a crash keeps its epoch
	}
	err = step("state", StateTimeout, func(ctx context.Context) (string, error) {
		st := cluster.State{Node: own.Node, Role: cluster.Master, Epoch: epoch, Since: ops.Now().UTC(), Reason: o.Reason}
		if st.Node == "" && cfg.Self() != nil {
			st.Node = cfg.Self().Name
		}
		if err := ops.WriteState(cfg.StateFile, st); err != nil {
			return "", err
		}
		return fmt.Sprintf("role=master epoch=%d", epoch), nil
	})
	r.Epoch = epoch
	waitGARP()
	if err != nil {
		return r, fmt.Errorf("step state: %w", err)
	}
	return r, nil
}
