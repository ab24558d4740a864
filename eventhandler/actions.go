package eventhandler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/dbfailover"
	"pbxha/lib/failover"
	"pbxha/lib/mail"
	"pbxha/lib/peer"
)

// Deadlines of the hand-over's conversation with the peer.
const (
	PeerStateTimeout = 5 * time.Second
	// PeerPromoteTimeout bounds the peer's promote as seen from here: a
	// little more than the peer allows itself.
	PeerPromoteTimeout = peer.PromoteTime + 5*time.Second
)

// peerName is the other node's name.
var peerName = failover.PeerName

// maintenance reports whether maintenance is in force; an expired record
// is cleared here and its end announced (once, by whichever process
// clears it).
func (h *handler) maintenance() (cluster.Maintenance, bool) {
	m, exists, active, err := cluster.ReadMaintenance(h.cfg.StateFile, time.Now())
	if err != nil {
		h.log.Logf("maintenance: %v (counts as off)", err)
	}
	if exists && !active {
		if cleared, _ := cluster.ClearMaintenance(h.cfg.StateFile); cleared && err == nil {
			h.log.Logf("maintenance expired at %s: failover protection is back", m.Until.Format(time.RFC3339))
			h.sendMail(context.Background(), fmt.Sprintf("MAINTENANCE ENDED on %s (expired)", h.self()),
				fmt.Sprintf("The maintenance switched on by %s at %s expired at %s.\nThe event handler acts again on failover-class checks.\n", m.By, m.Since.Format(time.RFC3339), m.Until.Format(time.RFC3339)), false)
		}
	}
	return m, active
}

// sendMail sends (or spools) one message to the admin.
func (h *handler) sendMail(ctx context.Context, subject, body string, urgent bool) {
	id := h.cfg.ClusterID
	if id == "" {
		id = "pbxha"
	}
	h.send(ctx, mail.Message{From: h.cfg.SMTP.From, To: []string{h.cfg.AdminEmail}, Subject: fmt.Sprintf("[%s] %s", id, subject), Body: body, Urgent: urgent})
}

// send sends m to the admin, bounded by FlushTimeout; SMTP down spools it.
func (h *handler) send(ctx context.Context, m mail.Message) {
	if h.cfg.AdminEmail == "" {
		h.log.Logf("no admin_email: no mail sent (%s)", m.Subject)
		return
	}
	mctx, cancel := context.WithTimeout(ctx, FlushTimeout)
	defer cancel()
	spooled, err := mail.Send(mctx, h.cfg.SMTP, m)
	switch {
	case spooled:
		h.log.Logf("mail spooled in %s (SMTP: %v)", h.cfg.SMTP.SpoolDir, err)
	case err != nil:
		h.log.Logf("mail LOST: %v", err)
	default:
		h.log.Logf("mail sent to %s: %s", h.cfg.AdminEmail, m.Subject)
	}
}

