package dbfailover

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/db"
)

// Options says what Promote may assume.
type Options struct {
	// MasterReachable: the old master still answers (a planned switchover,
	// or a failover caused by something else than its death). Promote then
	// refuses a replica lagging more than max_promote_lag.
	MasterReachable bool
	// Force promotes whatever the lag (the admin's --force).
	Force bool
}

// Per-step deadlines. Each bounds one step; the caller's ctx bounds all.
var (
	ConnectTimeout = 5 * time.Second
	SQLTimeout     = 10 * time.Second
	// CatchUpTimeout bounds waiting for the replica to apply what it has
	// already received before it is promoted.
	CatchUpTimeout = 10 * time.Second
	PromoteTimeout = 60 * time.Second
	CommandTimeout = 90 * time.Second
	RewindTimeout  = 10 * time.Minute
	// ReplicaWait bounds waiting, in Rejoin, for the replica to run and
	// catch up.
	ReplicaWait = 60 * time.Second
	// RejoinMaxLag is the lag Rejoin accepts as "caught up".
	RejoinMaxLag = 5 * time.Second
)

// ErrLagging is returned (wrapped) when Promote refuses a lagging replica.
var ErrLagging = errors.New("replica lags too far behind a reachable master")

// ErrErrant is returned (wrapped) when Rejoin finds transactions on this
// node that the new master never got.
var ErrErrant = errors.New("errant transactions")

// engine runs f for each configured engine and joins the summaries.
func each(cfg *config.Config, my, pg func(*config.Database) (string, error)) (string, error) {
	var parts []string
	var errs []error
	if cfg.MySQL != nil {
		s, err := my(cfg.MySQL)
		parts = append(parts, "mysql: "+s)
		if err != nil {
			errs = append(errs, fmt.Errorf("mysql: %w", err))
		}
	}
	if cfg.PgSQL != nil {
		s, err := pg(cfg.PgSQL)
		parts = append(parts, "pgsql: "+s)
		if err != nil {
			errs = append(errs, fmt.Errorf("pgsql: %w", err))
		}
	}
	if len(parts) == 0 {
		return "no database configured", nil
	}
	return strings.Join(parts, "; "), errors.Join(errs...)
}

// Promote makes this node's databases primaries.
func Promote(ctx context.Context, cfg *config.Config, o Options) (string, error) {
	maxLag := cfg.Failover.MaxPromoteLag.Duration
	if maxLag <= 0 {
		maxLag = 30 * time.Second
	}
	return each(cfg,
		func(d *config.Database) (string, error) { return promoteMySQL(ctx, d, o, maxLag) },
		func(d *config.Database) (string, error) { return promotePG(ctx, d, o, maxLag) })
}

// Demote stops this node's databases taking writes: MariaDB/MySQL become
// read only at once (fast: it runs before the VIP is released);
// PostgreSQL is stopped, since a primary cannot turn standby in place.
func Demote(ctx context.Context, cfg *config.Config) (string, error) {
	return each(cfg,
		func(d *config.Database) (string, error) { return demoteMySQL(ctx, d) },
		func(d *config.Database) (string, error) { return demotePG(ctx, d) })
}

// Rejoin makes this node's databases replicas of newMaster.
func Rejoin(ctx context.Context, cfg *config.Config, newMaster config.Node) (string, error) {
	if newMaster.ClusterIP == "" {
		return "", errors.New("new master has no cluster_ip")
	}
	return each(cfg,
		func(d *config.Database) (string, error) { return rejoinMySQL(ctx, cfg, d, newMaster) },
		func(d *config.Database) (string, error) { return rejoinPG(ctx, cfg, d, newMaster) })
}

