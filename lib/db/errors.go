package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"pbxha/lib/plugin"
)

// Error is a failed step: what was being done and what the server or the
// network said, cleaned for output and without the password.
type Error struct {
	Step     string // "connecting to mysql at 127.0.0.1:3306 as pbx"
	Msg      string // "ERROR 1045 (28000): Access denied for user ..."
	Number   uint16 // MySQL's error number, 0 when none
	SQLState string // SQLSTATE when the server gave one
	Timeout  bool   // the deadline ran out
}

func (e *Error) Error() string { return e.Step + ": " + e.Msg }

// MissingTable reports whether the error says the table does not exist.
func (e *Error) MissingTable() bool { return e.Number == 1146 || e.SQLState == "42P01" }

// ReadOnly reports whether the server refused a write because it is read
// only: MariaDB/MySQL --read-only (1290) or a read-only transaction (1792,
// 1836); PostgreSQL read_only_sql_transaction (25006), which is also what
// a standby answers.
func (e *Error) ReadOnly() bool {
	switch {
	case e.Number == 1290 && strings.Contains(strings.ToLower(e.Msg), "read-only"):
		return true
	case e.Number == 1792, e.Number == 1836, e.SQLState == "25006":
		return true
	}
	return false
}

// wrap describes err for output. password is removed from the text
// whatever the driver put in it: a message mangled where the password
// happens to occur is better than a password in Icinga's history.
func wrap(step string, err error, password string) *Error {
	e := &Error{Step: step}
	var (
		my *mysql.MySQLError
		pg *pgconn.PgError
	)
	switch {
	case errors.As(err, &my):
		e.Number = my.Number
		e.SQLState = strings.TrimRight(string(my.SQLState[:]), "\x00")
		if e.SQLState != "" {
			e.Msg = fmt.Sprintf("ERROR %d (%s): %s", my.Number, e.SQLState, my.Message)
		} else {
			e.Msg = fmt.Sprintf("ERROR %d: %s", my.Number, my.Message)
		}
	case errors.As(err, &pg):
		e.SQLState = pg.Code
		e.Msg = fmt.Sprintf("%s: %s (SQLSTATE %s)", pg.Severity, pg.Message, pg.Code)
		if pg.Detail != "" {
			e.Msg += ": " + pg.Detail
		}
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn):
		e.Msg = "connection lost (the server closed it or stopped answering)"
	default:
		e.Msg, e.Timeout = describeNet(err)
	}
	e.Msg = Scrub(e.Msg, password)
	return e
}

// describeNet says why a connection or a read failed, without Go's
// "dial tcp 127.0.0.1:41234->..." preamble where a plainer word exists.
func describeNet(err error) (string, bool) {
	var (
		ne  net.Error
		dns *net.DNSError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out", true
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens there)", false
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable", false
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server", false
	case errors.Is(err, syscall.ENOENT):
		return "no such socket", false
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied", false
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name + ": " + dns.Err, false
	case errors.Is(err, context.Canceled):
		return "cancelled", false
	}
	// pgx wraps the innermost cause in "failed to connect to `user=...`:
	// host (ip): ..."; the cause is what the admin needs.
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err.Error(), false
}

// Scrub removes password from s and cleans it for one line of output.
func Scrub(s, password string) string {
	if password != "" {
		s = strings.ReplaceAll(s, password, "********")
	}
	return plugin.Clean(s, 300)
}