// onPeer runs fn on a connection to the peer, the whole exchange bounded
// by PeerStateTimeout.
func (h *handler) onPeer(ctx context.Context, fn func(context.Context, *peer.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, PeerStateTimeout)
	defer cancel()
	c, err := peer.Dial(ctx, h.cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// peerState asks the peer for its state.
func (h *handler) peerState(ctx context.Context) (*peer.Client, peer.StateReply, error) {
	sctx, cancel := context.WithTimeout(ctx, PeerStateTimeout)
	defer cancel()
	c, err := peer.Dial(sctx, h.cfg)
	if err != nil {
		return nil, peer.StateReply{}, err
	}
	r, err := c.State(sctx)
	if err != nil {
		c.Close()
		return nil, r, err
	}
	if r.State == nil {
		c.Close()
		return nil, r, fmt.Errorf("%s sent no state", peerName(h.cfg))
	}
	return c, r, nil
}

// handOver is the master's side of a failover: a failover-class check
// failed on this node (handle) or the admin asked for a switchover
// (planned). It asks the peer first: a peer that is already master at a
// higher epoch means this node's mastership is stale (it was frozen or cut
// off), so it only steps down; a peer that is not a slave cannot take over,
// so this node stays master rather than leave nobody. Otherwise it demotes
// here and asks the peer to promote; a planned switchover then rejoins
// this node as the new master's slave.
func (h *handler) handOver(ctx context.Context, reason string, planned bool) int {
	self, pname := h.self(), peerName(h.cfg)
	own, err := cluster.ReadState(h.cfg.StateFile)
	if err != nil {
		h.log.Logf("FAILED: %v", err)
		fmt.Fprintln(h.out, err)
		return ExitFailed
	}
	kind := "FAILOVER"
	if planned {
		kind = "SWITCHOVER"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Trigger: %s\n", reason)
	if h.trigger.Output != "" {
		fmt.Fprintf(&b, "Output:  %s\n", h.trigger.Output)
	}
	refuse := func(why string) int {
		h.log.Logf("REFUSED: %s", why)
		fmt.Fprintf(&b, "\nRefused: %s\n%s stays master (epoch %d); nothing was changed.\n", why, self, own.Epoch)
		h.sendMail(ctx, fmt.Sprintf("%s REFUSED on %s: %s", kind, self, why), b.String(), true)
		fmt.Fprintln(h.out, "refused:", why)
		return ExitFailed
	}

	c, ps, err := h.peerState(ctx)
	if err != nil {
		return refuse(fmt.Sprintf("cannot hand over: %s does not answer (%v); staying master", pname, err))
	}
	defer c.Close()
	peerSt := *ps.State
	h.log.Logf("peer %s: role %s epoch %d", pname, peerSt.Role, peerSt.Epoch)

	// A stale master: the peer took over while this node was away.
	if peerSt.Role == cluster.Master && peerSt.Epoch > own.Epoch {
		h.log.Logf("%s is master at epoch %d above ours (%d): stepping down, no hand-over", pname, peerSt.Epoch, own.Epoch)
		rep, derr := failover.Demote(ctx, h.cfg, fmt.Sprintf("stepped down: %s is master at epoch %d", pname, peerSt.Epoch), h.demoteOps())
		fmt.Fprintf(&b, "\n%s is master at epoch %d, above this node's %d: this node's mastership was stale (it was frozen or cut off while %s took over).\n", pname, peerSt.Epoch, own.Epoch, pname)
		writeSteps(&b, "Steps on "+self, rep)
		fmt.Fprintf(&b, "\nRoles now:\n  %s: master (epoch %d)\n  %s: standby (run `pbxha-eventhandler rejoin` on %s to make it the slave again)\n", pname, peerSt.Epoch, self, self)
		subj := fmt.Sprintf("STEPPED DOWN: %s yields to %s (master at epoch %d)", self, pname, peerSt.Epoch)
		if derr != nil {
			b.WriteString("\nSome steps failed: " + derr.Error() + "\n")
		}
		h.sendMail(ctx, subj, b.String(), derr != nil)
		fmt.Fprintf(h.out, "%s stepped down: %s is master at epoch %d\n", self, pname, peerSt.Epoch)
		if derr != nil {
			return ExitFailed
		}
		return ExitOK
	}
	// The peer is a stale master (it came back after this node took over):
	// this node is the rightful master; fence the peer, hand nothing over.
	if peerSt.Role == cluster.Master && peerSt.Epoch < own.Epoch {
		code, _ := h.fenceStale(ctx, c, &b, own)
		return code
	}
	if peerSt.Role != cluster.Slave && !h.force {
		return refuse(fmt.Sprintf("cannot hand over: %s is %s at epoch %d, not a slave (use --force to promote it anyway)", pname, peerSt.Role, peerSt.Epoch))
	}
	if planned && ps.Maintenance != nil && !h.force {
		return refuse(fmt.Sprintf("%s is in maintenance (%s)", pname, cluster.MaintenanceText(*ps.Maintenance)))
	}

	// The peer's replicas, read from here while this node still feeds
	// them: the peer's own lag gate would see the replication this demote
	// is about to stop, so the check is made here, before any change.
	if !h.force {
		lctx, cancel := context.WithTimeout(ctx, failover.LagTimeout)
		lagging, detail, err := h.lagging(lctx, h.cfg, h.cfg.Peer().ClusterIP)
		cancel()
		switch {
		case err != nil:
			return refuse(fmt.Sprintf("cannot tell whether %s's databases are caught up (%v); use --force to hand over anyway", pname, err))
		case lagging:
			return refuse(fmt.Sprintf("%s's databases lag: %s, more than max_promote_lag; use --force to hand over anyway", pname, detail))
		}
		fmt.Fprintf(&b, "\nDatabases on %s before the hand-over: %s\n", pname, detail)
	}

	// Demote here, then the peer promotes (its fence finds this node
	// already standby, so it does not wait for it).
	t0 := time.Now()
	rep, derr := failover.Demote(ctx, h.cfg, reason+": handing over to "+pname, h.demoteOps())
	writeSteps(&b, "Steps on "+self+" (demote)", rep)
	if derr != nil {
		h.log.Logf("demote had failures (%v): handing over anyway, the VIP is what must move", derr)
	}
	why := "handover"
	if planned {
		why = "switchover"
	}
	pctx, cancel := context.WithTimeout(ctx, PeerPromoteTimeout)
	defer cancel()
	pr, perr := c.Promote(pctx, why)
	total := time.Since(t0)
	fmt.Fprintf(&b, "\nSteps on %s (promote):\n", pname)
	for _, s := range pr.Steps {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if perr != nil {
		h.log.Logf("peer promote FAILED: %v", perr)
		fmt.Fprintf(&b, "\nResult: %s did not become master: %v\n", pname, perr)
		fmt.Fprintf(&b, "\nRoles now:\n  %s: standby (demoted)\n  %s: unknown — check `pbxha-eventhandler status` at once; no node may hold the VIP\n", self, pname)
		h.sendMail(ctx, fmt.Sprintf("%s FAILED: %s demoted, %s did not take over", kind, self, pname), b.String(), true)
		fmt.Fprintf(h.out, "%s demoted, but %s did not promote: %v\n", self, pname, perr)
		return ExitFailed
	}
	h.log.Logf("%s is master at epoch %d (VIP after %.1f ms there); %s after %s", pname, pr.Epoch, pr.VIPMS, kind, total.Round(time.Millisecond))
	fmt.Fprintf(&b, "\nFrom the demote here to %s's services up: %s (VIP bound there %.1f ms after its promote started).\n", pname, total.Round(time.Millisecond), pr.VIPMS)

	selfRole := "standby (run `pbxha-eventhandler rejoin` on " + self + " once it is repaired)"
	code := ExitOK
	if planned {
		rj, rerr := failover.Rejoin(ctx, h.cfg, *h.cfg.Peer(), pr.Epoch, h.demoteOps())
		writeSteps(&b, "Steps on "+self+" (rejoin)", rj)
		if rerr != nil {
			h.log.Logf("rejoin FAILED: %v", rerr)
			selfRole = "standby: the rejoin failed (" + rerr.Error() + ")"
			code = ExitFailed
		} else {
			selfRole = fmt.Sprintf("slave (epoch %d)", rj.Epoch)
		}
	}
	fmt.Fprintf(&b, "\nRoles now:\n  %s: master (epoch %d)\n  %s: %s\n", pname, pr.Epoch, self, selfRole)
	var subj string
	if planned {
		subj = fmt.Sprintf("SWITCHOVER: %s is now master (planned, from %s)", pname, self)
	} else {
		subj = fmt.Sprintf("FAILOVER: %s is now master (trigger: %s on %s, handed over)", pname, triggerText(h.trigger, reason), self)
	}
	h.sendMail(ctx, subj, b.String(), code != ExitOK)
	fmt.Fprintf(h.out, "%s is master (epoch %d); %s is %s\n", pname, pr.Epoch, self, selfRole)
	return code
}

func triggerText(t failover.Trigger, reason string) string {
	if t.Service != "" {
		return t.Service + " " + t.State
	}
	return reason
}

// lagging is dbfailover.LaggingAt unless a test replaces it.
func (h *handler) lagging(ctx context.Context, cfg *config.Config, host string) (bool, string, error) {
	if h.laggingAt != nil {
		return h.laggingAt(ctx, cfg, host)
	}
	return dbfailover.LaggingAt(ctx, cfg, host)
}

func (h *handler) demoteOps() failover.Ops {
	ops := h.ops
	ops.Logf = h.log.Logf
	return ops
}

func writeSteps(b *strings.Builder, title string, rep *failover.Report) {
	if rep == nil {
		return
	}
	fmt.Fprintf(b, "\n%s (started %s):\n", title, rep.Start.UTC().Format(time.RFC3339Nano))
	for _, s := range rep.Steps {
		fmt.Fprintf(b, "  %s\n", s)
	}
}

// commonFlags parses --config (and the given extras) and loads the config.
func setup(name string, args []string, stderr io.Writer, extra func(fs *pflag.FlagSet)) (*config.Config, *pflag.FlagSet, int) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "cluster config file")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "pbxha-eventhandler %s: %v\n", name, err)
		return nil, fs, ExitUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "pbxha-eventhandler %s: %v\n", name, err)
		return nil, fs, ExitUsage
	}
	return cfg, fs, ExitOK
}

