package db

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Conn is one open connection to either engine.
type Conn struct {
	Target Target
	// ConnectTime is how long the connection and login took.
	ConnectTime time.Duration

	db  *sql.DB
	my  *sql.Conn
	pg  *pgx.Conn
	pw  string
	ver string
}

// Table is a result set as text: each value nil for NULL.
type Table struct {
	Cols []string
	Rows [][]*string
}

// Row returns row i by column name; nil when there is no such row.
func (t Table) Row(i int) Row {
	if i >= len(t.Rows) {
		return nil
	}
	return NewRow(t.Cols, t.Rows[i])
}

// Step names the connection in Error.Step: "connecting to mysql at
// 127.0.0.1:3306 as pbx".
func (t Target) connectStep() string {
	return fmt.Sprintf("connecting to %s at %s as %s", t.Driver, t.Addr(), t.User)
}

// quiet is where go-sql-driver/mysql's own log lines go: a plugin writes
// nothing to stderr (Icinga would show it), and every error the driver logs
// is also returned, and reported, by the call that met it.
var quiet = log.New(io.Discard, "", 0)

// Open connects and logs in, bounded by ctx.
func Open(ctx context.Context, t Target) (*Conn, error) {
	c := &Conn{Target: t, pw: t.password}
	start := time.Now()
	var err error
	switch t.Driver {
	case MySQL:
		err = c.openMySQL(ctx)
	case PgSQL:
		err = c.openPG(ctx)
	default:
		return nil, &Error{Step: t.connectStep(), Msg: fmt.Sprintf("unknown driver %q", t.Driver)}
	}
	if err != nil {
		c.Close()
		if e, ok := err.(*Error); ok {
			return nil, e
		}
		return nil, wrap(t.connectStep(), err, c.pw)
	}
	c.ConnectTime = time.Since(start)
	return c, nil
}

// ioTimeout is the drivers' own I/O timeout: a second beyond what is left
// of ctx. Belt and braces: the drivers also watch ctx, and ctx must be what
// ends a hung step, so that the check reports the step that hung instead
// of the driver's "invalid connection" a moment earlier.
func ioTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), 0) + time.Second
	}
	return 30 * time.Second
}

func (c *Conn) tlsConfig() (*tls.Config, error) {
	t := c.Target
	tc := &tls.Config{ServerName: t.Host, MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, &Error{Step: "reading the CA file", Msg: Scrub(err.Error(), "")}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Error{Step: "reading the CA file", Msg: t.CA + " holds no PEM certificate"}
		}
		tc.RootCAs = pool
	}
	if t.TLS != TLSVerify {
		tc.InsecureSkipVerify = true
	}
	return tc, nil
}

