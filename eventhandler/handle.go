package eventhandler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/failover"
	"pbxha/lib/mail"
	"pbxha/lib/peer"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailed  = 1 // a step failed
	ExitRefused = 2 // the split-brain guard refused
	ExitUsage   = 3
)

// processStart is when this process's Go code began (package init): the
// benchmark counts the handler's start-up from it.
var processStart = time.Now()

// LockWait is how long a second handler waits for the first.
const LockWait = 10 * time.Second

// FlushTimeout bounds sending the spool at the end of a run.
const FlushTimeout = 15 * time.Second

const usage = `Usage: pbxha-eventhandler COMMAND [FLAGS]

Commands:
  handle --service S --state ST --state-type T --attempt N [--host H]
         [--output TEXT] [--dry-run] [--force] [--config FILE]
         the Icinga event handler: acts on CRITICAL+HARD of a failover-class
         service, logs and ignores everything else
  failover [--force] [--dry-run] [--config FILE]
         planned switchover, run on the master: demote here, promote the
         peer, then this node rejoins as its slave
  status [--json] [--config FILE]
         both nodes' roles and epochs, who answers ARP for the VIP, the PBX
         services on each, maintenance, the last failover
  rejoin [--dry-run] [--config FILE]
         a standby node becomes the slave of the current master
  maintenance on|off|status [--for 2h] [--reason TEXT] [--config FILE]
         while on (on both nodes), handle does nothing and the checks say
         "maintenance"; it ends by itself after --for
  sync [--dry-run] [--timeout D] [--config FILE]
         on the master: push the [sync] dirs to the peer's rsync module;
         on any other role a no-op that says so
  flush [--config FILE]
         send the spooled mail
  fence-watch [--config FILE]
         (started by a promote whose old master did not confirm its
         demotion) asks the old master to demote (a connect attempt every
         250 ms) until it does, this node stops being master, or 30
         minutes pass; then runs unfence_command if fence_command ran
`

// Main is pbxha-eventhandler.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return ExitUsage
	}
	switch args[0] {
	case "handle":
		return handle(args[1:], stdout, stderr)
	case "flush":
		return flush(args[1:], stdout, stderr)
	case "failover":
		return switchoverCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "rejoin":
		return rejoinCmd(args[1:], stdout, stderr)
	case "maintenance":
		return maintenanceCmd(args[1:], stdout, stderr)
	case "sync":
		return syncCmd(args[1:], stdout, stderr)
	case "fence-watch":
		return fenceWatchCmd(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "pbxha-eventhandler: unknown command %q\n%s", args[0], usage)
	return ExitUsage
}

func loadConfig(path string) (*config.Config, error) {
	if err := sudoGuard(path, os.Getenv, os.Geteuid(), os.Stat); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path, path != "")
	if err == nil && cfg == nil {
		err = fmt.Errorf("no configuration file %s", config.DefaultPath)
	}
	return cfg, err
}

// sudoGuard: run through sudo (the package lets the nagios user run
// `handle` and `flush` as root), the handler reads only the root-owned
// default config. A cluster.toml names the commands the handler runs
// ([[services]] start/stop) as root, so a --config of the caller's choosing,
// or a default config the caller could rewrite, would make the nagios
// account root.
func sudoGuard(path string, getenv func(string) string, euid int, stat func(string) (os.FileInfo, error)) error {
	if getenv("SUDO_UID") == "" || euid != 0 {
		return nil
	}
	if path != "" && filepath.Clean(path) != config.DefaultPath {
		return fmt.Errorf("run through sudo, only %s is read (not --config %s)", config.DefaultPath, path)
	}
	for _, p := range []string{config.DefaultPath, filepath.Dir(config.DefaultPath)} {
		fi, err := stat(p)
		if err != nil {
			return fmt.Errorf("run through sudo: %v", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("run through sudo, %s must be owned by root and writable by no one else (it names commands run as root)", p)
		}
	}
	return nil
}

func flush(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("flush", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "cluster config file")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "pbxha-eventhandler %s: %v\n", fs.Name(), err)
		return ExitUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "pbxha-eventhandler flush:", err)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	n, err := mail.Flush(ctx, cfg.SMTP)
	left := mail.Pending(cfg.SMTP.SpoolDir)
	fmt.Fprintf(stdout, "sent %d spooled message(s), %d left\n", n, left)
	if err != nil {
		fmt.Fprintln(stderr, "pbxha-eventhandler flush:", err)
		return ExitFailed
	}
	return ExitOK
}

