package dbfailover

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/db"
)

func pgValues(ctx context.Context, c *db.Conn, stepName, q string) (db.Row, error) {
	sctx, cancel := step(ctx, SQLTimeout)
	defer cancel()
	t, err := c.Query(sctx, stepName, q)
	if err != nil {
		return nil, err
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("%s: no row", stepName)
	}
	return t.Row(0), nil
}

// pgStandbyQuery reads, on a standby, what Promote needs: received and
// replayed LSN, the age of the last replayed transaction and whether the
// WAL receiver streams. Lag is 0 when streaming with everything received
// replayed (an idle primary writes nothing, so the replay age alone would
// grow forever).
const pgStandbyQuery = `SELECT pg_is_in_recovery() AS recovery,
 COALESCE(pg_last_wal_receive_lsn()::text, '') AS received,
 COALESCE(pg_last_wal_replay_lsn()::text, '') AS replayed,
 COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::text, '') AS replay_age,
 (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming`

// PGLag is what the standby says about its lag; Known is false when it
// cannot be told (never replayed a transaction, not streaming with unapplied
// WAL and no timestamp).
type PGLag struct {
	Received, Replayed string
	Streaming          bool
	Lag                time.Duration
	Known              bool
}

// ParsePGLag reads pgStandbyQuery's row.
func ParsePGLag(r db.Row) PGLag {
	l := PGLag{Received: r.String("received"), Replayed: r.String("replayed"), Streaming: r.String("streaming") != "0" && r.String("streaming") != ""}
	if l.Streaming && l.Received != "" && l.Received == l.Replayed {
		return PGLag{Received: l.Received, Replayed: l.Replayed, Streaming: true, Known: true}
	}
	if age, err := strconv.ParseFloat(r.String("replay_age"), 64); err == nil && age >= 0 {
		l.Lag, l.Known = time.Duration(age*float64(time.Second)), true
	}
	return l
}

func (l PGLag) String() string {
	lag := "lag unknown"
	if l.Known {
		lag = "lag " + l.Lag.Round(time.Second).String()
	}
	st := "not streaming"
	if l.Streaming {
		st = "streaming"
	}
	return fmt.Sprintf("%s, received %s, replayed %s, %s", st, orNone(l.Received), orNone(l.Replayed), lag)
}

func promotePG(ctx context.Context, d *config.Database, o Options, maxLag time.Duration) (string, error) {
	c, err := open(ctx, db.PgSQL, d, "")
	if err != nil {
		return "local server not reachable", err
	}
	defer c.Close()
	r, err := pgValues(ctx, c, "reading standby status", pgStandbyQuery)
	if err != nil {
		return "standby status unreadable", err
	}
	if !pgTrue(r.String("recovery")) {
		lsn, err := pgValues(ctx, c, "reading the WAL position", "SELECT pg_current_wal_lsn()::text AS lsn")
		if err != nil {
			return "already primary, WAL position unreadable", err
		}
		return "already primary, WAL at " + lsn.String("lsn"), nil
	}
	l := ParsePGLag(r)
	if o.MasterReachable && !o.Force && (!l.Known || l.Lag > maxLag) {
		return "refused: standby " + l.String() + ", max_promote_lag " + maxLag.String() + ", master still reachable (use --force)",
			fmt.Errorf("%w: %s", ErrLagging, l.String())
	}
	secs := int(PromoteTimeout / time.Second)
	sctx, cancel := step(ctx, PromoteTimeout+SQLTimeout)
	v, _, err := c.Value(sctx, "promoting", "SELECT pg_promote(wait => true, wait_seconds => "+strconv.Itoa(secs)+")")
	cancel()
	if err != nil {
		return "pg_promote failed", err
	}
	if !pgTrue(str(v)) {
		return "pg_promote did not finish within " + PromoteTimeout.String(), errors.New("pg_promote returned false")
	}
	// The control file names the new timeline only after a checkpoint;
	// pg_rewind against this server reads it (PostgreSQL's pg_rewind docs).
	note := ""
	cctx, ccancel := step(ctx, PromoteTimeout)
	if err := c.Exec(cctx, "checkpointing after promotion", "CHECKPOINT"); err != nil {
		note = " (CHECKPOINT after promotion failed: " + clean(err.Error()) + ")"
	}
	ccancel()
	return "promoted (was standby: " + l.String() + "), last replayed LSN " + orNone(l.Replayed) + note, nil
}

