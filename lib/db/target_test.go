package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"pbxha/lib/config"
	"pbxha/lib/plugin"
)

// secret is a password no message could contain by accident.
const secret = "PBXHA-SECRET-zebra-4711"

func options(t *testing.T, args ...string) *Options {
	t.Helper()
	o := &Options{}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(text), "cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolve(t *testing.T) {
	pwFile := writeFile(t, "pw", "from-file\nsecond line ignored\n")
	cfgPwFile := writeFile(t, "cfgpw", "from-config-file\n")
	both := loadConfig(t, `
[mysql]
host = "10.0.0.5"
port = 3307
database = "asterisk"
user = "monitor"
password = { file = "`+cfgPwFile+`" }
tls = "disable"
[pgsql]
database = "pbx"
user = "pgmon"
password = "inline-pg"
`)
	onlyPG := loadConfig(t, "[pgsql]\ndatabase = \"pbx\"\nuser = \"pgmon\"\n")
	cases := []struct {
		name string
		args []string
		cfg  *config.Config
		env  string // PBXHA_DB_PASSWORD; "-" unset
		want string // Target.String()
		pw   string
		tls  string
		err  string
	}{
		{"config fills everything", []string{"--driver", "mysql"}, both, "-", "mysql monitor@10.0.0.5:3307/asterisk", "from-config-file", "disable", ""},
		{"flags beat config", []string{"--driver", "mysql", "-H", "127.0.0.1", "-P", "3306", "-d", "pbx", "-u", "me", "--tls", "verify"}, both, "-", "mysql me@127.0.0.1:3306/pbx", "from-config-file", "verify", ""},
		{"environment beats config", []string{"--driver", "mysql"}, both, "from-env", "mysql monitor@10.0.0.5:3307/asterisk", "from-env", "disable", ""},
		{"--password-file beats environment", []string{"--driver", "mysql", "--password-file", pwFile}, both, "from-env", "mysql monitor@10.0.0.5:3307/asterisk", "from-file", "disable", ""},
		{"pgsql defaults", []string{"--driver", "pgsql"}, both, "-", "pgsql pgmon@127.0.0.1:5432/pbx", "inline-pg", "preferred", ""},
		{"driver from the one engine configured", nil, onlyPG, "-", "pgsql pgmon@127.0.0.1:5432/pbx", "", "preferred", ""},
		{"two engines need --driver", nil, both, "-", "", "", "", "give --driver mysql or --driver pgsql"},
		{"no config needs --driver", nil, nil, "-", "", "", "", "give --driver"},
		{"no user anywhere", []string{"--driver", "mysql", "-d", "pbx"}, nil, "-", "", "", "", "no user: give -u/--user or set [mysql] user in cluster.toml"},
		{"no database anywhere", []string{"--driver", "pgsql", "-u", "x"}, nil, "-", "", "", "", "no database: give -d/--database or set [pgsql] database in cluster.toml"},
		{"flags alone, no config", []string{"--driver", "mysql", "-u", "u", "-d", "d"}, nil, "-", "mysql u@127.0.0.1:3306/d", "", "preferred", ""},
		{"socket", []string{"--driver", "mysql", "-u", "u", "-d", "d", "-H", "/run/mysqld/mysqld.sock"}, nil, "-", "mysql u@/run/mysqld/mysqld.sock/d", "", "preferred", ""},
		{"verify over a socket", []string{"--driver", "mysql", "-u", "u", "-d", "d", "-H", "/run/x.sock", "--tls", "verify"}, nil, "-", "", "", "", "--tls verify needs a host name"},
		{"missing password file", []string{"--driver", "mysql", "-u", "u", "-d", "d", "--password-file", "/nonexistent/pw"}, nil, "-", "", "", "", "flag --password-file: reading secret file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env == "-" {
				t.Setenv(PasswordEnv, "")
				os.Unsetenv(PasswordEnv)
			} else {
				t.Setenv(PasswordEnv, tc.env)
			}
			o := options(t, tc.args...)
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			got, err := o.Resolve(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want || got.Password() != tc.pw || got.TLS != tc.tls {
				t.Fatalf("got %s pw %q tls %q, want %s pw %q tls %q", got, got.Password(), got.TLS, tc.want, tc.pw, tc.tls)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--driver", "oracle"}, `flag --driver: "oracle" is not a driver (mysql, pgsql)`},
		{[]string{"-P", "0"}, "flag -P/--port: 0 is not a port"},
		{[]string{"--tls", "maybe"}, `flag --tls: "maybe" is not one of disable, preferred, required, verify`},
		{[]string{"--table", "x; DROP TABLE y"}, "flag --table: "},
		{[]string{"--table", "Heartbeat"}, "flag --table: "},
		{[]string{"-H", ""}, "flag -H/--host: empty"},
	}
	for _, tc := range cases {
		err := options(t, tc.args...).Validate()
		var u plugin.UsageError
		if err == nil || !errors.As(err, &u) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error %q", tc.args, err, tc.want)
		}
	}
	for _, d := range []string{"mariadb", "MySQL", "postgres", "postgresql", "pgsql"} {
		if err := options(t, "--driver", d).Validate(); err != nil {
			t.Errorf("--driver %s: %v", d, err)
		}
	}
}

// The password must not surface through any way a Target or a driver
// config is printed, nor in the connection string pgx keeps.
func TestPasswordNeverPrinted(t *testing.T) {
	tg := Target{Driver: PgSQL, Host: "127.0.0.1", Port: 5432, Database: "pbx", User: "u", TLS: TLSPreferred}.WithPassword(secret)
	for _, s := range []string{fmt.Sprint(tg), fmt.Sprintf("%v %+v %#v %s", tg, tg, tg, tg)} {
		if strings.Contains(s, secret) {
			t.Fatalf("printed: %s", s)
		}
	}
	pc, err := PGConfig(tg)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Password != secret || strings.Contains(pc.ConnString(), secret) {
		t.Fatalf("pgx config: password %q, conn string %q", pc.Password, pc.ConnString())
	}
	tg.Driver = MySQL
	mc, err := MySQLConfig(context.Background(), tg)
	if err != nil || mc.Passwd != secret {
		t.Fatalf("mysql config: %v", err)
	}
}

func TestPGConfigQuotingAndTLS(t *testing.T) {
	ca := writeFile(t, "ca.pem", "")
	cases := []struct {
		t       Target
		sslmode string // what pgx made of it
		tls     bool
		verify  bool
	}{
		{Target{Driver: PgSQL, Host: "db.example.net", Port: 5432, Database: "my db", User: `o'brien\x`, TLS: TLSDisable}, "disable", false, false},
		{Target{Driver: PgSQL, Host: "db.example.net", Port: 5432, Database: "pbx", User: "u", TLS: TLSRequired}, "require", true, false},
		{Target{Driver: PgSQL, Host: "db.example.net", Port: 5432, Database: "pbx", User: "u", TLS: TLSVerify}, "verify-full", true, true},
		{Target{Driver: PgSQL, Host: "/run/postgresql", Port: 5432, Database: "pbx", User: "u", TLS: TLSVerify, CA: ca}, "disable", false, false},
	}
	for _, tc := range cases {
		c, err := PGConfig(tc.t)
		if err != nil {
			t.Fatalf("%s: %v", tc.t, err)
		}
		if c.User != tc.t.User || c.Database != tc.t.Database || c.Host != tc.t.Host {
			t.Errorf("%s: quoting lost something: user %q db %q host %q", tc.t, c.User, c.Database, c.Host)
		}
		if got := c.TLSConfig != nil; got != tc.tls {
			t.Errorf("%s (%s): TLS %v, want %v", tc.t, tc.sslmode, got, tc.tls)
		}
		if c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify == tc.verify {
			t.Errorf("%s: verify %v, want %v", tc.t, !c.TLSConfig.InsecureSkipVerify, tc.verify)
		}
	}
}

func TestMySQLConfigTLS(t *testing.T) {
	base := Target{Driver: MySQL, Host: "db.example.net", Port: 3306, Database: "pbx", User: "u"}
	for _, tc := range []struct {
		mode   string
		name   string
		verify bool
		tls    bool
	}{
		{TLSDisable, "", false, false},
		{TLSPreferred, "preferred", false, false},
		{TLSRequired, "", false, true},
		{TLSVerify, "", true, true},
	} {
		tg := base
		tg.TLS = tc.mode
		c, err := MySQLConfig(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		if c.TLSConfig != tc.name || (c.TLS != nil) != tc.tls || c.TLS != nil && c.TLS.InsecureSkipVerify == tc.verify {
			t.Errorf("%s: TLSConfig %q TLS %+v", tc.mode, c.TLSConfig, c.TLS)
		}
		if c.TLS != nil && c.TLS.ServerName != "db.example.net" {
			t.Errorf("%s: server name %q", tc.mode, c.TLS.ServerName)
		}
	}
	tg := base
	tg.TLS, tg.CA = TLSVerify, writeFile(t, "ca.pem", "not a certificate")
	if _, err := MySQLConfig(context.Background(), tg); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("bad CA: %v", err)
	}
}