func handle(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("handle", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var t failover.Trigger
	fs.StringVar(&t.Service, "service", "", "Icinga service name ($service.name$)")
	fs.StringVar(&t.State, "state", "", "$service.state$")
	fs.StringVar(&t.StateType, "state-type", "", "$service.state_type$")
	fs.IntVar(&t.Attempt, "attempt", 0, "$service.check_attempt$")
	fs.StringVar(&t.Host, "host", "", "$host.name$")
	fs.StringVar(&t.Output, "output", "", "$service.output$")
	dry := fs.Bool("dry-run", false, "print the plan, change nothing")
	force := fs.Bool("force", false, "take the VIP even when another MAC still answers for it")
	cfgPath := fs.String("config", "", "cluster config file")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "pbxha-eventhandler %s: %v\n", fs.Name(), err)
		return ExitUsage
	}
	if t.Service == "" || t.State == "" || t.StateType == "" {
		fmt.Fprintln(stderr, "pbxha-eventhandler handle: --service, --state and --state-type are required")
		return ExitUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "pbxha-eventhandler handle:", err)
		return ExitUsage
	}
	log := newLogger(cfg.RunDir, stderr)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: stdout, trigger: t, force: *force}
	if *dry {
		return h.dryRun()
	}
	code := h.run()
	h.flushSpool()
	return code
}

type handler struct {
	cfg     *config.Config
	log     *logger
	out     io.Writer
	trigger failover.Trigger
	force   bool
	ops     failover.Ops // zero: the real thing
	// laggingAt replaces dbfailover.LaggingAt in tests.
	laggingAt func(ctx context.Context, cfg *config.Config, host string) (bool, string, error)
}

func (h *handler) self() string {
	if s := h.cfg.Self(); s != nil {
		return s.Name
	}
	return "this node"
}

func (h *handler) decide() (failover.Decision, cluster.State) {
	st, err := cluster.ReadState(h.cfg.StateFile)
	if err != nil {
		h.log.Logf("reading the state: %v", err)
	}
	return failover.Decide(h.cfg, h.trigger, st.Role), st
}

func (h *handler) dryRun() int {
	d, st := h.decide()
	fmt.Fprintf(h.out, "dry run on %s (role %q, epoch %d): %s: %s\n", h.self(), st.Role, st.Epoch, d.Action, d.Reason)
	switch d.Action {
	case failover.ActPromote:
		for i, s := range failover.Plan(h.cfg) {
			fmt.Fprintf(h.out, "  %d. %s\n", i+1, s)
		}
		fmt.Fprintf(h.out, "  then: email %s\n", h.cfg.AdminEmail)
	case failover.ActDemote:
		fmt.Fprintf(h.out, "  0. ask %s for its state: a master at a higher epoch -> only step down here; not a slave -> refuse\n", peerName(h.cfg))
		for i, s := range failover.DemotePlan(h.cfg) {
			fmt.Fprintf(h.out, "  %d. %s\n", i+1, s)
		}
		fmt.Fprintf(h.out, "  then: ask %s over SSH to promote (its own fence, VIP, GARP, databases, services, epoch+1)\n", peerName(h.cfg))
		fmt.Fprintf(h.out, "  then: email %s\n", h.cfg.AdminEmail)
	}
	return ExitOK
}