// pgTrue reads a boolean in PostgreSQL's text form ("t"; "true" from
// some drivers).
func pgTrue(s string) bool { return s == "t" || s == "true" }

// pgRunning tells from postmaster.pid whether the server runs.
func pgRunning(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

func demotePG(ctx context.Context, d *config.Database) (string, error) {
	if d.DataDir == "" {
		return "no data_dir configured", errors.New("[pgsql] data_dir is needed to stop the server")
	}
	if !pgRunning(d.DataDir) {
		return "already stopped", nil
	}
	if err := runCommand(ctx, CommandTimeout, d.Stop, nil); err != nil {
		return "stop command failed", err
	}
	if pgRunning(d.DataDir) {
		return "still running after the stop command", errors.New("server still running")
	}
	return "stopped (a primary cannot turn standby in place)", nil
}

// pgOwner is the data directory's owner: the user the server and its tools
// run as.
func pgOwner(dataDir string) (uid, gid uint32, err error) {
	fi, err := os.Stat(dataDir)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, errors.New("no owner information")
	}
	return st.Uid, st.Gid, nil
}

// pgBinDir finds PostgreSQL's programs: next to the pg_ctl that the
// start/stop commands name, else on PATH.
func pgBinDir(d *config.Database) string {
	for _, argv := range [][]string{d.Start, d.Stop} {
		for _, a := range argv {
			if filepath.Base(a) == "pg_ctl" && filepath.IsAbs(a) {
				return filepath.Dir(a)
			}
		}
	}
	if p, err := exec.LookPath("pg_rewind"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// runAs runs a PostgreSQL tool as the data directory's owner, without a
// shell, bounded; env carries PGPASSFILE, never a password.
func runAs(ctx context.Context, timeout time.Duration, uid, gid uint32, argv, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	if uint32(os.Geteuid()) != uid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no end within %s: %v %s", filepath.Base(argv[0]), timeout, err, clean(string(out)))
		}
		return fmt.Errorf("%s: %v %s", filepath.Base(argv[0]), err, clean(string(out)))
	}
	return nil
}

// writeOwned writes a file atomically with mode 0600, owned by uid/gid.
func writeOwned(path string, b []byte, uid, gid uint32) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chown(int(uid), int(gid)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PassFile is where Rejoin keeps the replication password for the
// walreceiver, pg_rewind and pg_basebackup: beside the data directory, not
// in it (pg_rewind and pg_basebackup replace the data directory's files).
func PassFile(dataDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(dataDir)), "pbxha-repl.pgpass")
}