// target is the connection to the local server (or host, when given).
func target(drv db.Driver, d *config.Database, host string) (db.Target, error) {
	t := db.Target{Driver: drv, Host: d.Host, Port: d.Port, Database: d.Database, User: d.User, TLS: d.TLS, CA: d.CA}
	if host != "" {
		t.Host = host
	}
	if t.Host == "" {
		t.Host = db.DefaultHost
	}
	if t.Port == 0 {
		t.Port = db.DefaultPort(drv)
	}
	if t.TLS == "" {
		t.TLS = db.TLSPreferred
	}
	if d.Password.IsSet() {
		pw, err := d.Password.Value()
		if err != nil {
			return t, err
		}
		t = t.WithPassword(pw)
	}
	return t, nil
}

func open(ctx context.Context, drv db.Driver, d *config.Database, host string) (*db.Conn, error) {
	t, err := target(drv, d, host)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	return db.Open(cctx, t)
}

// step bounds one SQL step.
func step(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// runCommand runs argv without a shell, bounded; output goes into the
// error when it fails. env is added to the process's environment.
func runCommand(ctx context.Context, timeout time.Duration, argv []string, env []string) error {
	if len(argv) == 0 {
		return errors.New("no command configured")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	if env != nil {
		cmd.Env = append(cmd.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := clean(string(out))
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no end within %s: %v %s", argv[0], timeout, err, msg)
		}
		return fmt.Errorf("%s: %v %s", argv[0], err, msg)
	}
	return nil
}

// clean bounds and flattens text for a one-line summary.
func clean(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	return s
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Lagging reports, without changing anything, whether Promote would refuse
// this node's replicas if the old master were reachable: a replica more
// than max_promote_lag behind, or one whose lag cannot be told. The event
// handler asks before it fences the old master, while replication still
// runs; only when this says lagging does it ask whether the old master is
// reachable, and then it refuses before anything is changed.
func Lagging(ctx context.Context, cfg *config.Config) (bool, string, error) {
	return LaggingAt(ctx, cfg, "")
}

// LaggingAt is Lagging for the servers at host (the peer's cluster
// address; "" is this node's own): the master asks it of its slave before a
// hand-over, while its own databases still feed the replicas.
func LaggingAt(ctx context.Context, cfg *config.Config, host string) (bool, string, error) {
	maxLag := cfg.Failover.MaxPromoteLag.Duration
	if maxLag <= 0 {
		maxLag = 30 * time.Second
	}
	lagging := false
	s, err := each(cfg,
		func(d *config.Database) (string, error) {
			l, s, err := lagMySQL(ctx, d, host, maxLag)
			lagging = lagging || l
			return s, err
		},
		func(d *config.Database) (string, error) {
			l, s, err := lagPG(ctx, d, host, maxLag)
			lagging = lagging || l
			return s, err
		})
	return lagging, s, err
}

func lagMySQL(ctx context.Context, d *config.Database, host string, maxLag time.Duration) (bool, string, error) {
	s, err := openMySQL(ctx, d, host)
	if err != nil {
		return false, "server not reachable", err
	}
	defer s.c.Close()
	_, rep, err := s.replicaStatus(ctx)
	if err != nil {
		return false, "replica status unreadable", err
	}
	if rep == nil {
		return false, "no replica (nothing to lose)", nil
	}
	lagKnown := !rep.LagNull && rep.LagColumn != ""
	txt := fmt.Sprintf("replica of %s (IO %s, SQL %s, %s)", rep.Source, rep.IO, rep.SQL, lagText(rep))
	return !lagKnown || time.Duration(rep.Lag*float64(time.Second)) > maxLag, txt, nil
}

func lagPG(ctx context.Context, d *config.Database, host string, maxLag time.Duration) (bool, string, error) {
	c, err := open(ctx, db.PgSQL, d, host)
	if err != nil {
		return false, "server not reachable", err
	}
	defer c.Close()
	r, err := pgValues(ctx, c, "reading standby status", pgStandbyQuery)
	if err != nil {
		return false, "standby status unreadable", err
	}
	if !pgTrue(r.String("recovery")) {
		return false, "already primary", nil
	}
	l := ParsePGLag(r)
	return !l.Known || l.Lag > maxLag, "standby " + l.String(), nil
}
