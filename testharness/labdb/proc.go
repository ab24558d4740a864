package labdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Program paths (Debian 12 packages).
var (
	MariadbdBin      = "/usr/sbin/mariadbd"
	MariadbInstallDB = "/usr/bin/mariadb-install-db"
	MariadbClient    = "/usr/bin/mariadb"
	MariadbDump      = "/usr/bin/mariadb-dump"
	MariadbAdmin     = "/usr/bin/mariadb-admin"
	PGBinDir         = "/usr/lib/postgresql/15/bin"
)

// Server describes one server: its files, its address, and the commands the
// failover may run inside the node to start and stop it.
type Server struct {
	Node       string
	Engine     Engine
	Netns      string
	Dir        string // Root/ENGINE
	DataDir    string
	RunDir     string // sockets and pid file
	LogFile    string // the server's stdout/stderr and error log
	ConfigFile string // my.cnf, postgresql.conf
	// Socket is MariaDB's socket file; for PostgreSQL it is the socket
	// directory, which is what libpq and pgx take as host.
	Socket  string
	PidFile string
	Addr    string // ClusterIP:port
	// ClientConfig is MariaDB's client option file for the admin user
	// (mariadb --defaults-file=...); empty for PostgreSQL.
	ClientConfig string
	// StartCommand and StopCommand run inside the node's namespace (as root);
	// both return once the server is up or down. Meant for cluster.toml.
	StartCommand []string
	StopCommand  []string

	comm   string // program name in /proc/PID/stat
	termSg syscall.Signal
}

// Key is the server's name in Pids: "node1/mariadb".
func (s Server) Key() string { return s.Node + "/" + string(s.Engine) }

func (c *Cluster) server(i int, e Engine) Server {
	n := c.st.Nodes[i]
	dir := filepath.Join(n.Root, string(e))
	s := Server{
		Node:    n.Name,
		Engine:  e,
		Netns:   n.Netns,
		Dir:     dir,
		DataDir: filepath.Join(dir, "data"),
		RunDir:  filepath.Join(dir, "run"),
	}
	switch e {
	case MariaDB:
		s.LogFile = filepath.Join(dir, "log", "mariadbd.log")
		s.ConfigFile = filepath.Join(dir, "my.cnf")
		s.ClientConfig = filepath.Join(dir, "client.cnf")
		s.Socket = filepath.Join(s.RunDir, "mysqld.sock")
		s.PidFile = filepath.Join(s.RunDir, "mariadbd.pid")
		s.Addr = joinHostPort(n.ClusterIP, MariaDBPort)
		s.comm, s.termSg = "mariadbd", syscall.SIGTERM
		// setsid -f detaches it from the caller's session; its output goes to
		// the log so it holds none of the caller's pipes (Icinga would wait
		// for them to close).
		// Like Start: a server with a replication source comes back read-only.
		cli := MariadbClient + " --defaults-file=" + shq(s.ClientConfig) + " -N -B"
		s.StartCommand = []string{"/bin/sh", "-c", fmt.Sprintf(
			"setsid -f %s --defaults-file=%s </dev/null >>%s 2>&1 || exit 1\n"+
				"for i in $(seq 600); do %s --defaults-file=%s --connect-timeout=1 ping >/dev/null 2>&1 && break; [ $i = 600 ] && exit 1; sleep 0.1; done\n"+
				"if [ -n \"$(%s -e 'SHOW SLAVE STATUS')\" ]; then %s -e 'SET GLOBAL read_only = ON'; fi",
			MariadbdBin, shq(s.ConfigFile), shq(s.LogFile), MariadbAdmin, shq(s.ClientConfig), cli, cli)}
		s.StopCommand = []string{MariadbAdmin, "--defaults-file=" + s.ClientConfig, "shutdown"}
	case PostgreSQL:
		s.LogFile = filepath.Join(dir, "log", "postgres.log")
		s.ConfigFile = filepath.Join(dir, "conf", "postgresql.conf")
		s.Socket = s.RunDir
		s.PidFile = filepath.Join(s.DataDir, "postmaster.pid")
		s.Addr = joinHostPort(n.ClusterIP, PostgreSQLPort)
		s.comm, s.termSg = "postgres", syscall.SIGINT // fast shutdown; SIGTERM waits for clients
		asPG := []string{"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"}
		s.StartCommand = append(asPG, filepath.Join(PGBinDir, "pg_ctl"), "start", "-D", s.DataDir,
			"-o", "-c config_file="+s.ConfigFile, "-l", s.LogFile, "-w", "-t", "60")
		s.StopCommand = append(append([]string{}, asPG...), filepath.Join(PGBinDir, "pg_ctl"), "stop", "-D", s.DataDir, "-m", "fast", "-w", "-t", "60")
	}
	return s
}

func joinHostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(port)
	}
	return ip + ":" + strconv.Itoa(port)
}

// shq quotes a path for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// wrap prefixes argv so it runs in netns and, for PostgreSQL, as postgres.
// Both ip netns exec and setpriv exec in place, so the pid of the started
// process is the server's.
func wrap(netns string, asPostgres bool, argv ...string) []string {
	var out []string
	if netns != "" {
		out = append(out, "ip", "netns", "exec", netns)
	}
	if asPostgres {
		out = append(out, "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--")
	}
	return append(out, argv...)
}

// baseEnv is the environment of every program labdb runs: nothing of the
// caller's (no PGPASSWORD, MYSQL_PWD or locale surprises leak in).
func baseEnv(extra ...string) []string {
	return append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/"}, extra...)
}

// runTool runs a program to completion; its output becomes part of the error.
func runTool(ctx context.Context, argv []string, env []string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = baseEnv(env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s failed: %w: %s", filepath.Base(argv[indexAfterWrap(argv)]), err, tail(stderr.String()+stdout.String(), 800))
	}
	return stdout.Bytes(), nil
}

// indexAfterWrap finds the real program in a wrapped argv, for messages.
func indexAfterWrap(argv []string) int {
	for i, a := range argv {
		if a == "--" && i+1 < len(argv) {
			return i + 1
		}
	}
	if len(argv) > 4 && argv[0] == "ip" && argv[1] == "netns" {
		return 4
	}
	return 0
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// logTail returns the end of a server's log for an error message.
func logTail(s Server) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(string(b), 1500)
}

// daemon is a server process this process started.
type daemon struct {
	pid    int
	exited chan struct{} // closed when it exits (while this process lives)
}

// startDaemon starts argv as a server: its own session (no signal from the
// caller's terminal, survives the caller), stdin /dev/null, output appended
// to the log file, no pipe to this process.
func startDaemon(s Server, argv []string) (*daemon, error) {
	if err := os.MkdirAll(filepath.Dir(s.LogFile), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("labdb: %s: opening log failed: %w", s.Key(), err)
	}
	defer lf.Close()
	if s.Engine == PostgreSQL {
		// pg_ctl -l (the StartCommand) reopens the log as postgres.
		if uid, gid, err := pgIDs(); err == nil {
			_ = os.Chown(s.LogFile, uid, gid)
		}
	}
	fmt.Fprintf(lf, "---- labdb: %s starting %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = baseEnv()
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("labdb: %s: starting %s failed: %w", s.Key(), argv[0], err)
	}
	d := &daemon{pid: cmd.Process.Pid, exited: make(chan struct{})}
	// Reap it while this process lives (the test binary does); once this
	// process exits the server is an orphan and someone else's business.
	go func() { _ = cmd.Wait(); close(d.exited) }()
	return d, nil
}

// running returns the pid of the server described by s, from its own pid
// file, if that process is alive (not a zombie), runs the server's program
// and has its working directory in the server's data directory (both
// mariadbd and postgres chdir there). 0 otherwise.
func running(s Server) int {
	b, err := os.ReadFile(s.PidFile)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0
	}
	comm, st, _, ok := procStat(pid)
	if !ok || comm != s.comm || st == 'Z' || st == 'X' {
		return 0
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return 0
	}
	want, err := filepath.EvalSymlinks(s.DataDir)
	if err != nil {
		want = s.DataDir
	}
	if filepath.Clean(cwd) != filepath.Clean(want) {
		return 0
	}
	return pid
}