// switchoverCmd is `failover`: the planned switchover.
func switchoverCmd(args []string, stdout, stderr io.Writer) int {
	var force, dry bool
	cfg, _, code := setup("failover", args, stderr, func(fs *pflag.FlagSet) {
		fs.BoolVar(&force, "force", false, "switch over even when the peer is not a healthy slave")
		fs.BoolVar(&dry, "dry-run", false, "print the plan, change nothing")
	})
	if code != ExitOK {
		return code
	}
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: stdout, force: force}
	st, err := cluster.ReadState(cfg.StateFile)
	if err != nil {
		fmt.Fprintln(stdout, "failover:", err)
		return ExitFailed
	}
	if st.Role != cluster.Master {
		fmt.Fprintf(stdout, "failover: %s is %s, not master: run the switchover on the master\n", h.self(), st.Role)
		return ExitFailed
	}
	if dry {
		fmt.Fprintf(stdout, "dry run on %s (master, epoch %d): planned switchover to %s\n", h.self(), st.Epoch, peerName(cfg))
		fmt.Fprintf(stdout, "  0. ask %s for its state: refuse unless it is a slave (--force: %v)\n", peerName(cfg), force)
		for i, s := range failover.DemotePlan(cfg) {
			fmt.Fprintf(stdout, "  %d. %s\n", i+1, s)
		}
		fmt.Fprintf(stdout, "  then: ask %s over SSH to promote\n", peerName(cfg))
		for _, s := range failover.RejoinPlan(cfg, peerName(cfg)) {
			fmt.Fprintf(stdout, "  then: %s\n", s)
		}
		return ExitOK
	}
	ctx := context.Background()
	unlock, err := failover.Lock(ctx, filepath.Join(cfg.RunDir, "failover.lock"), LockWait)
	if err != nil {
		fmt.Fprintln(stdout, "failover lock:", err)
		return ExitFailed
	}
	defer unlock()
	log.Logf("switchover requested by the admin on %s", h.self())
	code = h.handOver(ctx, "planned switchover by the admin on "+h.self(), true)
	h.flushSpool()
	return code
}