func (h *handler) run() int {
	t := h.trigger
	h.log.Logf("called: service=%s state=%s type=%s attempt=%d host=%s output=%q", t.Service, t.State, t.StateType, t.Attempt, t.Host, t.Output)
	if m, on := h.maintenance(); on {
		h.log.Logf("nothing done: %s", cluster.MaintenanceText(m))
		return ExitOK
	}
	d, before := h.decide()
	if d.Action == failover.Ignore {
		h.log.Logf("nothing to do: %s", d.Reason)
		return ExitOK
	}
	ctx := context.Background()
	unlock, err := failover.Lock(ctx, filepath.Join(h.cfg.RunDir, "failover.lock"), LockWait)
	if err != nil {
		after, rerr := cluster.ReadState(h.cfg.StateFile)
		if errors.Is(err, failover.ErrLocked) && rerr == nil && after.Role == cluster.Master && after.Epoch > before.Epoch {
			h.log.Logf("work done by another handler: %s is master at epoch %d", h.self(), after.Epoch)
			return ExitOK
		}
		h.log.Logf("FAILED: %v", err)
		fmt.Fprintln(h.out, "failover lock:", err)
		return ExitFailed
	}
	defer unlock()
	// Decide again under the lock: another handler may have done the work.
	d, st := h.decide()
	switch d.Action {
	case failover.Ignore:
		h.log.Logf("nothing to do under the lock: %s", d.Reason)
		return ExitOK
	case failover.ActDemote:
		if before.Role != cluster.Master {
			h.log.Logf("work done: %s is master at epoch %d (was %s at %d)", h.self(), st.Epoch, before.Role, before.Epoch)
			return ExitOK
		}
		return h.handOver(ctx, d.Reason, false)
	}
	return h.promote(ctx, d)
}

func (h *handler) fence(ctx context.Context) (failover.FenceResult, error) {
	c, err := peer.Dial(ctx, h.cfg)
	if err != nil {
		return failover.FenceResult{Hung: errors.Is(err, peer.ErrNoHandshake)}, err
	}
	defer c.Close()
	r, err := c.Demote(ctx)
	f := failover.FenceResult{Reached: true, PeerEpoch: r.Epoch}
	if err != nil {
		f.Detail = err.Error()
		return f, nil
	}
	f.Demoted = r.VIPReleased && r.Role == cluster.Standby
	f.Detail = fmt.Sprintf("%s is %s at epoch %d, VIP released=%v, stopped %s", r.Node, r.Role, r.Epoch, r.VIPReleased, strings.Join(r.Stopped, ","))
	if len(r.Failed) > 0 {
		f.Detail += ", failed to stop: " + strings.Join(r.Failed, "; ")
	}
	return f, nil
}