func rejoinPG(ctx context.Context, cfg *config.Config, d *config.Database, nm config.Node) (string, error) {
	if d.DataDir == "" {
		return "no data_dir configured", errors.New("[pgsql] data_dir is needed for rejoin")
	}
	port := d.Port
	if port == 0 {
		port = 5432
	}
	// Already following the new master? Then there is nothing to do.
	if pgRunning(d.DataDir) {
		if s, ok := pgStreamingFrom(ctx, d, nm.ClusterIP); ok {
			return "already a standby of " + nm.Name + " (" + s + ")", nil
		}
		if err := runCommand(ctx, CommandTimeout, d.Stop, nil); err != nil {
			return "could not stop the server", err
		}
	}
	// A freshly promoted source must have checkpointed, or pg_rewind reads
	// the old timeline from its control file and finds nothing to rewind.
	if sc, err := open(ctx, db.PgSQL, d, nm.ClusterIP); err != nil {
		return "new master " + nm.Name + " not reachable at " + nm.ClusterIP, err
	} else {
		cctx, ccancel := step(ctx, PromoteTimeout)
		err := sc.Exec(cctx, "checkpointing the new master", "CHECKPOINT")
		ccancel()
		sc.Close()
		if err != nil {
			return "could not checkpoint the new master (pg_rewind needs it; grant pg_checkpoint)", err
		}
	}
	uid, gid, err := pgOwner(d.DataDir)
	if err != nil {
		return "data directory unreadable", err
	}
	bin := pgBinDir(d)
	if bin == "" {
		return "PostgreSQL programs not found", errors.New("no pg_ctl in [pgsql] start/stop and no pg_rewind on PATH")
	}
	pw := ""
	if d.ReplPassword.IsSet() {
		if pw, err = d.ReplPassword.Value(); err != nil {
			return "replication password unreadable", err
		}
	}
	pass := PassFile(d.DataDir)
	if err := writeOwned(pass, []byte(PGPassLine(d.ReplUser, pw)), uid, gid); err != nil {
		return "could not write the passfile", err
	}
	env := []string{"PGPASSFILE=" + pass, "PGCONNECT_TIMEOUT=5"}
	src := "host=" + pgConnValue(nm.ClusterIP) + " port=" + itoa(port) + " user=" + pgConnValue(d.ReplUser) +
		" dbname=" + pgConnValue(d.Database) + " connect_timeout=5"
	how := "pg_rewind"
	err = runAs(ctx, RewindTimeout, uid, gid, []string{filepath.Join(bin, "pg_rewind"), "--target-pgdata=" + d.DataDir, "--source-server=" + src}, env)
	if err != nil {
		rewindErr := clean(err.Error())
		// Keep the old data: rename, never delete.
		old := d.DataDir + ".pbxha-old-" + time.Now().UTC().Format("20060102T150405")
		if err := os.Rename(d.DataDir, old); err != nil {
			return "pg_rewind failed (" + rewindErr + ") and the data directory could not be set aside", err
		}
		if err := os.Mkdir(d.DataDir, 0o700); err != nil {
			return "could not create a new data directory", err
		}
		if err := os.Chown(d.DataDir, int(uid), int(gid)); err != nil {
			return "could not chown the new data directory", err
		}
		bsrc := "host=" + pgConnValue(nm.ClusterIP) + " port=" + itoa(port) + " user=" + pgConnValue(d.ReplUser) + " connect_timeout=5"
		if err := runAs(ctx, RewindTimeout, uid, gid, []string{filepath.Join(bin, "pg_basebackup"), "-d", bsrc, "-D", d.DataDir, "-X", "stream", "--checkpoint=fast", "-w"}, env); err != nil {
			return "pg_rewind failed (" + rewindErr + "), pg_basebackup failed too; old data kept at " + old, err
		}
		how = "pg_basebackup (pg_rewind failed: " + rewindErr + "; old data kept at " + old + ")"
	}
	if err := writeStandbyConf(d.DataDir, primaryConninfo(nm.ClusterIP, port, d.ReplUser, pass, cfg.Node), uid, gid); err != nil {
		return "could not write the standby configuration", err
	}
	if err := runCommand(ctx, CommandTimeout, d.Start, nil); err != nil {
		return "start command failed after " + how, err
	}
	wctx, cancel := context.WithTimeout(ctx, ReplicaWait)
	defer cancel()
	for {
		if s, ok := pgStreamingFrom(wctx, d, nm.ClusterIP); ok {
			return "standby of " + nm.Name + " via " + how + ", " + s, nil
		}
		select {
		case <-wctx.Done():
			return "started via " + how + " but not streaming from " + nm.Name + " within " + ReplicaWait.String(), errors.New("not streaming")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// PGPassLine is the passfile's line for the replication user, any host.
func PGPassLine(user, password string) string {
	return "*:*:*:" + pgpassEscape(user) + ":" + pgpassEscape(password) + "\n"
}

func writeStandbyConf(dataDir, conninfo string, uid, gid uint32) error {
	auto := filepath.Join(dataDir, "postgresql.auto.conf")
	old, err := os.ReadFile(auto)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	text := setAutoConf(string(old), "primary_conninfo", conninfo)
	text = dropAutoConf(text, "primary_slot_name")
	if err := writeOwned(auto, []byte(text), uid, gid); err != nil {
		return err
	}
	return writeOwned(filepath.Join(dataDir, "standby.signal"), nil, uid, gid)
}

// pgStreamingFrom reports whether the local server is a standby whose WAL
// receiver streams from host.
func pgStreamingFrom(ctx context.Context, d *config.Database, host string) (string, bool) {
	c, err := open(ctx, db.PgSQL, d, "")
	if err != nil {
		return "", false
	}
	defer c.Close()
	r, err := pgValues(ctx, c, "reading the WAL receiver", `SELECT pg_is_in_recovery() AS recovery,
 COALESCE((SELECT status FROM pg_stat_wal_receiver), '') AS status,
 COALESCE((SELECT sender_host FROM pg_stat_wal_receiver), '') AS sender,
 COALESCE(pg_last_wal_replay_lsn()::text, '') AS replayed`)
	if err != nil {
		return "", false
	}
	if pgTrue(r.String("recovery")) && r.String("status") == "streaming" && r.String("sender") == host {
		return "streaming, replayed " + r.String("replayed"), true
	}
	return "", false
}
