package dbfailover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/db"
	"pbxha/lib/dbsync"
)

// mysqlServer is an open connection and what it is.
type mysqlServer struct {
	c       *db.Conn
	mariadb bool
}

func openMySQL(ctx context.Context, d *config.Database, host string) (*mysqlServer, error) {
	c, err := open(ctx, db.MySQL, d, host)
	if err != nil {
		return nil, err
	}
	sctx, cancel := step(ctx, SQLTimeout)
	defer cancel()
	v, err := c.Version(sctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &mysqlServer{c: c, mariadb: db.IsMariaDB(v)}, nil
}

func (s *mysqlServer) value(ctx context.Context, stepName, q string, args ...any) (string, error) {
	sctx, cancel := step(ctx, SQLTimeout)
	defer cancel()
	v, _, err := s.c.Value(sctx, stepName, q, args...)
	return str(v), err
}

func (s *mysqlServer) exec(ctx context.Context, stepName, q string) error {
	sctx, cancel := step(ctx, SQLTimeout)
	defer cancel()
	return s.c.Exec(sctx, stepName, q)
}

// replicaStatus is SHOW SLAVE/REPLICA STATUS: nil row when not a replica.
func (s *mysqlServer) replicaStatus(ctx context.Context) (db.Row, *dbsync.MySQLReplica, error) {
	q := "SHOW REPLICA STATUS"
	if s.mariadb {
		q = "SHOW SLAVE STATUS"
	}
	sctx, cancel := step(ctx, SQLTimeout)
	defer cancel()
	t, err := s.c.Query(sctx, "reading replica status", q)
	if err != nil || len(t.Rows) == 0 {
		return nil, nil, err
	}
	r := dbsync.ParseMySQLReplica(t.Row(0))
	return t.Row(0), &r, nil
}

func (s *mysqlServer) hasSuperReadOnly(ctx context.Context) bool {
	if s.mariadb {
		return false
	}
	v, err := s.value(ctx, "reading super_read_only", "SELECT COUNT(*) FROM performance_schema.global_variables WHERE VARIABLE_NAME = 'super_read_only'")
	return err == nil && v == "1"
}

// position is the GTID position the server reached, as the email states it.
func (s *mysqlServer) position(ctx context.Context) string {
	if s.mariadb {
		sp, err1 := s.value(ctx, "reading gtid_slave_pos", "SELECT @@GLOBAL.gtid_slave_pos")
		cp, err2 := s.value(ctx, "reading gtid_current_pos", "SELECT @@GLOBAL.gtid_current_pos")
		if err1 != nil || err2 != nil {
			return "gtid position unknown"
		}
		return fmt.Sprintf("gtid_slave_pos %s, gtid_current_pos %s", orNone(sp), orNone(cp))
	}
	ex, err := s.value(ctx, "reading gtid_executed", "SELECT @@GLOBAL.gtid_executed")
	if err != nil {
		return "gtid position unknown"
	}
	return "gtid_executed " + orNone(strings.ReplaceAll(ex, "\n", ""))
}

func orNone(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

func lagText(r *dbsync.MySQLReplica) string {
	if r.LagNull || r.LagColumn == "" {
		return "lag unknown"
	}
	return fmt.Sprintf("lag %.0fs", r.Lag)
}

func promoteMySQL(ctx context.Context, d *config.Database, o Options, maxLag time.Duration) (string, error) {
	s, err := openMySQL(ctx, d, "")
	if err != nil {
		return "local server not reachable", err
	}
	defer s.c.Close()
	row, rep, err := s.replicaStatus(ctx)
	if err != nil {
		return "replica status unreadable", err
	}
	var was string
	if rep != nil {
		lagKnown := !rep.LagNull && rep.LagColumn != ""
		was = fmt.Sprintf("was replica of %s (IO %s, SQL %s, %s)", rep.Source, rep.IO, rep.SQL, lagText(rep))
		if o.MasterReachable && !o.Force && (!lagKnown || time.Duration(rep.Lag*float64(time.Second)) > maxLag) {
			return "refused: " + was + ", max_promote_lag " + maxLag.String() + ", master still reachable (use --force)",
				fmt.Errorf("%w: %s", ErrLagging, lagText(rep))
		}
		// Apply what was already received before cutting the replica off:
		// the relay log may hold transactions the master acknowledged.
		if rep.SQL == "Yes" {
			if w := s.catchUp(ctx, row); w != "" {
				was += ", " + w
			}
		}
		stop, reset := "STOP REPLICA", "RESET REPLICA ALL"
		if s.mariadb {
			stop, reset = "STOP SLAVE", "RESET SLAVE ALL"
		}
		if err := s.exec(ctx, "stopping the replica", stop); err != nil {
			return "could not stop the replica", err
		}
		if err := s.exec(ctx, "clearing the replica configuration", reset); err != nil {
			return "could not clear the replica configuration", err
		}
	} else {
		was = "was no replica"
	}
	ro, err := s.value(ctx, "reading read_only", "SELECT @@GLOBAL.read_only")
	if err != nil {
		return "read_only unreadable", err
	}
	if s.hasSuperReadOnly(ctx) {
		if err := s.exec(ctx, "clearing super_read_only", "SET GLOBAL super_read_only = OFF"); err != nil {
			return "could not clear super_read_only", err
		}
	}
	if ro != "0" {
		if err := s.exec(ctx, "clearing read_only", "SET GLOBAL read_only = OFF"); err != nil {
			return "could not clear read_only", err
		}
	}
	verb := "promoted"
	if rep == nil && ro == "0" {
		verb = "already primary"
	}
	return fmt.Sprintf("%s (%s), writable, %s", verb, was, s.position(ctx)), nil
}

// catchUp waits, bounded, until the SQL thread has applied every
// transaction the IO thread received. It returns a note for the summary.
func (s *mysqlServer) catchUp(ctx context.Context, row db.Row) string {
	var q, set string
	if s.mariadb {
		set, _, _ = row.Lookup("Gtid_IO_Pos")
		q = "SELECT MASTER_GTID_WAIT(?, ?)"
	} else {
		set, _, _ = row.Lookup("Retrieved_Gtid_Set")
		q = "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)"
	}
	set = strings.ReplaceAll(set, "\n", "")
	if set == "" {
		return ""
	}
	secs := int(CatchUpTimeout / time.Second)
	sctx, cancel := step(ctx, CatchUpTimeout+SQLTimeout)
	defer cancel()
	v, _, err := s.c.Value(sctx, "waiting for the relay log to be applied", q, set, secs)
	switch {
	case err != nil:
		return "relay log not confirmed applied: " + clean(err.Error())
	case str(v) == "0":
		return "received transactions applied"
	default:
		return fmt.Sprintf("relay log NOT fully applied within %s", CatchUpTimeout)
	}
}

func demoteMySQL(ctx context.Context, d *config.Database) (string, error) {
	s, err := openMySQL(ctx, d, "")
	if err != nil {
		return "local server not reachable (it takes no writes while down)", err
	}
	defer s.c.Close()
	ro, err := s.value(ctx, "reading read_only", "SELECT @@GLOBAL.read_only")
	if err != nil {
		return "read_only unreadable", err
	}
	sro := s.hasSuperReadOnly(ctx)
	if ro == "1" && !sro {
		return "already read only", nil
	}
	if ro != "1" {
		if err := s.exec(ctx, "setting read_only", "SET GLOBAL read_only = ON"); err != nil {
			return "could not set read_only", err
		}
	}
	if sro {
		if err := s.exec(ctx, "setting super_read_only", "SET GLOBAL super_read_only = ON"); err != nil {
			return "read_only ON but super_read_only failed", err
		}
		return "read only (read_only, super_read_only ON)", nil
	}
	return "read only (read_only ON)", nil
}

// errantMariaDB compares this node's binlog with the new master's
// gtid_binlog_state (the last GTID per domain and server it logged) and
// gtid_slave_pos (what it applied as a replica).
func errantMariaDB(ctx context.Context, local, master *mysqlServer) ([]Errant, string, error) {
	lpos, err := local.value(ctx, "reading local gtid_binlog_pos", "SELECT @@GLOBAL.gtid_binlog_pos")
	if err != nil {
		return nil, "", err
	}
	mstate, err := master.value(ctx, "reading the new master's gtid_binlog_state", "SELECT @@GLOBAL.gtid_binlog_state")
	if err != nil {
		return nil, "", err
	}
	mslave, err := master.value(ctx, "reading the new master's gtid_slave_pos", "SELECT @@GLOBAL.gtid_slave_pos")
	if err != nil {
		return nil, "", err
	}
	l, err := ParseMariaDBGTIDs(lpos)
	if err != nil {
		return nil, "", err
	}
	st, err := ParseMariaDBGTIDState(mstate + "," + mslave)
	if err != nil {
		return nil, "", err
	}
	return MariaDBErrant(l, st), lpos, nil
}

// errantMySQL asks the new master which of this node's GTIDs it lacks.
func errantMySQL(ctx context.Context, local, master *mysqlServer) (string, error) {
	ex, err := local.value(ctx, "reading local gtid_executed", "SELECT @@GLOBAL.gtid_executed")
	if err != nil {
		return "", err
	}
	return master.value(ctx, "computing errant GTIDs on the new master", "SELECT GTID_SUBTRACT(?, @@GLOBAL.gtid_executed)", ex)
}

func rejoinMySQL(ctx context.Context, cfg *config.Config, d *config.Database, nm config.Node) (string, error) {
	s, err := openMySQL(ctx, d, "")
	if err != nil {
		return "local server not reachable", err
	}
	defer s.c.Close()
	port := d.Port
	if port == 0 {
		port = 3306
	}
	// Read only first: whatever follows, no application write lands here.
	if _, err := demoteMySQL(ctx, d); err != nil {
		return "could not make the server read only", err
	}
	_, rep, err := s.replicaStatus(ctx)
	if err != nil {
		return "replica status unreadable", err
	}
	if rep != nil && rep.Source == joinHost(nm.ClusterIP, port) && rep.IO == "Yes" && rep.SQL == "Yes" {
		return s.waitReplica(ctx, nm, port, "already a replica of "+nm.Name)
	}
	m, err := openMySQL(ctx, d, nm.ClusterIP)
	if err != nil {
		return "new master " + nm.Name + " not reachable at " + nm.ClusterIP, err
	}
	defer m.c.Close()
	self := cfg.Node
	if s.mariadb {
		errant, lpos, err := errantMariaDB(ctx, s, m)
		if err != nil {
			return "errant-GTID check failed", err
		}
		if len(errant) > 0 {
			msg := ErrantMessageMariaDB(self, nm.Name, errant, lpos)
			return "refused: " + msg, fmt.Errorf("%w: %s", ErrErrant, msg)
		}
	} else {
		errant, err := errantMySQL(ctx, s, m)
		if err != nil {
			return "errant-GTID check failed", err
		}
		if errant = strings.ReplaceAll(errant, "\n", ""); errant != "" {
			msg := ErrantMessageMySQL(self, nm.Name, errant)
			return "refused: " + msg, fmt.Errorf("%w: %s", ErrErrant, msg)
		}
	}
	user := d.ReplUser
	pw := ""
	if d.ReplPassword.IsSet() {
		if pw, err = d.ReplPassword.Value(); err != nil {
			return "replication password unreadable", err
		}
	}
	stop, start := "STOP REPLICA", "START REPLICA"
	if s.mariadb {
		stop, start = "STOP SLAVE", "START SLAVE"
	}
	if err := s.exec(ctx, "stopping the replica", stop); err != nil {
		return "could not stop the replica", err
	}
	if s.mariadb {
		// A former master's gtid_slave_pos is stale: its own writes are in
		// gtid_binlog_pos. gtid_current_pos is the later of the two per
		// domain, and the errant check above proved the new master has it.
		cur, err := s.value(ctx, "reading gtid_current_pos", "SELECT @@GLOBAL.gtid_current_pos")
		if err != nil {
			return "gtid_current_pos unreadable", err
		}
		if _, err := ParseMariaDBGTIDs(cur); err != nil {
			return "gtid_current_pos unparsable", err
		}
		if err := s.exec(ctx, "setting gtid_slave_pos", "SET GLOBAL gtid_slave_pos = "+quoteMySQL(cur)); err != nil {
			return "could not set gtid_slave_pos", err
		}
	}
	sctx, cancel := step(ctx, SQLTimeout)
	err = s.c.Exec(sctx, "pointing the replica at "+nm.Name, changeMasterSQL(s.mariadb, nm.ClusterIP, port, user, pw))
	cancel()
	if err != nil {
		// The statement holds the password; a server may echo it.
		return "CHANGE MASTER failed", errors.New(db.Scrub(err.Error(), pw))
	}
	if err := s.exec(ctx, "starting the replica", start); err != nil {
		return "could not start the replica", err
	}
	return s.waitReplica(ctx, nm, port, "replica of "+nm.Name+" ("+nm.ClusterIP+")")
}

// waitReplica waits until both threads run and the lag is small, bounded
// by ReplicaWait.
func (s *mysqlServer) waitReplica(ctx context.Context, nm config.Node, port int, what string) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, ReplicaWait)
	defer cancel()
	var last string
	for {
		_, rep, err := s.replicaStatus(wctx)
		switch {
		case err != nil:
			last = clean(err.Error())
		case rep == nil:
			last = "no replica configured"
		default:
			last = fmt.Sprintf("IO %s, SQL %s, %s", rep.IO, rep.SQL, lagText(rep))
			if rep.LastIOErrno == "1236" {
				msg := fmt.Sprintf("the new master %s refuses this node's GTID position: %s — this node has transactions %s never got; compare gtid_binlog_pos here with gtid_binlog_state there, then apply or discard them by hand (back up first)", nm.Name, clean(rep.LastIOError), nm.Name)
				return "refused: " + msg, fmt.Errorf("%w: %s", ErrErrant, msg)
			}
			if rep.LastSQLErrno != "" && rep.LastSQLErrno != "0" && rep.SQL != "Yes" {
				return what + ": SQL thread stopped: " + clean(rep.LastSQLError), fmt.Errorf("replica SQL error %s: %s", rep.LastSQLErrno, clean(rep.LastSQLError))
			}
			if rep.IO == "Yes" && rep.SQL == "Yes" && !rep.LagNull && rep.LagColumn != "" &&
				time.Duration(rep.Lag*float64(time.Second)) <= RejoinMaxLag {
				return fmt.Sprintf("%s, read only, %s, %s", what, last, s.position(ctx)), nil
			}
		}
		select {
		case <-wctx.Done():
			return what + ": not caught up within " + ReplicaWait.String() + " (" + last + ")", fmt.Errorf("replica not running/caught up within %s: %s", ReplicaWait, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func joinHost(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}
