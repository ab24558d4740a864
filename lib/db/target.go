package db

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// Driver is the database engine family.
type Driver string

// The two engines. MySQL covers MariaDB too.
const (
	MySQL Driver = "mysql"
	PgSQL Driver = "pgsql"
)

// Flag names, used in usage messages too.
const (
	FlagDriver       = "driver"
	FlagHost         = "host"
	FlagPort         = "port"
	FlagDatabase     = "database"
	FlagUser         = "user"
	FlagPasswordFile = "password-file"
	FlagTLS          = "tls"
	FlagCA           = "ca"
	FlagTable        = "table"
)

// PasswordEnv is the environment variable a password may come from.
const PasswordEnv = "PBXHA_DB_PASSWORD"

// DefaultHost is used when neither a flag nor cluster.toml names a host.
const DefaultHost = "127.0.0.1"

// TLS modes, as cluster.toml spells them.
const (
	TLSDisable   = "disable"
	TLSPreferred = "preferred"
	TLSRequired  = "required"
	TLSVerify    = "verify"
)

// DefaultPort is each engine's port.
func DefaultPort(d Driver) int {
	if d == PgSQL {
		return 5432
	}
	return 3306
}

// ParseDriver reads --driver; mariadb, postgres and postgresql are
// accepted as the names people type.
func ParseDriver(s string) (Driver, error) {
	switch strings.ToLower(s) {
	case "mysql", "mariadb":
		return MySQL, nil
	case "pgsql", "postgres", "postgresql":
		return PgSQL, nil
	}
	return "", fmt.Errorf("%q is not a driver (mysql, pgsql)", s)
}

// Engine is the driver's name in output.
func (d Driver) Engine() string {
	if d == PgSQL {
		return "PostgreSQL"
	}
	return "MariaDB/MySQL"
}

// section is the cluster.toml section of the driver.
func (d Driver) section() string { return string(d) }

// identifier is what a table name may be: unquoted, the same in both
// engines (PostgreSQL folds unquoted names to lower case).
var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidTable reports whether name can be used as the heartbeat table.
func ValidTable(name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("%q is not a plain lower-case table name ([a-z_][a-z0-9_]*, at most 63 characters)", name)
	}
	return nil
}

// Options are the connection flags every database check has. Values left
// unset come from cluster.toml when Resolve runs (after the role gate, so a
// node of the other role needs no database settings at all).
type Options struct {
	Driver       string
	Host         string
	Port         int
	Database     string
	User         string
	PasswordFile string
	TLS          string
	CA           string
	Table        string

	fs *pflag.FlagSet
}

// AddFlags defines the connection flags. The short names are
// check_mysql's and check_pgsql's, except that there is no -p: a password on
// the command line is visible to every user of the machine.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.fs = fs
	fs.StringVar(&o.Driver, FlagDriver, "", "mysql (MariaDB, MySQL) or pgsql (PostgreSQL); default: the one engine configured in cluster.toml")
	fs.StringVarP(&o.Host, FlagHost, "H", "", "server host or IP, or a unix socket (MySQL: the socket file; PostgreSQL: its directory)\n(default: cluster.toml's [mysql]/[pgsql] host, else "+DefaultHost+")")
	fs.IntVarP(&o.Port, FlagPort, "P", 0, "server port (default: cluster.toml's, else 3306 or 5432)")
	fs.StringVarP(&o.Database, FlagDatabase, "d", "", "database holding the heartbeat table (default: cluster.toml's)")
	fs.StringVarP(&o.User, FlagUser, "u", "", "user to log in as (default: cluster.toml's)")
	fs.StringVar(&o.PasswordFile, FlagPasswordFile, "", "read the password from this file's first line (else $"+PasswordEnv+", else cluster.toml's password; never on the command line)")
	fs.StringVar(&o.TLS, FlagTLS, "", "TLS: disable, preferred, required (encrypted, not verified) or verify (certificate and host name)\n(default: cluster.toml's, else preferred)")
	fs.StringVar(&o.CA, FlagCA, "", "CA certificate file (PEM) to verify the server with (default: cluster.toml's, else the system's)")
	fs.StringVar(&o.Table, FlagTable, DefaultTable, "heartbeat table")
}

func (o *Options) changed(name string) bool { return o.fs != nil && o.fs.Changed(name) }

// Validate checks the flags' syntax; it needs no config file.
func (o *Options) Validate() error {
	if o.Driver != "" {
		d, err := ParseDriver(o.Driver)
		if err != nil {
			return plugin.Usagef("flag --%s: %v", FlagDriver, err)
		}
		o.Driver = string(d)
	}
	if o.changed(FlagPort) && (o.Port < 1 || o.Port > 65535) {
		return plugin.Usagef("flag -P/--%s: %d is not a port from 1 to 65535", FlagPort, o.Port)
	}
	if o.changed(FlagHost) && o.Host == "" {
		return plugin.Usagef("flag -H/--%s: empty", FlagHost)
	}
	if err := validTLS(o.TLS); err != nil {
		return plugin.Usagef("flag --%s: %v", FlagTLS, err)
	}
	if err := ValidTable(o.Table); err != nil {
		return plugin.Usagef("flag --%s: %v", FlagTable, err)
	}
	if o.changed(FlagPasswordFile) && o.PasswordFile == "" {
		return plugin.Usagef("flag --%s: empty", FlagPasswordFile)
	}
	return nil
}

