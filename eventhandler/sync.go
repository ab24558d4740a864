package eventhandler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/failover"
	"pbxha/lib/filesync"
)

// SyncTimeout is the default deadline of a whole sync run: below the hour
// pbxha-sync.service allows (TimeoutStartSec), so the run ends itself, with
// its log line, before systemd kills it. A first push of years of
// recordings may need more: --timeout.
const SyncTimeout = 55 * time.Minute

// syncWatch is how often the state file is read during a push: a node that
// stops being master (a switchover demotes it) kills its push before the
// peer, promoted, takes writes that the --delete would undo.
const syncWatch = 250 * time.Millisecond

// Replaced by tests: the peer's state (over SSH in production) and the
// push's options (a loopback daemon).
var (
	syncPeerState = func(ctx context.Context, h *handler) (cluster.State, error) {
		c, r, err := h.peerState(ctx)
		if err != nil {
			return cluster.State{}, err
		}
		c.Close()
		return *r.State, nil
	}
	syncOptions = func(o *filesync.Options) {}
)

// errRoleChanged ends a push whose node stopped being master.
var errRoleChanged = errors.New("this node stopped being master during the push")

// syncCmd is `sync`: push the sync dirs to the peer when this node is
// master; on any other role a no-op that says so. One line on stdout;
// exit 0 done or nothing to do, 1 failed.
func syncCmd(args []string, stdout, stderr io.Writer) int {
	var dry bool
	var timeout time.Duration
	cfg, fs, code := setup("sync", args, stderr, func(fs *pflag.FlagSet) {
		fs.BoolVar(&dry, "dry-run", false, "ask rsync what it would transfer and delete, change nothing")
		fs.DurationVar(&timeout, "timeout", SyncTimeout, "deadline of the whole run; rsync is killed then")
	})
	if code != ExitOK {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pbxha-eventhandler sync: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	if timeout <= 0 {
		fmt.Fprintf(stderr, "pbxha-eventhandler sync: --timeout %s is not positive\n", timeout)
		return ExitUsage
	}
	log := newLogger(cfg.RunDir, nil)
	defer log.Close()
	h := &handler{cfg: cfg, log: log, out: stdout}
	ctx, cancel := context.WithTimeoutCause(context.Background(), timeout, fmt.Errorf("the sync's deadline (--timeout %s) passed", timeout))
	defer cancel()
	return h.sync(ctx, dry)
}

func (h *handler) sync(ctx context.Context, dry bool) int {
	self, pname := h.self(), peerName(h.cfg)
	fail := func(format string, args ...any) int {
		msg := oneLine(fmt.Sprintf(format, args...))
		h.log.Logf("sync FAILED: %s", msg)
		fmt.Fprintln(h.out, "sync failed:", msg)
		return ExitFailed
	}
	st, err := cluster.ReadState(h.cfg.StateFile)
	if err != nil {
		return fail("cannot tell this node's role: %v", err)
	}
	if st.Role != cluster.Master {
		// Every minute on the slave: not logged.
		fmt.Fprintf(h.out, "this node is %s: the master pushes\n", st.Role)
		return ExitOK
	}
	unlock, err := failover.Lock(ctx, filepath.Join(h.cfg.RunDir, "sync.lock"), 0)
	if errors.Is(err, failover.ErrLocked) {
		fmt.Fprintln(h.out, "another sync is running")
		return ExitOK
	}
	if err != nil {
		return fail("%v", err)
	}
	defer unlock()

	// The peer must be this master's slave: a standby has not rejoined
	// yet (its files may hold what this node never got), and another
	// master means this node's mastership may be stale — a push with
	// --delete would undo the writes there.
	pctx, pcancel := context.WithTimeout(ctx, PeerStateTimeout)
	ps, err := syncPeerState(pctx, h)
	pcancel()
	switch {
	case err != nil:
		return fail("cannot ask %s for its role over SSH (%v): nothing pushed", pname, err)
	case ps.Role == cluster.Standby:
		msg := fmt.Sprintf("nothing pushed: %s is standby (epoch %d), not this master's slave; the push resumes after `pbxha-eventhandler rejoin` there", pname, ps.Epoch)
		h.log.Logf("sync: %s", msg)
		fmt.Fprintln(h.out, msg)
		return ExitOK
	case ps.Role != cluster.Slave:
		return fail("%s is %s at epoch %d (this node: master at epoch %d): two masters? nothing pushed", pname, ps.Role, ps.Epoch, st.Epoch)
	case ps.Epoch > st.Epoch:
		return fail("%s is at epoch %d, above this node's %d: this node's mastership is stale; nothing pushed", pname, ps.Epoch, st.Epoch)
	}

	pushCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go h.watchRole(pushCtx, stop)
	o := filesync.Options{DryRun: dry}
	syncOptions(&o)
	t0 := time.Now()
	sum, err := filesync.Push(pushCtx, h.cfg, o)
	what := "pushed"
	if dry {
		what = "dry run, nothing changed"
	}
	if err != nil {
		if len(sum.Dirs) > 0 {
			h.log.Logf("sync: %s to %s: %s", what, pname, sum)
		}
		return fail("push from %s to %s after %s: %v", self, pname, time.Since(t0).Round(time.Millisecond), err)
	}
	line := fmt.Sprintf("%s to %s: %s", what, pname, sum)
	h.log.Logf("sync: %s", line)
	fmt.Fprintln(h.out, line)
	return ExitOK
}

// watchRole cancels the push when the state file stops saying master.
func (h *handler) watchRole(ctx context.Context, stop context.CancelCauseFunc) {
	t := time.NewTicker(syncWatch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := cluster.ReadState(h.cfg.StateFile)
		if err == nil && st.Role != cluster.Master {
			stop(fmt.Errorf("%w (now %s)", errRoleChanged, st.Role))
			return
		}
	}
}

// oneLine keeps a reason on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