// rejoinCmd makes a standby node the slave of the current master.
func rejoinCmd(args []string, stdout, stderr io.Writer) int {
	var dry bool
	cfg, _, code := setup("rejoin", args, stderr, func(fs *pflag.FlagSet) {
		fs.BoolVar(&dry, "dry-run", false, "print the plan, change nothing")
	})
	if code != ExitOK {
		return code
	}
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: stdout}
	return h.rejoin(context.Background(), dry)
}

func (h *handler) rejoin(ctx context.Context, dry bool) int {
	self, pname := h.self(), peerName(h.cfg)
	fail := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		h.log.Logf("rejoin refused: %s", msg)
		fmt.Fprintln(h.out, "rejoin refused:", msg)
		return ExitFailed
	}
	st, err := cluster.ReadState(h.cfg.StateFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("%v", err)
	}
	if st.Role == cluster.Master {
		return fail("%s is master (epoch %d); only a standby node rejoins", self, st.Epoch)
	}
	if vip, err := parseVIP(h.cfg); err == nil {
		if bound, err := cluster.VIPBound(h.cfg.VIP.Interface, vip); err == nil && bound {
			return fail("%s still holds the VIP %s on %s", self, vip, h.cfg.VIP.Interface)
		}
	}
	c, ps, err := h.peerState(ctx)
	if err != nil {
		return fail("cannot ask %s for its state: %v", pname, err)
	}
	c.Close()
	if ps.State.Role != cluster.Master {
		return fail("%s is %s, not master: nothing to rejoin", pname, ps.State.Role)
	}
	if dry {
		fmt.Fprintf(h.out, "dry run on %s (%s, epoch %d): rejoin %s (master, epoch %d)\n", self, st.Role, st.Epoch, pname, ps.State.Epoch)
		for i, s := range failover.RejoinPlan(h.cfg, pname) {
			fmt.Fprintf(h.out, "  %d. %s\n", i+1, s)
		}
		return ExitOK
	}
	unlock, err := failover.Lock(ctx, filepath.Join(h.cfg.RunDir, "failover.lock"), LockWait)
	if err != nil {
		return fail("%v", err)
	}
	defer unlock()
	rep, err := failover.Rejoin(ctx, h.cfg, *h.cfg.Peer(), ps.State.Epoch, h.demoteOps())
	var b strings.Builder
	fmt.Fprintf(&b, "%s asked to rejoin %s (master, epoch %d).\n", self, pname, ps.State.Epoch)
	writeSteps(&b, "Steps on "+self, rep)
	if err != nil {
		fmt.Fprintf(&b, "\nResult: FAILED: %v\n%s stays standby.\n", err, self)
		h.sendMail(ctx, fmt.Sprintf("REJOIN FAILED: %s could not become the slave of %s", self, pname), b.String(), true)
		fmt.Fprintln(h.out, "rejoin failed:", err)
		h.flushSpool()
		return ExitFailed
	}
	fmt.Fprintf(&b, "\nRoles now:\n  %s: master (epoch %d)\n  %s: slave (epoch %d)\n", pname, ps.State.Epoch, self, rep.Epoch)
	h.sendMail(ctx, fmt.Sprintf("REJOIN: %s is the slave of %s again", self, pname), b.String(), false)
	fmt.Fprintf(h.out, "%s is the slave of %s (epoch %d)\n", self, pname, rep.Epoch)
	h.flushSpool()
	return ExitOK
}