// doPromote runs the promote and records its timings.
func (h *handler) doPromote(ctx context.Context, reason string, lagChecked bool) (*failover.Report, error) {
	ops := h.ops
	ops.Logf = h.log.Logf
	if ops.Fence == nil {
		ops.Fence = h.fence
	}
	if ops.PeerReachable == nil {
		ops.PeerReachable = func(ctx context.Context) error {
			return h.onPeer(ctx, func(ctx context.Context, c *peer.Client) error { _, err := c.State(ctx); return err })
		}
	}
	h.log.Logf("promote: %s", reason)
	rep, err := failover.Promote(ctx, h.cfg, failover.Options{Force: h.force, Reason: reason, LagChecked: lagChecked}, ops)
	if err == nil {
		lf := failover.LastFailover{At: rep.Start.UTC(), Node: h.self(), Trigger: reason, Epoch: rep.Epoch,
			StartupMS: ms(rep.Start.Sub(processStart)), VIPMS: ms(rep.VIPAt), GARPMS: ms(rep.GARPAt),
			ServicesMS: ms(rep.ServicesAt), TotalMS: ms(time.Since(rep.Start))}
		if werr := failover.WriteLastFailover(h.cfg, lf); werr != nil {
			h.log.Logf("recording the failover: %v", werr)
		}
	}
	return rep, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (h *handler) promote(ctx context.Context, d failover.Decision) int {
	rep, err := h.doPromote(ctx, d.Reason, false)
	code := ExitOK
	switch {
	case errors.Is(err, failover.ErrRefused), errors.Is(err, failover.ErrLagging):
		code = ExitRefused
	case err != nil:
		code = ExitFailed
	}
	h.mailReport(ctx, rep, err)
	if err != nil {
		h.log.Logf("promote FAILED: %v", err)
		fmt.Fprintln(h.out, "promote failed:", err)
		return code
	}
	if rep.PeerFenced {
		h.markPeerFenced()
	}
	if !rep.PeerDemoted && h.ops.Fence == nil {
		h.spawnFenceWatch()
	}
	h.log.Logf("promote done: %s is master at epoch %d; VIP after %s, services after %s", h.self(), rep.Epoch, rep.VIPAt.Round(time.Microsecond), rep.ServicesAt.Round(time.Millisecond))
	fmt.Fprintf(h.out, "%s is master (epoch %d): VIP bound after %s, services up after %s\n", h.self(), rep.Epoch, rep.VIPAt.Round(time.Microsecond), rep.ServicesAt.Round(time.Millisecond))
	return ExitOK
}

func (h *handler) mailReport(ctx context.Context, rep *failover.Report, perr error) {
	h.send(ctx, composeReport(h.cfg, h.self(), h.trigger, rep, perr))
}

func (h *handler) flushSpool() {
	if mail.Pending(h.cfg.SMTP.SpoolDir) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	n, err := mail.Flush(ctx, h.cfg.SMTP)
	h.log.Logf("spool: sent %d, %d left (%v)", n, mail.Pending(h.cfg.SMTP.SpoolDir), err)
}

// composeReport is the admin's email about a promote.
func composeReport(cfg *config.Config, self string, t failover.Trigger, rep *failover.Report, perr error) mail.Message {
	id := cfg.ClusterID
	if id == "" {
		id = "pbxha"
	}
	var subj string
	urgent := false
	switch {
	case rep != nil && rep.Refused != "":
		subj = fmt.Sprintf("[%s] FAILOVER REFUSED on %s: %s", id, self, rep.Refused)
		urgent = true
	case perr != nil:
		subj = fmt.Sprintf("[%s] FAILOVER FAILED: %s could not become master", id, self)
		urgent = true
	default:
		subj = fmt.Sprintf("[%s] FAILOVER: %s is now master (epoch %d, trigger: %s %s on %s)", id, self, rep.Epoch, t.Service, t.State, self)
		if f := rep.Failed(); f != nil && f.Name == "stonith" {
			subj += "; FENCE COMMAND FAILED"
			urgent = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Trigger: %s %s %s (attempt %d) on %s\n", t.Service, t.State, t.StateType, t.Attempt, self)
	if t.Output != "" {
		fmt.Fprintf(&b, "Output:  %s\n", t.Output)
	}
	if perr != nil {
		fmt.Fprintf(&b, "\nResult:  %v\n", perr)
	}
	if rep != nil {
		fmt.Fprintf(&b, "\nSteps (started %s):\n", rep.Start.UTC().Format(time.RFC3339Nano))
		for _, s := range rep.Steps {
			fmt.Fprintf(&b, "  %s\n", s)
		}
		if rep.VIPAt > 0 {
			fmt.Fprintf(&b, "\nVIP %s bound %.1f ms after the handler started", cfg.VIP.Address, float64(rep.VIPAt.Microseconds())/1000)
			if rep.ServicesAt > 0 {
				fmt.Fprintf(&b, "; services up after %.1f ms", float64(rep.ServicesAt.Microseconds())/1000)
			}
			b.WriteString(".\n")
		}
	}
	b.WriteString("\nRoles now:\n")
	if perr == nil && rep != nil {
		fmt.Fprintf(&b, "  %s: master (epoch %d)\n", self, rep.Epoch)
	} else {
		fmt.Fprintf(&b, "  %s: not master (see above)\n", self)
	}
	peerRole := "not confirmed demoted: a fence watch asks it to demote the moment it answers; by itself it would see the higher epoch and step down"
	switch {
	case rep != nil && rep.PeerDemoted:
		peerRole = "standby (confirmed its demotion)"
	case rep != nil && rep.PeerFenced:
		peerRole = "isolated by fence_command, not confirmed demoted: a fence watch asks it to demote the moment it answers, then runs unfence_command"
		if len(cfg.Failover.UnfenceCommand) == 0 {
			peerRole = "isolated by fence_command (no unfence_command: bring it back by hand once it is standby), not confirmed demoted"
		}
	}
	fmt.Fprintf(&b, "  %s: %s\n", peerName(cfg), peerRole)
	return mail.Message{From: cfg.SMTP.From, To: []string{cfg.AdminEmail}, Subject: subj, Body: b.String(), Urgent: urgent}
}