// procStat reads comm, state and ppid from /proc/PID/stat.
func procStat(pid int) (comm string, state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, false
	}
	return parseStat(string(b))
}

// parseStat parses "PID (COMM) S PPID ...". COMM may hold spaces and
// parentheses, so it ends at the last ')'.
func parseStat(s string) (comm string, state byte, ppid int, ok bool) {
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return "", 0, 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return "", 0, 0, false
	}
	return s[open+1 : end], f[0][0], ppid, true
}

// gone reports whether pid has exited. Zombies count as gone: the lab's
// orphans are reparented to a PID 1 that may never reap them.
func gone(pid int) bool {
	_, st, _, ok := procStat(pid)
	return !ok || st == 'Z' || st == 'X'
}

// descendants lists the live descendants of pid. PostgreSQL's children each
// call setsid, so a process-group signal would miss them.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, st, pp, ok := procStat(p); ok && st != 'Z' {
			kids[pp] = append(kids[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// waitGone polls until every pid has exited or ctx ends.
func waitGone(ctx context.Context, pids ...int) error {
	for {
		alive := 0
		for _, p := range pids {
			if !gone(p) {
				alive++
			}
		}
		if alive == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of pids %v still alive: %w", alive, pids, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killTree SIGKILLs pid and its descendants and waits for them.
func killTree(ctx context.Context, pid int) error {
	pids := append([]int{pid}, descendants(pid)...)
	// Stop the parent first so it cannot fork replacements for its children.
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	wctx, cancel := deadline(ctx, 10*time.Second)
	defer cancel()
	if err := waitGone(wctx, pids...); err != nil {
		return fmt.Errorf("labdb: SIGKILL of pid %d: %w", pid, err)
	}
	return nil
}

// stopServer sends the engine's shutdown signal, waits StopTimeout for the
// server and its children to exit, then SIGKILLs what is left.
func (c *Cluster) stopServer(ctx context.Context, s Server) error {
	pid := running(s)
	if pid == 0 {
		return nil
	}
	t0 := time.Now()
	kids := descendants(pid)
	if err := syscall.Kill(pid, s.termSg); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("labdb: %s: signalling pid %d failed: %w", s.Key(), pid, err)
	}
	wctx, cancel := deadline(ctx, StopTimeout)
	err := waitGone(wctx, append([]int{pid}, kids...)...)
	cancel()
	if err == nil {
		c.log("%s: stopped pid %d in %.1fs", s.Key(), pid, time.Since(t0).Seconds())
		return nil
	}
	c.log("%s: pid %d ignored %v for %s, sending SIGKILL", s.Key(), pid, s.termSg, StopTimeout)
	if err := killTree(context.WithoutCancel(ctx), pid); err != nil {
		return err
	}
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	return nil
}

// waitReady calls probe until it succeeds, failing early when the daemon
// this process started has exited, and at StartTimeout.
func (c *Cluster) waitReady(ctx context.Context, s Server, d *daemon, probe func(context.Context) error) error {
	t0 := time.Now()
	ctx, cancel := deadline(ctx, StartTimeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := deadline(ctx, 3*time.Second)
		last = probe(pctx)
		pcancel()
		if last == nil {
			c.log("%s: ready (pid %d) after %.1fs", s.Key(), running(s), time.Since(t0).Seconds())
			return nil
		}
		var exited <-chan struct{}
		if d != nil {
			exited = d.exited
		}
		select {
		case <-exited:
			return fmt.Errorf("labdb: %s: server exited during startup; log:\n%s", s.Key(), logTail(s))
		case <-ctx.Done():
			return fmt.Errorf("labdb: %s: not ready after %.0fs: %v; log:\n%s", s.Key(), time.Since(t0).Seconds(), last, logTail(s))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
