package db_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"pbxha/lib/db"
	"pbxha/lib/db/dbtest"
)

const secret = "PBXHA-SECRET-zebra-4711"

func target(t *testing.T, d db.Driver, addr string) db.Target {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return db.Target{Driver: d, Host: host, Port: p, Database: "pbx", User: "pbx", TLS: db.TLSDisable}.WithPassword(secret)
}

func open(t *testing.T, tg db.Target, timeout time.Duration) (*db.Error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	c, err := db.Open(ctx, tg)
	if err == nil {
		c.Close()
		t.Fatal("connected to a server that refuses everyone")
	}
	var e *db.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not a *db.Error", err, err)
	}
	return e, time.Since(start)
}

// A server may quote anything back, the password included (a proxy
// echoing the login, a misconfigured auth plugin): it never reaches the
// output.
func TestServerMessagesAreScrubbed(t *testing.T) {
	cases := []struct {
		driver db.Driver
		addr   string
		want   string
		check  func(*db.Error) bool
	}{
		{db.MySQL, dbtest.MySQLRefuses(t, 1045, "28000", "Access denied for user 'pbx' (password "+secret+")\n| evil=1"),
			"connecting to mysql at 127.0.0.1:", func(e *db.Error) bool { return e.Number == 1045 && e.SQLState == "28000" }},
		{db.MySQL, dbtest.MySQLRefuses(t, 1290, "HY000", "The MariaDB server is running with the --read-only option so it cannot execute this statement"),
			"ERROR 1290 (HY000): The MariaDB server is running with the --read-only option", (*db.Error).ReadOnly},
		{db.PgSQL, dbtest.PGRefuses(t, "28P01", `password authentication failed for user "pbx" (tried `+secret+")"),
			`FATAL: password authentication failed for user "pbx" (tried ********) (SQLSTATE 28P01)`, func(e *db.Error) bool { return e.SQLState == "28P01" }},
		{db.PgSQL, dbtest.PGRefuses(t, "42P01", `relation "pbxha_heartbeat" does not exist`),
			`relation "pbxha_heartbeat" does not exist`, (*db.Error).MissingTable},
	}
	for _, tc := range cases {
		e, _ := open(t, target(t, tc.driver, tc.addr), 5*time.Second)
		msg := e.Error()
		if strings.Contains(msg, secret) || !strings.Contains(msg, tc.want) || strings.ContainsAny(msg, "\n|") {
			t.Errorf("%s: %q, want it to contain %q, no password, no newline or bar", tc.driver, msg, tc.want)
		}
		if !tc.check(e) {
			t.Errorf("%s: classification of %+v", tc.driver, e)
		}
	}
	e, _ := open(t, target(t, db.MySQL, cases[0].addr), 5*time.Second)
	if !strings.Contains(e.Msg, "(password ********) / evil=1") {
		t.Errorf("scrubbed and cleaned: %q", e.Msg)
	}
}

func TestRefusedAndSilentServers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, d := range []db.Driver{db.MySQL, db.PgSQL} {
		e, _ := open(t, target(t, d, closed), 5*time.Second)
		if !strings.HasSuffix(e.Error(), ": connection refused (nothing listens there)") || !strings.HasPrefix(e.Error(), "connecting to "+string(d)+" at "+closed+" as pbx") {
			t.Errorf("%s refused: %q", d, e.Error())
		}
		// A server that accepts and never speaks: the context ends the
		// wait, not a driver default.
		e, took := open(t, target(t, d, dbtest.Silent(t)), 300*time.Millisecond)
		if took > 2*time.Second || !e.Timeout && !strings.Contains(e.Msg, "connection lost") {
			t.Errorf("%s silent: %+v after %v", d, e, took)
		}
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		e        db.Error
		readOnly bool
		missing  bool
	}{
		{db.Error{Number: 1290, Msg: "ERROR 1290 (HY000): The MySQL server is running with the --read-only option so it cannot execute this statement"}, true, false},
		{db.Error{Number: 1290, Msg: "ERROR 1290 (HY000): The MySQL server is running with the --skip-grant-tables option"}, false, false},
		{db.Error{Number: 1792}, true, false},
		{db.Error{SQLState: "25006"}, true, false},
		{db.Error{Number: 1146}, false, true},
		{db.Error{SQLState: "42P01"}, false, true},
		{db.Error{Number: 1045}, false, false},
	}
	for _, tc := range cases {
		if tc.e.ReadOnly() != tc.readOnly || tc.e.MissingTable() != tc.missing {
			t.Errorf("%+v: read-only %v, missing %v", tc.e, tc.e.ReadOnly(), tc.e.MissingTable())
		}
	}
	if got := db.Scrub("a\nb|"+secret, secret); got != "a b/********" {
		t.Errorf("Scrub: %q", got)
	}
}
