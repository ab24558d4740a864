package lab

import (
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

// pidRecord is what the lab's pid files hold: the pid and the process's
// start time (field 22 of /proc/PID/stat, in clock ticks since boot). The
// start time does not change across exec, so it can be read right after
// fork, and it tells the lab's process from a later one that got the pid.
type pidRecord struct {
	Pid   int
	Start uint64
}

func writePidFile(path string, r pidRecord) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, fmt.Appendf(nil, "%d %d\n", r.Pid, r.Start), 0o644)
}

func readPidFile(path string) (pidRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return pidRecord{}, fmt.Errorf("pid file %s: want \"PID STARTTIME\", got %q", path, strings.TrimSpace(string(b)))
	}
	pid, err1 := strconv.Atoi(f[0])
	st, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return pidRecord{}, fmt.Errorf("pid file %s: malformed %q", path, strings.TrimSpace(string(b)))
	}
	return pidRecord{Pid: pid, Start: st}, nil
}

// procInfo is what the lab reads from /proc/PID/stat.
type procInfo struct {
	Comm  string
	State byte
	PPid  int
	Start uint64
}

func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	return parseProcStat(string(b))
}

// parseProcStat parses "PID (COMM) S PPID ... STARTTIME ...". COMM may hold
// spaces and parentheses, so it ends at the last ')'.
func parseProcStat(s string) (procInfo, bool) {
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procInfo{}, false
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); starttime is field 22, so f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procInfo{}, false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procInfo{}, false
	}
	return procInfo{Comm: s[open+1 : end], State: f[0][0], PPid: ppid, Start: st}, true
}

// alive reports whether the recorded process still runs: same pid, same
// start time, not a zombie (the lab's orphans belong to a PID 1 that may
// reap them late).
func alive(r pidRecord) bool {
	p, ok := readProc(r.Pid)
	return ok && p.Start == r.Start && p.State != 'Z' && p.State != 'X'
}

// livePid returns the pid recorded in path if that process is alive, else 0.
func livePid(path string) int {
	r, err := readPidFile(path)
	if err != nil || !alive(r) {
		return 0
	}
	return r.Pid
}

// procState returns the state letter of pid ('T' when stopped), 0 if gone.
func procState(pid int) byte {
	p, ok := readProc(pid)
	if !ok {
		return 0
	}
	return p.State
}

// gone reports whether pid has exited; zombies count as gone.
func gone(pid int) bool {
	p, ok := readProc(pid)
	return !ok || p.State == 'Z' || p.State == 'X'
}

// allProcs maps every live pid to its parent.
func allProcs() map[int]procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	m := make(map[int]procInfo, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok && p.State != 'Z' && p.State != 'X' {
			m[pid] = p
		}
	}
	return m
}

// descendants lists the live descendants of pid (PostgreSQL's and sshd's
// children call setsid, so a process group would miss them).
func descendants(pid int) []int {
	procs := allProcs()
	kids := map[int][]int{}
	for p, info := range procs {
		kids[info.PPid] = append(kids[info.PPid], p)
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

// nsInode is the inode of a named network namespace, 0 if it does not exist.
func nsInode(ns string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		return 0
	}
	return st.Ino
}

func nsExists(ns string) bool { return nsInode(ns) != 0 }

// pidsInNetns lists every live process whose network namespace is ns: the
// lab's daemons, their children, and whatever tests started there.
func pidsInNetns(ns string) []int {
	ino := nsInode(ns)
	if ino == 0 {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", ino)
	self := os.Getpid()
	var out []int
	for pid := range allProcs() {
		if pid == self {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && l == want {
			out = append(out, pid)
		}
	}
	return out
}

// waitGone polls until every pid has exited or ctx ends.
func waitGone(ctx context.Context, pids ...int) error {
	for {
		var left []int
		for _, p := range pids {
			if !gone(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pids %v still alive: %w", left, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killPids SIGKILLs pids (continuing stopped ones so the kill is delivered
// at once) and waits for them.
func killPids(ctx context.Context, pids []int) error {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return waitGone(wctx, pids...)
}

// daemon is a process this process started; exited closes when it ends
// (while this process lives to see it).
type daemon struct {
	pid    int
	exited chan struct{}
}

// spawn starts argv inside host's namespace as a daemon: its own session
// (no signal from the caller's terminal, it outlives the caller), stdin
// /dev/null, output appended to logFile, no pipe to this process (Icinga
// and the event handler would wait for a pipe to close). `ip netns exec`
// execs in place, so the pid is the daemon's. The pid and start time go to
// pidFile.
func spawn(host string, argv, env []string, dir, logFile, pidFile string) (*daemon, error) {
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", logFile, err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "---- pbxlab %s: starting %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	args := append([]string{"netns", "exec", Netns(host)}, argv...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}, env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	d := &daemon{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	info, ok := readProc(d.pid)
	if !ok {
		<-d.exited
		return nil, fmt.Errorf("%s exited at once; log %s:\n%s", argv[0], logFile, logTail(logFile))
	}
	if err := writePidFile(pidFile, pidRecord{Pid: d.pid, Start: info.Start}); err != nil {
		_ = syscall.Kill(d.pid, syscall.SIGKILL)
		return nil, err
	}
	return d, nil
}

// stopPid sends sig to the recorded process, waits up to grace for it and
// its descendants, then SIGKILLs what is left. A frozen process is
// continued so it can act on the signal.
func stopPid(ctx context.Context, pidFile string, sig syscall.Signal, grace time.Duration) error {
	r, err := readPidFile(pidFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		_ = os.Remove(pidFile)
		return nil
	}
	if !alive(r) {
		_ = os.Remove(pidFile)
		return nil
	}
	pids := append([]int{r.Pid}, descendants(r.Pid)...)
	_ = syscall.Kill(r.Pid, sig)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGCONT)
	}
	if grace > 0 {
		wctx, cancel := context.WithTimeout(ctx, grace)
		err = waitGone(wctx, pids...)
		cancel()
	} else {
		err = errors.New("no grace")
	}
	if err != nil {
		if err := killPids(context.WithoutCancel(ctx), append(pids, descendants(r.Pid)...)); err != nil {
			return fmt.Errorf("stopping pid %d (%s): %w", r.Pid, pidFile, err)
		}
	}
	_ = os.Remove(pidFile)
	return nil
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 1500 {
		s = "..." + s[len(s)-1500:]
	}
	return s
}