// MySQLConfig builds the driver config for t. Exported for tests; the
// password is in it, so it is never printed.
func MySQLConfig(ctx context.Context, t Target) (*mysql.Config, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = t.User, t.password, t.Database
	cfg.Net, cfg.Addr = "tcp", t.Addr()
	if t.Socket() {
		cfg.Net = "unix"
	}
	d := ioTimeout(ctx)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = d, d, d
	cfg.InterpolateParams = true
	cfg.Logger = quiet
	switch t.TLS {
	case TLSDisable, "":
	case TLSPreferred:
		if !t.Socket() {
			cfg.TLSConfig = "preferred"
		}
	default:
		c := &Conn{Target: t}
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

func (c *Conn) openMySQL(ctx context.Context) error {
	cfg, err := MySQLConfig(ctx, c.Target)
	if err != nil {
		return err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	c.db = sql.OpenDB(conn)
	c.db.SetMaxOpenConns(1)
	c.my, err = c.db.Conn(ctx)
	if err != nil {
		return err
	}
	// database/sql connects lazily on some paths; a ping makes sure the
	// login happened inside the connect step.
	return c.my.PingContext(ctx)
}

// pgQuote quotes a keyword/value connection string value.
func pgQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// PGConfig builds the pgx config for t (the password is set after
// parsing, so it is never in a string that could end up in a message).
func PGConfig(t Target) (*pgx.ConnConfig, error) {
	mode := map[string]string{
		TLSDisable: "disable", "": "disable", TLSPreferred: "prefer",
		TLSRequired: "require", TLSVerify: "verify-full",
	}[t.TLS]
	if t.Socket() {
		mode = "disable"
	}
	parts := []string{
		"host=" + pgQuote(t.Host), "port=" + strconv.Itoa(t.Port),
		"user=" + pgQuote(t.User), "dbname=" + pgQuote(t.Database),
		"sslmode=" + mode, "application_name=pbxha",
	}
	if t.CA != "" && mode != "disable" {
		parts = append(parts, "sslrootcert="+pgQuote(t.CA))
	}
	cfg, err := pgx.ParseConfig(strings.Join(parts, " "))
	if err != nil {
		return nil, err
	}
	if t.password != "" {
		cfg.Password = t.password
	}
	if mode == "require" && cfg.TLSConfig != nil && t.CA != "" {
		// libpq's require with a root certificate checks the chain; keep
		// that, as pgx does, but never the name (that is verify).
		cfg.TLSConfig.InsecureSkipVerify = true
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return cfg, nil
}

func (c *Conn) openPG(ctx context.Context) error {
	cfg, err := PGConfig(c.Target)
	if err != nil {
		return err
	}
	c.pg, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	c.ver = c.pg.PgConn().ParameterStatus("server_version")
	return nil
}

// Close ends the connection; harmless on a nil or half-open Conn.
func (c *Conn) Close() {
	if c == nil {
		return
	}
	if c.my != nil {
		c.my.Close()
	}
	if c.db != nil {
		c.db.Close()
	}
	if c.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c.pg.Close(ctx)
		cancel()
	}
}

// Query runs q and returns every row as text. step names what it was for
// in an error.
func (c *Conn) Query(ctx context.Context, step, q string, args ...any) (Table, error) {
	var t Table
	var err error
	if c.pg != nil {
		t, err = c.queryPG(ctx, q, args...)
	} else {
		t, err = c.queryMySQL(ctx, q, args...)
	}
	if err != nil {
		return t, wrap(step, err, c.pw)
	}
	return t, nil
}

func (c *Conn) queryMySQL(ctx context.Context, q string, args ...any) (Table, error) {
	var t Table
	rows, err := c.my.QueryContext(ctx, q, args...)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	if t.Cols, err = rows.Columns(); err != nil {
		return t, err
	}
	// NullString, not RawBytes: RawBytes turns an empty string into nil,
	// which would read as NULL.
	raw := make([]sql.NullString, len(t.Cols))
	dest := make([]any, len(t.Cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return t, err
		}
		vals := make([]*string, len(raw))
		for i, v := range raw {
			if v.Valid {
				s := v.String
				vals[i] = &s
			}
		}
		t.Rows = append(t.Rows, vals)
	}
	return t, rows.Err()
}

func (c *Conn) queryPG(ctx context.Context, q string, args ...any) (Table, error) {
	var t Table
	rows, err := c.pg.Query(ctx, q, args...)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	for _, f := range rows.FieldDescriptions() {
		t.Cols = append(t.Cols, f.Name)
	}
	for rows.Next() {
		// The simple protocol returns every value in text format.
		raw := rows.RawValues()
		vals := make([]*string, len(raw))
		for i, b := range raw {
			if b != nil {
				s := string(b)
				vals[i] = &s
			}
		}
		t.Rows = append(t.Rows, vals)
	}
	return t, rows.Err()
}

// Exec runs a statement that returns no rows.
func (c *Conn) Exec(ctx context.Context, step, q string, args ...any) error {
	var err error
	if c.pg != nil {
		_, err = c.pg.Exec(ctx, q, args...)
	} else {
		_, err = c.my.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return wrap(step, err, c.pw)
	}
	return nil
}

// Value runs q and returns the first column of the first row; ok is false
// when there is no row.
func (c *Conn) Value(ctx context.Context, step, q string, args ...any) (v *string, ok bool, err error) {
	t, err := c.Query(ctx, step, q, args...)
	if err != nil || len(t.Rows) == 0 || len(t.Cols) == 0 {
		return nil, false, err
	}
	return t.Rows[0][0], true, nil
}

// Version is the server's version string ("10.11.19-MariaDB-0+deb12u1",
// "15.8 (Debian 15.8-0+deb12u1)").
func (c *Conn) Version(ctx context.Context) (string, error) {
	if c.ver != "" || c.pg != nil {
		return c.ver, nil
	}
	v, _, err := c.Value(ctx, "reading the server version", "SELECT VERSION()")
	if err != nil {
		return "", err
	}
	if v != nil {
		c.ver = *v
	}
	return c.ver, nil
}

// IsMariaDB reports whether a MySQL-family version string is MariaDB's.
func IsMariaDB(version string) bool { return strings.Contains(strings.ToLower(version), "mariadb") }
