package dbsync

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/db"
	"pbxha/lib/plugin"
)

// Flag names, used in usage messages too.
const (
	flagConnection     = "connection"
	flagPrimaryHost    = "primary-host"
	flagPrimaryPort    = "primary-port"
	flagWriteHeartbeat = "write-heartbeat"
	flagNode           = "node"
	flagBytesWarning   = "bytes-warning"
	flagBytesCritical  = "bytes-critical"
	flagNullLag        = "null-lag"
)

// maxWait bounds the wait for the primary's heartbeat to reach the replica.
const maxWait = 5 * time.Second

// pollEvery is how often the replica is read while waiting.
const pollEvery = 100 * time.Millisecond

type checkConfig struct {
	opts        db.Options
	connection  string
	primaryHost string
	primaryPort int
	write       bool
	node        string
	nullLag     string
	policy      Policy
}

// Spec is check_pbx_db_sync.
func Spec() plugin.Spec {
	c := &checkConfig{policy: DefaultPolicy(), nullLag: "unknown"}
	return plugin.Spec{
		Name:   "PBX_DB_SYNC",
		Binary: "check_pbx_db_sync",
		Description: "Checks that this node's database is a healthy replica. MariaDB/MySQL: SHOW REPLICA STATUS,\n" +
			"IO and SQL threads running (else CRITICAL with the last error), Seconds_Behind_Master.\n" +
			"PostgreSQL: in recovery, WAL receiver streaming, replay lag, and with --primary-host the bytes\n" +
			"still to replay. Both: the heartbeat lag, from the row check_pbx_db_query writes on the primary,\n" +
			"read here and compared with the primary's (--primary-host; without it by this server's clock).\n" +
			"Run check_pbx_db_query on the primary at an interval well below -w, or give --write-heartbeat:\n" +
			"a replica that holds the primary's newest heartbeat is never reported behind, so an idle\n" +
			"primary does not read as growing lag. -w/-c apply to both lags, in seconds.",
		Examples: []string{
			"check_pbx_db_sync --driver mysql --primary-host 198.51.100.1",
			"check_pbx_db_sync --driver pgsql --primary-host 198.51.100.1 --bytes-warning 16777216",
			"check_pbx_db_sync --driver mysql --connection pbx -w 10 -c 60     # one MariaDB multi-source connection",
			"check_pbx_db_sync --driver pgsql --primary-host 198.51.100.1 --write-heartbeat   # no db_query on the primary",
		},
		DefaultRole: plugin.RoleSlave,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	c.opts.AddFlags(fs)
	fs.VarP(&c.policy.Lag.Warn, "warning", "w", "range for the lag in seconds (heartbeat and server): WARNING outside it")
	fs.VarP(&c.policy.Lag.Crit, "critical", "c", "range for the lag in seconds (heartbeat and server): CRITICAL outside it")
	fs.StringVar(&c.primaryHost, flagPrimaryHost, "", "the primary, to compare heartbeats with (and, PostgreSQL, WAL positions); same login as the replica")
	fs.IntVar(&c.primaryPort, flagPrimaryPort, 0, "the primary's port (default: the replica's)")
	fs.BoolVar(&c.write, flagWriteHeartbeat, false, "write a heartbeat on the primary first (needs --primary-host): for setups that do not run check_pbx_db_query")
	fs.StringVar(&c.node, flagNode, "", "with --write-heartbeat, the primary's name in the heartbeat table (default: the peer in cluster.toml)")
	fs.StringVar(&c.connection, flagConnection, "", "MariaDB multi-source connection or MySQL channel to check (default: MariaDB every connection, MySQL every channel)")
	fs.Var(&c.policy.Bytes.Warn, flagBytesWarning, "PostgreSQL: range for the bytes still to replay (needs --primary-host): WARNING outside it")
	fs.Var(&c.policy.Bytes.Crit, flagBytesCritical, "PostgreSQL: range for the bytes still to replay (needs --primary-host): CRITICAL outside it")
	fs.StringVar(&c.nullLag, flagNullLag, c.nullLag, "state when the server cannot say its lag (Seconds_Behind_Master NULL; no replayed transaction yet)")
}

// connectionName is what a replication connection or channel may be
// called here: it goes into SQL, quoted, and there is no reason for more.
var connectionName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (c *checkConfig) validate(env *plugin.Env) error {
	if err := c.opts.Validate(); err != nil {
		return err
	}
	st, err := plugin.ParseState(c.nullLag)
	if err != nil {
		return plugin.Usagef("flag --%s: %v", flagNullLag, err)
	}
	c.policy.NullLag = st
	c.policy.Verbose = env.Verbose
	if env.Flags.Changed(flagConnection) && !connectionName.MatchString(c.connection) {
		return plugin.Usagef("flag --%s: %q is not a connection name (letters, digits, _ . -; at most 64)", flagConnection, c.connection)
	}
	if c.write && c.primaryHost == "" {
		return plugin.Usagef("flag --%s needs --%s", flagWriteHeartbeat, flagPrimaryHost)
	}
	if env.Flags.Changed(flagPrimaryPort) && (c.primaryPort < 1 || c.primaryPort > 65535) {
		return plugin.Usagef("flag --%s: %d is not a port from 1 to 65535", flagPrimaryPort, c.primaryPort)
	}
	if env.Flags.Changed(flagNode) && (c.node == "" || len(c.node) > 64) {
		return plugin.Usagef("flag --%s: %q is not a name of 1 to 64 characters", flagNode, c.node)
	}
	return nil
}

func failed(err error) plugin.Result {
	var u plugin.UsageError
	if errors.As(err, &u) {
		return plugin.UsageResult(err)
	}
	return plugin.Resultf(plugin.Unknown, "%s", plugin.Clean(err.Error(), 0))
}

func asDB(err error) *db.Error {
	var e *db.Error
	if errors.As(err, &e) {
		return e
	}
	return &db.Error{Step: "talking to the server", Msg: plugin.Clean(err.Error(), 0)}
}

func (c *checkConfig) check(ctx context.Context, env *plugin.Env) plugin.Result {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	cfg, err := config.Load(env.ConfigPath, env.ConfigSet)
	if err != nil {
		return failed(err)
	}
	t, err := c.opts.Resolve(cfg)
	if err != nil {
		return failed(err)
	}
	if t.Driver == db.PgSQL && c.connection != "" {
		return failed(plugin.Usagef("flag --%s is for MariaDB/MySQL; PostgreSQL has one WAL receiver", flagConnection))
	}
	if t.Driver == db.MySQL && (c.policy.Bytes.Warn.IsSet() || c.policy.Bytes.Crit.IsSet()) {
		return failed(plugin.Usagef("flags --%s/--%s are for PostgreSQL", flagBytesWarning, flagBytesCritical))
	}
	env.Debugf(1, "replica %s", t)

	env.Step("connecting to %s at %s as %s", t.Driver, t.Addr(), t.User)
	conn, err := db.Open(ctx, t)
	if err != nil {
		r := plugin.Result{State: plugin.Critical, Summary: asDB(err).Error()}
		r.Perf = []plugin.Perf{unknownLag(c.policy, "lag_seconds"), unknownLag(c.policy, "server_lag_seconds")}
		return r
	}
	defer conn.Close()

	var (
		status  plugin.Result
		replay  *LSN
		replica bool
	)
	if t.Driver == db.MySQL {
		status, replica = c.mysqlStatus(ctx, env, conn)
	} else {
		status, replay, replica = c.pgStatus(ctx, env, conn)
	}
	if !replica {
		// Not a replica (or it could not be told): the heartbeat on this
		// server would measure nothing.
		return status
	}
	subs := []plugin.Result{status}

	hb := HeartbeatObservation{Table: c.opts.Table}
	var primary *db.Conn
	if c.primaryHost != "" {
		pt := t.WithAddr(c.primaryHost, c.primaryPort)
		hb.PrimaryAddr = pt.Addr()
		env.Step("connecting to the primary %s", pt.Addr())
		if primary, err = db.Open(ctx, pt); err != nil {
			hb.PrimaryErr = asDB(err)
		} else {
			defer primary.Close()
		}
	}
	var primaryLSN *LSN
	if primary != nil && t.Driver == db.PgSQL && replay != nil {
		// Before the heartbeat write, which would count as bytes behind.
		env.Step("reading the primary's WAL position")
		if v, _, err := primary.Value(ctx, "reading the primary's WAL position", "SELECT pg_current_wal_lsn()"); err != nil {
			subs = append(subs, plugin.Resultf(plugin.Unknown, "%s", asDB(err).Error()))
		} else if v != nil {
			if l, err := ParseLSN(*v); err == nil {
				primaryLSN = &l
			}
		}
	}
	c.heartbeat(ctx, env, conn, primary, cfg, &hb)
	subs = append(subs, EvaluateHeartbeat(hb, c.policy))

	if primaryLSN != nil {
		env.Step("reading the replica's replayed WAL position")
		if v, _, err := conn.Value(ctx, "reading the replayed WAL position", "SELECT pg_last_wal_replay_lsn()"); err == nil && v != nil {
			if l, err := ParseLSN(*v); err == nil {
				replay = &l
			}
		}
		subs = append(subs, EvaluateBytes(*primaryLSN, *replay, c.policy))
	}
	return plugin.Result{Subs: subs}
}

// statusQueries are the statements to try, in order; the next is tried
// only when the server does not know the syntax of the one before.
func statusQueries(mariadb bool, connection string) []string {
	if mariadb {
		if connection == "" {
			return []string{"SHOW ALL REPLICAS STATUS", "SHOW ALL SLAVES STATUS"}
		}
		return []string{"SHOW REPLICA '" + connection + "' STATUS", "SHOW SLAVE '" + connection + "' STATUS"}
	}
	suffix := ""
	if connection != "" {
		suffix = " FOR CHANNEL '" + connection + "'"
	}
	return []string{"SHOW REPLICA STATUS" + suffix, "SHOW SLAVE STATUS" + suffix}
}

// mysqlStatus judges the replica status; replica is false when the server
// is none (or the status could not be read).
func (c *checkConfig) mysqlStatus(ctx context.Context, env *plugin.Env, conn *db.Conn) (r plugin.Result, replica bool) {
	env.Step("reading the server version")
	ver, err := conn.Version(ctx)
	if err != nil {
		return plugin.Resultf(plugin.Critical, "%s", asDB(err).Error()), false
	}
	env.Debugf(1, "server version %s", plugin.Clean(ver, 80))
	var tab db.Table
	for _, q := range statusQueries(db.IsMariaDB(ver), c.connection) {
		env.Step("reading the replica status (%s)", q)
		tab, err = conn.Query(ctx, "reading the replica status ("+q+")", q)
		if err == nil || asDB(err).Number != 1064 {
			break
		}
	}
	if err != nil {
		r := plugin.Resultf(plugin.Critical, "%s", asDB(err).Error())
		r.Perf = []plugin.Perf{unknownLag(c.policy, "server_lag_seconds")}
		return r, false
	}
	reps := ParseMySQLStatus(tab)
	if c.connection != "" && len(reps) == 0 {
		// MariaDB answers an unknown connection name with error 1617;
		// MySQL with an empty result or error 3074.
		return plugin.Result{State: plugin.Critical, Summary: fmt.Sprintf("not replicating: no replication connection %q", c.connection),
			Perf: []plugin.Perf{unknownLag(c.policy, "server_lag_seconds")}}, false
	}
	return EvaluateMySQL(reps, c.policy), len(reps) > 0
}

// pgStatus is mysqlStatus for PostgreSQL, plus the replayed WAL position.
func (c *checkConfig) pgStatus(ctx context.Context, env *plugin.Env, conn *db.Conn) (r plugin.Result, replay *LSN, replica bool) {
	env.Step("reading the standby's recovery status")
	tab, err := conn.Query(ctx, "reading the recovery status", PGStandbyQuery)
	if err != nil {
		r := plugin.Resultf(plugin.Critical, "%s", asDB(err).Error())
		r.Perf = []plugin.Perf{unknownLag(c.policy, "server_lag_seconds")}
		return r, nil, false
	}
	s, err := ParsePGStandby(tab.Row(0))
	if err != nil {
		r := plugin.Resultf(plugin.Unknown, "reading the recovery status: %s", plugin.Clean(err.Error(), 0))
		r.Perf = []plugin.Perf{unknownLag(c.policy, "server_lag_seconds")}
		return r, nil, false
	}
	if s.InRecovery && s.HasReplay {
		replay = &s.Replay
	}
	return EvaluatePG(s, c.policy), replay, s.InRecovery
}

// heartbeat reads the heartbeat rows into h: the primary's newest (after
// writing one with --write-heartbeat), then the replica's row of that
// node, polled until it holds the primary's token or the wait is over.
func (c *checkConfig) heartbeat(ctx context.Context, env *plugin.Env, replica, primary *db.Conn, cfg *config.Config, h *HeartbeatObservation) {
	table := c.opts.Table
	node := ""
	if primary != nil {
		if c.write {
			name := c.node
			if name == "" {
				name = peerName(cfg, c.primaryHost)
			}
			env.Step("writing a heartbeat on the primary %s", h.PrimaryAddr)
			if err := primary.WriteHeartbeat(ctx, table, name, db.NewToken()); err != nil {
				h.PrimaryErr = asDB(err)
			}
			h.Wrote = h.PrimaryErr == nil
		}
		if h.PrimaryErr == nil {
			env.Step("reading the heartbeat on the primary %s", h.PrimaryAddr)
			var err error
			if h.Primary, h.PrimaryFound, err = primary.ReadHeartbeat(ctx, table, ""); err != nil {
				h.PrimaryErr = asDB(err)
			} else if h.PrimaryFound {
				node = h.Primary.Node
			}
		}
	}
	start := time.Now()
	budget := waitBudget(ctx)
	env.Step("reading the heartbeat on the replica")
	for reads := 1; ; reads++ {
		var err error
		h.Replica, h.ReplicaFound, err = replica.ReadHeartbeat(ctx, table, node)
		h.Waited, h.FirstRead = time.Since(start), reads == 1
		if err != nil {
			h.ReplicaErr = asDB(err)
			return
		}
		if node == "" || h.seen() || time.Since(start)+pollEvery > budget {
			return
		}
		env.Step("waiting for %s's heartbeat to reach the replica", node)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
	}
}

// waitBudget is how long to wait for the heartbeat: at most maxWait and
// half of what is left before -t, so the result is still reported.
func waitBudget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return maxWait
	}
	return min(maxWait, time.Until(dl)/2)
}

// peerName is the primary's name for --write-heartbeat: the other node in
// cluster.toml, else the host given.
func peerName(cfg *config.Config, host string) string {
	if cfg != nil {
		if p := cfg.Peer(); p != nil {
			return p.Name
		}
	}
	return host
}