// maintenanceCmd switches maintenance on or off on both nodes.
func maintenanceCmd(args []string, stdout, stderr io.Writer) int {
	var dur time.Duration
	var reason string
	cfg, fs, code := setup("maintenance", args, stderr, func(fs *pflag.FlagSet) {
		fs.DurationVar(&dur, "for", cluster.DefaultMaintenance, "how long until maintenance ends by itself")
		fs.StringVar(&reason, "reason", "", "why (goes into the checks' output and the mail)")
	})
	if code != ExitOK {
		return code
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "on" && fs.Arg(0) != "off" && fs.Arg(0) != "status") {
		fmt.Fprintln(stderr, "pbxha-eventhandler maintenance: say on, off or status")
		return ExitUsage
	}
	if dur <= 0 || dur > peer.MaxMaintenance*time.Second {
		fmt.Fprintf(stderr, "pbxha-eventhandler maintenance: --for %s is not between 1s and 24h\n", dur)
		return ExitUsage
	}
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: stdout}
	ctx := context.Background()
	self, pname := h.self(), peerName(cfg)
	switch fs.Arg(0) {
	case "status":
		if m, on := h.maintenance(); on {
			fmt.Fprintln(stdout, cluster.MaintenanceText(m))
		} else {
			fmt.Fprintln(stdout, "maintenance off")
		}
		return ExitOK
	case "on":
		now := time.Now()
		m := cluster.Maintenance{Since: now.UTC(), Until: now.Add(dur).UTC(), By: self, Reason: reason}
		if err := cluster.WriteMaintenance(cfg.StateFile, m); err != nil {
			fmt.Fprintln(stdout, "maintenance:", err)
			return ExitFailed
		}
		peerNote := "on " + pname + " too"
		if err := h.onPeer(ctx, func(ctx context.Context, c *peer.Client) error { _, err := c.MaintenanceOn(ctx, dur); return err }); err != nil {
			peerNote = "NOT on " + pname + " (" + err.Error() + "): its handler may still act"
		}
		log.Logf("maintenance on until %s, %s", m.Until.Format(time.RFC3339), peerNote)
		h.sendMail(ctx, fmt.Sprintf("MAINTENANCE STARTED on %s until %s", self, m.Until.Local().Format("15:04 MST")),
			fmt.Sprintf("%s\nSet %s.\nUntil it ends, pbxha-eventhandler handle does nothing and every pbxha check says \"maintenance\".\nIt ends by itself at %s unless renewed (pbxha-eventhandler maintenance on --for ...), or with: pbxha-eventhandler maintenance off\n", cluster.MaintenanceText(m), peerNote, m.Until.Format(time.RFC3339)), false)
		fmt.Fprintf(stdout, "%s; set %s\n", cluster.MaintenanceText(m), peerNote)
	case "off":
		was, err := cluster.ClearMaintenance(cfg.StateFile)
		if err != nil {
			fmt.Fprintln(stdout, "maintenance:", err)
			return ExitFailed
		}
		peerNote := "off on " + pname + " too"
		if err := h.onPeer(ctx, func(ctx context.Context, c *peer.Client) error { _, err := c.MaintenanceOff(ctx); return err }); err != nil {
			peerNote = "NOT switched off on " + pname + " (" + err.Error() + "): it ends there by itself"
		}
		log.Logf("maintenance off (was on: %v), %s", was, peerNote)
		h.sendMail(ctx, fmt.Sprintf("MAINTENANCE ENDED on %s", self), fmt.Sprintf("Maintenance switched off by the admin on %s; %s.\nThe event handler acts again on failover-class checks.\n", self, peerNote), false)
		fmt.Fprintf(stdout, "maintenance off; %s\n", peerNote)
	}
	h.flushSpool()
	return ExitOK
}

