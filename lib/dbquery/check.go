package dbquery

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/db"
	"pbxha/lib/plugin"
	"pbxha/lib/threshold"
)

// Flag names, used in usage messages too.
const (
	flagCreate = "create"
	flagNode   = "node"
	flagQuery  = "query"
)

type checkConfig struct {
	opts   db.Options
	create bool
	node   string
	query  string
	pair   threshold.Pair
}

// Spec is check_pbx_db_query.
func Spec() plugin.Spec {
	c := &checkConfig{}
	return plugin.Spec{
		Name:   "PBX_DB_QUERY",
		Binary: "check_pbx_db_query",
		Description: "Proves that the primary database takes writes: in one short transaction it upserts this\n" +
			"node's row of the heartbeat table (node, token, ts) with a fresh token and the primary's own\n" +
			"clock, reads it back and compares. A read-only primary (MariaDB/MySQL read_only, PostgreSQL in\n" +
			"recovery) is CRITICAL. With --query, -w/-c apply to the first column of the first row.\n" +
			"check_pbx_db_sync on the replica reads the same row: run both, so that an idle primary never\n" +
			"reads as a growing replication lag. Connection settings default to cluster.toml's [mysql] or\n" +
			"[pgsql]; the password comes from --password-file, $" + db.PasswordEnv + " or cluster.toml.",
		Examples: []string{
			"check_pbx_db_query --driver mysql --create          # first run: creates " + db.DefaultTable,
			"check_pbx_db_query --driver pgsql",
			"check_pbx_db_query --driver mysql --query 'SELECT COUNT(*) FROM cdr' -w 100000 -c 500000",
		},
		DefaultRole: plugin.RoleMaster,
		Flags:       c.flags,
		Validate:    c.validate,
		Gate:        cluster.Gate,
		Check:       c.check,
	}
}

func (c *checkConfig) flags(fs *pflag.FlagSet) {
	c.opts.AddFlags(fs)
	fs.BoolVar(&c.create, flagCreate, false, "create the heartbeat table when it does not exist")
	fs.StringVar(&c.node, flagNode, "", "this node's name in the heartbeat table (default: cluster.toml's node, else the hostname)")
	fs.StringVar(&c.query, flagQuery, "", "also run this SQL; -w/-c apply to the first column of its first row")
	fs.VarP(&c.pair.Warn, "warning", "w", "range for --query's value: WARNING outside it")
	fs.VarP(&c.pair.Crit, "critical", "c", "range for --query's value: CRITICAL outside it")
}

func (c *checkConfig) validate(env *plugin.Env) error {
	if err := c.opts.Validate(); err != nil {
		return err
	}
	if c.query == "" && (c.pair.Warn.IsSet() || c.pair.Crit.IsSet()) {
		return plugin.Usagef("flags -w/-c apply to --%s's value: give --%s", flagQuery, flagQuery)
	}
	if env.Flags.Changed(flagNode) && (c.node == "" || len(c.node) > 64) {
		return plugin.Usagef("flag --%s: %q is not a name of 1 to 64 characters", flagNode, c.node)
	}
	return nil
}

// loadConfig reads cluster.toml when there is one.
func loadConfig(env *plugin.Env) (*config.Config, error) {
	path := env.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	env.Step("reading %s", path)
	return config.Load(env.ConfigPath, env.ConfigSet)
}

// nodeName is the heartbeat row's key.
func nodeName(flag string, cfg *config.Config) string {
	if flag != "" {
		return flag
	}
	if cfg != nil {
		if cfg.Node != "" {
			return cfg.Node
		}
		if s := cfg.Self(); s != nil {
			return s.Name
		}
	}
	h, _ := os.Hostname()
	return h
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
	cfg, err := loadConfig(env)
	if err != nil {
		return failed(err)
	}
	t, err := c.opts.Resolve(cfg)
	if err != nil {
		return failed(err)
	}
	o := Observation{Target: t, Table: c.opts.Table, Node: nodeName(c.node, cfg)}
	env.Debugf(1, "target %s, heartbeat row %q in %s", t, o.Node, o.Table)

	env.Step("connecting to %s at %s as %s", t.Driver, t.Addr(), t.User)
	conn, err := db.Open(ctx, t)
	if err != nil {
		o.ConnectErr = asDB(err)
		return Evaluate(o, Policy{Query: c.pair, Verbose: env.Verbose})
	}
	defer conn.Close()
	o.ConnectTime = conn.ConnectTime

	env.Step("checking whether %s is read-only", t.Addr())
	if o.ReadOnly, err = conn.ReadOnly(ctx); err != nil {
		o.ReadOnlyErr = asDB(err)
	}
	if o.ReadOnly == "" && o.ReadOnlyErr == nil {
		if c.create {
			env.Step("creating the heartbeat table %s", o.Table)
			if err := conn.CreateHeartbeat(ctx, o.Table); err != nil {
				o.CreateErr = asDB(err)
			}
		}
		if o.CreateErr == nil {
			env.Step("writing and reading back the heartbeat in %s", o.Table)
			o.Token = db.NewToken()
			start := time.Now()
			o.Back, o.BackFound, err = writeAndReadBack(ctx, conn, o.Table, o.Node, o.Token)
			o.QueryTime = time.Since(start)
			if err != nil {
				o.WriteErr = asDB(err)
			}
		}
	}
	if c.query != "" {
		env.Step("running --%s", flagQuery)
		q := &QueryObservation{}
		v, ok, err := conn.Value(ctx, "running --query", c.query)
		switch {
		case err != nil:
			q.Err = asDB(err)
		case !ok:
			q.NoRows = true
		default:
			q.Value = v
		}
		o.Query = q
	}
	return Evaluate(o, Policy{Query: c.pair, Verbose: env.Verbose})
}

// writeAndReadBack is the heartbeat transaction: upsert, read back,
// commit. Any failure rolls back.
func writeAndReadBack(ctx context.Context, conn *db.Conn, table, node, token string) (db.Heartbeat, bool, error) {
	begin := "START TRANSACTION"
	if conn.Target.Driver == db.PgSQL {
		begin = "BEGIN"
	}
	if err := conn.Exec(ctx, "starting a transaction", begin); err != nil {
		return db.Heartbeat{}, false, err
	}
	hb, found, err := func() (db.Heartbeat, bool, error) {
		if err := conn.WriteHeartbeat(ctx, table, node, token); err != nil {
			return db.Heartbeat{}, false, err
		}
		return conn.ReadHeartbeat(ctx, table, node)
	}()
	if err != nil {
		// A short deadline of its own: the check's may be what ran out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
		conn.Exec(rctx, "rolling back", "ROLLBACK")
		cancel()
		return hb, found, err
	}
	if err := conn.Exec(ctx, "committing the heartbeat", "COMMIT"); err != nil {
		return hb, found, err
	}
	return hb, found, nil
}