func validTLS(s string) error {
	switch s {
	case "", TLSDisable, TLSPreferred, TLSRequired, TLSVerify:
		return nil
	}
	return fmt.Errorf("%q is not one of disable, preferred, required, verify", s)
}

// Target is one server to connect to. The password is unexported and
// String never shows it.
type Target struct {
	Driver   Driver
	Host     string // an IP or name, or a unix socket path
	Port     int
	Database string
	User     string
	TLS      string
	CA       string

	password string
}

// Socket reports whether Host is a unix socket path.
func (t Target) Socket() bool { return strings.HasPrefix(t.Host, "/") }

// Addr is host:port, or the socket path.
func (t Target) Addr() string {
	if t.Socket() {
		return t.Host
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}

// String names the target in messages: "mysql pbx@127.0.0.1:3306/pbx".
func (t Target) String() string {
	return fmt.Sprintf("%s %s@%s/%s", t.Driver, t.User, t.Addr(), t.Database)
}

// GoString keeps %#v from printing the password too.
func (t Target) GoString() string { return "db.Target(" + t.String() + ")" }

// WithPassword returns t with a password; for tests and callers that
// resolve it themselves.
func (t Target) WithPassword(pw string) Target {
	t.password = pw
	return t
}

// HasPassword reports whether a password is set.
func (t Target) HasPassword() bool { return t.password != "" }

// Password is the secret, for the drivers and for scrubbing messages.
func (t Target) Password() string { return t.password }

// WithAddr is the same login at another server (the primary of a
// replica).
func (t Target) WithAddr(host string, port int) Target {
	t.Host = host
	if port != 0 {
		t.Port = port
	}
	return t
}

// Resolve fills what the flags left out from cluster.toml and finds the
// password. It returns a plugin.UsageError when something needed is given
// nowhere; cfg may be nil (no config file).
func (o *Options) Resolve(cfg *config.Config) (Target, error) {
	var t Target
	var sec *config.Database
	d := Driver(o.Driver)
	if d == "" {
		switch {
		case cfg != nil && cfg.MySQL != nil && cfg.PgSQL == nil:
			d = MySQL
		case cfg != nil && cfg.PgSQL != nil && cfg.MySQL == nil:
			d = PgSQL
		default:
			return t, plugin.Usagef("give --%s mysql or --%s pgsql (cluster.toml does not name exactly one engine)", FlagDriver, FlagDriver)
		}
	}
	if cfg != nil {
		if d == MySQL {
			sec = cfg.MySQL
		} else {
			sec = cfg.PgSQL
		}
	}
	if sec == nil {
		sec = &config.Database{}
	}
	t.Driver = d
	pick := func(flag, val, conf string) string {
		if o.changed(flag) || val != "" {
			return val
		}
		return conf
	}
	t.Host = pick(FlagHost, o.Host, sec.Host)
	if t.Host == "" {
		t.Host = DefaultHost
	}
	t.Port = o.Port
	if !o.changed(FlagPort) && t.Port == 0 {
		t.Port = sec.Port
	}
	if t.Port == 0 {
		t.Port = DefaultPort(d)
	}
	t.Database = pick(FlagDatabase, o.Database, sec.Database)
	t.User = pick(FlagUser, o.User, sec.User)
	t.TLS = pick(FlagTLS, o.TLS, sec.TLS)
	if t.TLS == "" {
		t.TLS = TLSPreferred
	}
	t.CA = pick(FlagCA, o.CA, sec.CA)
	where := "cluster.toml"
	if cfg != nil && cfg.Path() != "" {
		where = cfg.Path()
	}
	if t.User == "" {
		return t, plugin.Usagef("no user: give -u/--%s or set [%s] user in %s", FlagUser, d.section(), where)
	}
	if t.Database == "" {
		return t, plugin.Usagef("no database: give -d/--%s or set [%s] database in %s", FlagDatabase, d.section(), where)
	}
	if t.TLS == TLSVerify && t.Socket() {
		return t, plugin.Usagef("--%s verify needs a host name, not the socket %s", FlagTLS, t.Host)
	}
	pw, err := o.password(sec)
	if err != nil {
		return t, err
	}
	t.password = pw
	return t, nil
}

// password: --password-file, then $PBXHA_DB_PASSWORD, then cluster.toml.
// No source at all is allowed (a passwordless login); the server says no
// if it minds.
func (o *Options) password(sec *config.Database) (string, error) {
	if o.PasswordFile != "" {
		pw, err := config.ReadSecretFile(o.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("flag --%s: %v", FlagPasswordFile, err)
		}
		return pw, nil
	}
	// Empty counts as unset: `PBXHA_DB_PASSWORD= cmd` should not blank a
	// configured password.
	if pw := os.Getenv(PasswordEnv); pw != "" {
		return pw, nil
	}
	if sec.Password.IsSet() {
		return sec.Password.Value()
	}
	return "", nil
}