// ignoreHangup keeps a promote asked for over SSH running when the session
// ends: sshd hangs up when the client goes, and a half-done promote is
// worse than a finished one nobody hears about (the log has it).
func ignoreHangup() { signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE) }

// PeerPromote is peer.PromoteFunc: the promote the other node asks for
// after it demoted itself. It runs as the event handler's promote does (the
// lock, the log, the steps, the record) but sends no mail: the node that
// asked reports both halves in one. The SSH session may end before it does
// (the caller's deadline); the work is finished regardless.
func PeerPromote(ctx context.Context, cfg *config.Config, reason string) (*peer.PromoteReply, error) {
	ignoreHangup()
	ctx = context.WithoutCancel(ctx)
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: io.Discard}
	r := &peer.PromoteReply{Node: h.self()}
	log.Logf("promote asked by %s (%s)", peerName(cfg), reason)
	if m, on := h.maintenance(); on && reason == "handover" {
		// A hand-over after a failure is exactly what maintenance holds
		// back; a switchover is the admin's own request.
		return r, fmt.Errorf("%s is in maintenance: %s", h.self(), cluster.MaintenanceText(m))
	}
	unlock, err := failover.Lock(ctx, filepath.Join(cfg.RunDir, "failover.lock"), LockWait)
	if err != nil {
		return r, err
	}
	defer unlock()
	st, err := cluster.ReadState(cfg.StateFile)
	if err != nil {
		return r, err
	}
	if st.Role == cluster.Master {
		r.Role, r.Epoch = st.Role, st.Epoch
		r.Steps = []string{fmt.Sprintf("already master at epoch %d: nothing done", st.Epoch)}
		return r, nil
	}
	if st.Role != cluster.Slave {
		return r, fmt.Errorf("%s is %s, not a slave: it does not take over (rejoin it first)", h.self(), st.Role)
	}
	rep, err := h.doPromote(ctx, fmt.Sprintf("%s from %s", reason, peerName(cfg)), true)
	for _, s := range rep.Steps {
		r.Steps = append(r.Steps, s.String())
	}
	r.VIPMS, r.ServicesMS, r.Refused = ms(rep.VIPAt), ms(rep.ServicesAt), rep.Refused
	if err != nil {
		return r, err
	}
	r.Role, r.Epoch = cluster.Master, rep.Epoch
	log.Logf("promote done for %s: master at epoch %d", peerName(cfg), rep.Epoch)
	return r, nil
}

