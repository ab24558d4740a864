package eventhandler

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/failover"
	"pbxha/lib/peer"
)

// The fence watch: after a promote whose old master could not be reached
// (cut off) or was hung (frozen), that node still holds the VIP and says
// master. When it comes back it would answer ARP for the VIP until its own
// Icinga notices the higher epoch (three check results, many seconds). The
// watch asks it to demote the moment it answers again.
const (
	FenceWatchFor = 30 * time.Minute
	// FenceWatchEvery starts a connect attempt; attempts overlap (each is
	// bounded by FenceWatchConnect), so the first SYN after the peer's link
	// returns, or the greeting of a thawed sshd, is never behind an attempt
	// still waiting out its timeout.
	FenceWatchEvery = 250 * time.Millisecond
	// FenceWatchConnect bounds each attempt's SSH connect (a LAN peer that
	// answers at all does within it).
	FenceWatchConnect = 1500 * time.Millisecond
	// FenceWatchGreeting is how long a connected attempt waits for sshd's
	// greeting: a frozen peer's kernel accepts the connection, and its sshd
	// greets the moment it thaws. No new attempt starts while one waits, so
	// a thawed peer has one connection to serve, not a backlog of them.
	FenceWatchGreeting = 20 * time.Second
	// FenceWatchRetry is the pause after a demotion the peer answered but
	// did not confirm (each such round mails the admin).
	FenceWatchRetry = 30 * time.Second
)

const whyDemoteFailed = "its demotion failed"

// FenceWatchPIDFile is the watch's pid file in run_dir.
const FenceWatchPIDFile = "fence-watch.pid"

// spawnFenceWatch starts `fence-watch` detached (its own session: Icinga
// kills the handler's process group at the event command's timeout, not
// the watch).
func (h *handler) spawnFenceWatch() {
	exe, err := os.Executable()
	if err != nil {
		h.log.Logf("fence watch not started: %v", err)
		return
	}
	cmd := exec.Command(exe, "fence-watch", "--config", h.cfg.Path())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		h.log.Logf("fence watch not started: %v", err)
		return
	}
	h.log.Logf("fence watch started (pid %d): %s will be asked to demote as soon as it answers", cmd.Process.Pid, peerName(h.cfg))
	cmd.Process.Release()
}

