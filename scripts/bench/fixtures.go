package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// procName is the command name both process checks look for. A copy of
// /bin/sleep under this name is unlikely to collide with anything else
// running, so both sides count exactly one process.
const procName = "pbxbenchd"

// fixtures holds what the pairs share. Each *Why field is empty when that
// piece is ready, else it says why the pair shows n/a.
type fixtures struct {
	tmp      string
	notes    []string
	failover string // the Failover section (failover.go), "" when not run
	stops    []func()

	ntpPort int
	ntpWhy  string

	procWhy string

	goFloor    string
	goFloorWhy string

	checkRaid  string
	raidWhy    string
	emptySysfs string
	mdstatWhy  string
}

func (f *fixtures) note(format string, a ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, a...))
}

func (f *fixtures) setup(ctx context.Context, o options) {
	if err := f.startChrony(ctx); err != nil {
		f.ntpWhy = "chronyd: " + err.Error()
	}
	if err := f.startProc(ctx); err != nil {
		f.procWhy = procName + ": " + err.Error()
	}
	f.emptySysfs = filepath.Join(f.tmp, "sys")
	if err := os.Mkdir(f.emptySysfs, 0o755); err != nil {
		f.mdstatWhy = err.Error()
	}
	if _, err := os.Stat(o.mdstat); err != nil {
		f.mdstatWhy = "fixture: " + err.Error()
	}
	if err := f.buildGoFloor(ctx); err != nil {
		f.goFloorWhy = "minimal Go program: " + err.Error()
	}
	if err := f.patchCheckRaid(o); err != nil {
		f.raidWhy = "check_raid: " + err.Error()
	}
}

// close stops what setup started, in reverse order, and waits for each so
// no process outlives the harness.
func (f *fixtures) close() {
	for i := len(f.stops) - 1; i >= 0; i-- {
		f.stops[i]()
	}
}

// track makes close stop cmd: SIGTERM, then SIGKILL after 3 s, and reap it.
// The returned channel closes when the process has exited.
func (f *fixtures) track(cmd *exec.Cmd) <-chan struct{} {
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	f.stops = append(f.stops, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return exited
}

// startChrony runs a chronyd that serves NTP on a free loopback port from
// its local clock: both time checks then ask the same server, and nothing
// leaves the machine. -x keeps it from touching the system clock.
func (f *fixtures) startChrony(ctx context.Context) error {
	path, err := exec.LookPath("chronyd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/chronyd", "/sbin/chronyd"} {
			if executable(p) {
				path, err = p, nil
				break
			}
		}
		if err != nil {
			return errors.New("not installed")
		}
	}
	port, err := freeUDPPort()
	if err != nil {
		return err
	}
	dir := filepath.Join(f.tmp, "chrony")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "chrony.conf")
	text := fmt.Sprintf(`port %d
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 8
cmdport 0
pidfile %s/chronyd.pid
driftfile %s/chrony.drift
`, port, dir, dir)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	// -u root: the files live in our temp dir, which the packaged
	// _chrony user may not be able to write.
	cmd := exec.CommandContext(ctx, path, "-d", "-x", "-u", "root", "-f", conf)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := f.track(cmd)

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited at start: %s", strings.TrimSpace(lastLines(log.String(), 3)))
		default:
		}
		if stratum, err := sntpProbe(fmt.Sprintf("127.0.0.1:%d", port)); err == nil && stratum > 0 && stratum < 16 {
			f.ntpPort = port
			f.note("time: chronyd %s on 127.0.0.1:%d (local stratum 8, -x), answering at stratum %d.", chronyVersion(path), port, stratum)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("did not answer on loopback within 15 s")
}

func chronyVersion(path string) string {
	out, err := exec.Command(path, "-v").Output()
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(out))
	if len(fields) >= 4 {
		return fields[3]
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// sntpProbe sends one client request and returns the server's stratum; a
// server that answers with stratum 0 or 16 is not yet serving time.
func sntpProbe(addr string) (int, error) {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI 0, version 4, mode client
	binary.BigEndian.PutUint64(req[40:], uint64(time.Now().UnixNano()))
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	resp := make([]byte, 128)
	n, err := c.Read(resp)
	if err != nil {
		return 0, err
	}
	if n < 48 || resp[0]&7 != 4 {
		return 0, errors.New("not an NTP server reply")
	}
	return int(resp[1]), nil
}

// startProc runs the process both process checks count.
func (f *fixtures) startProc(ctx context.Context) error {
	src, err := os.ReadFile("/bin/sleep")
	if err != nil {
		return err
	}
	dir := filepath.Join(f.tmp, "proc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, procName)
	if err := os.WriteFile(path, src, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, "3600")
	if err := cmd.Start(); err != nil {
		return err
	}
	f.track(cmd)
	f.note("services: both sides look for one process named %s (a copy of /bin/sleep, pid %d) started by the harness.", procName, cmd.Process.Pid)
	return nil
}

// patchCheckRaid copies Debian's check_raid with its one mdstat path
// replaced by the fixture's. The plan was to bind-mount the fixture over
// /proc/mdstat inside unshare -m; that cannot work where the md driver is
// not loaded, because /proc/mdstat does not exist and procfs refuses new
// files. The copy reads the same bytes through the same code, with no
// wrapper cost on either side.
func (f *fixtures) patchCheckRaid(o options) error {
	src := filepath.Join(o.peers, "check_raid")
	text, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%s not installed (nagios-plugins-contrib)", src)
	}
	const real = "/proc/mdstat"
	if c := bytes.Count(text, []byte("'"+real+"'")); c != 1 {
		return fmt.Errorf("expected one '%s' in %s, found %d: cannot point it at the fixture", real, src, c)
	}
	abs, err := filepath.Abs(o.mdstat)
	if err != nil {
		return err
	}
	text = bytes.Replace(text, []byte("'"+real+"'"), []byte("'"+abs+"'"), 1)
	f.checkRaid = filepath.Join(f.tmp, "check_raid")
	if err := os.WriteFile(f.checkRaid, text, 0o755); err != nil {
		return err
	}
	why := "bind mount over /proc/mdstat was not needed"
	if _, err := os.Stat(real); err != nil {
		why = "a bind mount over /proc/mdstat is impossible here: " + real + " does not exist (md driver not loaded) and procfs cannot create it"
	}
	f.note("raid: both read %s. The peer is a copy of %s with its one '%s' string replaced by the fixture path (%s); run with -p mdstat so it does the same work as our --source md. No unshare wrapper on either side, so no baseline is subtracted.", abs, src, real, why)
	return nil
}

// buildGoFloor builds a Go program that does nothing, with the Makefile's
// flags, so the table shows what the Go runtime's start and exit cost on
// this machine before any check code runs.
func (f *fixtures) buildGoFloor(ctx context.Context) error {
	dir := filepath.Join(f.tmp, "gofloor")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"go.mod":  "module gofloor\n\ngo 1.21\n",
		"main.go": "package main\n\nfunc main() {}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	out := filepath.Join(dir, "gofloor")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, lastLines(string(b), 2))
	}
	f.goFloor = out
	f.note("floor: a Go program whose main is empty, built with -trimpath -ldflags '-s -w' by the harness's go, beside /bin/true: the cost of starting and ending any Go process here (reference only, not judged).")
	return nil
}