// fenceStale asks a peer that still says master at a lower epoch to
// demote (demote-below: it does only while it is such a stale master, so
// a peer that stepped down meanwhile is left alone) and mails the outcome.
// skipped says why nothing was done.
func (h *handler) fenceStale(ctx context.Context, c *peer.Client, b *strings.Builder, own cluster.State) (code int, skipped string) {
	self, pname := h.self(), peerName(h.cfg)
	h.log.Logf("asking %s to demote if it is a master below epoch %d", pname, own.Epoch)
	fctx, cancel := context.WithTimeout(ctx, failover.FenceTimeout+peer.MaxCommandTime)
	defer cancel()
	r, err := c.DemoteBelow(fctx, own.Epoch)
	if err == nil && r.Skipped != "" {
		h.log.Logf("nothing to fence: %s", r.Skipped)
		h.unfence(ctx, r.Skipped)
		fmt.Fprintf(h.out, "nothing to fence: %s\n", r.Skipped)
		return ExitOK, r.Skipped
	}
	fmt.Fprintf(b, "\n%s still said master at epoch %d, below this node's %d: it was cut off or frozen while %s took over, and came back.\n", pname, r.Epoch, own.Epoch, self)
	if err != nil || !r.VIPReleased || r.Role != cluster.Standby {
		why := fmt.Sprintf("%s (stale master at epoch %d) did not confirm its demotion: %v", pname, r.Epoch, err)
		h.log.Logf("FAILED: %s", why)
		fmt.Fprintf(b, "\nResult: %s. Two nodes may hold the VIP: check `pbxha-eventhandler status` at once.\n", why)
		h.sendMail(ctx, fmt.Sprintf("FENCING FAILED on %s: %s", self, why), b.String(), true)
		fmt.Fprintln(h.out, "fencing failed:", why)
		return ExitFailed, ""
	}
	fmt.Fprintf(b, "\nIt demoted itself at this node's request: VIP released, stopped %s.\n", strings.Join(r.Stopped, ", "))
	if u := h.unfence(ctx, pname+" confirmed its demotion"); u != "" {
		fmt.Fprintln(b, u)
	}
	if r.Databases != "" {
		fmt.Fprintf(b, "Its databases: %s\n", r.Databases)
	}
	fmt.Fprintf(b, "\nRoles now:\n  %s: master (epoch %d)\n  %s: standby (run `pbxha-eventhandler rejoin` on %s)\n", self, own.Epoch, pname, pname)
	h.sendMail(ctx, fmt.Sprintf("FENCED: %s (stale master at epoch %d) demoted, %s stays master", pname, r.Epoch, self), b.String(), false)
	fmt.Fprintf(h.out, "%s fenced: it is standby; %s stays master (epoch %d)\n", pname, self, own.Epoch)
	return ExitOK, ""
}