func fenceWatchCmd(args []string, stdout, stderr io.Writer) int {
	cfg, _, code := setup("fence-watch", args, stderr, nil)
	if code != ExitOK {
		return code
	}
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	if cfg.SSH.ConnectTimeout.Duration <= 0 || cfg.SSH.ConnectTimeout.Duration > FenceWatchConnect {
		cfg.SSH.ConnectTimeout.Duration = FenceWatchConnect
	}
	h := &handler{cfg: cfg, log: log, out: io.Discard}
	ctx := context.Background()
	unlock, err := failover.Lock(ctx, filepath.Join(cfg.RunDir, "fence-watch.lock"), 0)
	if err != nil {
		log.Logf("fence watch: %v: another watch runs", err)
		return ExitOK
	}
	defer unlock()
	pidFile := filepath.Join(cfg.RunDir, FenceWatchPIDFile)
	cluster.WriteFileAtomic(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	defer os.Remove(pidFile)
	log.Logf("fence watch: asking %s to demote, a connect attempt every %s (each up to %s), for up to %s", peerName(cfg), FenceWatchEvery, FenceWatchConnect, FenceWatchFor)
	if why, ok := h.watch(ctx, FenceWatchFor, FenceWatchEvery); ok {
		log.Logf("fence watch ends: %s", why)
	} else {
		log.Logf("fence watch ends: %s never answered within %s", peerName(cfg), FenceWatchFor)
	}
	return ExitOK
}

// watch runs fence rounds until one is done or d is over. The connects
// overlap (one starts every `every`, at most maxInflight at a time), but
// none starts while one is connected (waiting for a frozen peer's greeting,
// or acting), nor for FenceWatchRetry after a failed demotion; what
// follows a connect (demote, mail) runs one round at a time, and not at
// all once a round is done.
func (h *handler) watch(ctx context.Context, d, every time.Duration) (string, bool) {
	const maxInflight = 8
	var (
		serial   sync.Mutex
		finished bool      // under serial
		failedAt time.Time // under serial: the last failed demotion (each mails the admin)
		inflight atomic.Int32
		up       atomic.Int32 // rounds whose TCP connection is up
		wg       sync.WaitGroup
		result   = make(chan string, 1)
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer wg.Wait()
	defer cancel()
	backingOff := func() bool {
		serial.Lock()
		defer serial.Unlock()
		return time.Since(failedAt) < FenceWatchRetry
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if inflight.Load() < maxInflight && up.Load() == 0 && !backingOff() {
			inflight.Add(1)
			wg.Go(func() {
				defer inflight.Add(-1)
				connected := false // set by Dial, in this goroutine
				defer func() {
					if connected {
						up.Add(-1)
					}
				}()
				wait := peer.WithHandshakeWait(FenceWatchGreeting, func() { connected = true; up.Add(1) })
				done, why := h.fenceOnce(ctx, wait, func(run func() (bool, string)) (bool, string) {
					serial.Lock()
					defer serial.Unlock()
					if finished || ctx.Err() != nil {
						return false, "another round is done"
					}
					done, why := run()
					finished = done
					if why == whyDemoteFailed {
						failedAt = time.Now()
					}
					return done, why
				})
				if done {
					result <- why
				}
			})
		}
		select {
		case why := <-result:
			return why, true
		case <-ctx.Done():
			return "", false
		case <-tick.C:
		}
	}
}

// fenceOnce is one round of the watch: done when there is nothing left to
// fence (this node is no longer master, or the peer is not a master below
// our epoch) or the peer demoted.
//
// The SSH connect runs at once; everything after it runs inside serial,
// which the watch uses to let one round at a time act.
func (h *handler) fenceOnce(ctx context.Context, dial peer.Option, serial func(func() (bool, string)) (bool, string)) (bool, string) {
	if own, err := cluster.ReadState(h.cfg.StateFile); err == nil && own.Role == cluster.Master {
		// Connect first (the part that waits for the peer), then act.
		sctx, cancel := context.WithTimeout(ctx, PeerStateTimeout+FenceWatchGreeting)
		defer cancel()
		c, err := peer.Dial(sctx, h.cfg, dial)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		return serial(func() (bool, string) { return h.fenceWith(ctx, c) })
	}
	return serial(func() (bool, string) { return h.fenceWith(ctx, nil) })
}

// fenceWith is a round's action on a connected peer (c nil: this node is
// not master, no peer needed).
func (h *handler) fenceWith(ctx context.Context, c *peer.Client) (bool, string) {
	own, err := cluster.ReadState(h.cfg.StateFile)
	if err != nil {
		return true, "this node's state is unreadable: " + err.Error()
	}
	if own.Role != cluster.Master {
		// Not master here: the peer must not stay isolated.
		h.unfence(ctx, "this node is "+own.Role+" now")
		return true, "this node is " + own.Role + " now"
	}
	if c == nil {
		return false, "this node became master meanwhile"
	}
	// One round trip: demote-below asks and acts.
	var b strings.Builder
	fmt.Fprintf(&b, "Found by the fence watch that %s started after its promote (the old master had not confirmed its demotion).\n", h.self())
	code, skipped := h.fenceStale(ctx, c, &b, own)
	switch {
	case skipped != "":
		return true, skipped
	case code != ExitOK:
		return false, whyDemoteFailed
	}
	return true, peerName(h.cfg) + " demoted"
}

// PeerFencedFile, in run_dir, records that failover.fence_command
// isolated the peer (its first line says when and why); unfence_command is
// due once the peer is no longer a stale master.
const PeerFencedFile = "peer-fenced"

// markPeerFenced records a successful fence_command.
func (h *handler) markPeerFenced() {
	line := fmt.Sprintf("%s isolated by fence_command at %s\n", peerName(h.cfg), time.Now().UTC().Format(time.RFC3339))
	if err := cluster.WriteFileAtomic(filepath.Join(h.cfg.RunDir, PeerFencedFile), []byte(line), 0o644); err != nil {
		h.log.Logf("recording the fence: %v", err)
	}
}

// peerFenced returns the fence record ("" when the peer is not fenced).
func peerFenced(cfg *config.Config) string {
	b, err := os.ReadFile(filepath.Join(cfg.RunDir, PeerFencedFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// unfence runs unfence_command when fence_command isolated the peer and it
// is no longer a stale master (why says how we know). It returns a line
// for the admin ("" when there was nothing to undo).
func (h *handler) unfence(ctx context.Context, why string) string {
	rec := peerFenced(h.cfg)
	if rec == "" {
		return ""
	}
	path := filepath.Join(h.cfg.RunDir, PeerFencedFile)
	if len(h.cfg.Failover.UnfenceCommand) == 0 {
		os.Remove(path)
		return fmt.Sprintf("%s was fenced by fence_command; there is no unfence_command: bring it back by hand (%s).", peerName(h.cfg), rec)
	}
	uctx, cancel := context.WithTimeout(ctx, h.cfg.Failover.FenceTimeout.Duration)
	defer cancel()
	run := h.ops.UnfenceCommand
	if run == nil {
		run = func(ctx context.Context) (string, error) {
			return failover.RunFenceCommand(ctx, h.cfg, h.cfg.Failover.UnfenceCommand)
		}
	}
	t0 := time.Now()
	res, err := run(uctx)
	if err != nil {
		h.log.Logf("unfence FAILED after %s (%s): %v", time.Since(t0).Round(time.Millisecond), why, err)
		return fmt.Sprintf("unfence_command FAILED: %v. %s stays isolated: run it by hand.", err, peerName(h.cfg))
	}
	os.Remove(path)
	h.log.Logf("unfenced %s in %s (%s): %s", peerName(h.cfg), time.Since(t0).Round(time.Millisecond), why, res)
	return fmt.Sprintf("%s unfenced (%s): %s", peerName(h.cfg), why, res)
}
