package rsyncd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pbxha/lib/plugin"
)

// CanaryName is the file --canary writes into the module and reads back.
// check_pbx_fs_sync and the sync job should exclude it.
const CanaryName = ".pbxha-canary"

// DefaultRsync is the rsync binary --canary runs (found in $PATH).
const DefaultRsync = "rsync"

// CanaryOptions say where the canary goes.
type CanaryOptions struct {
	Rsync  string // the rsync binary; "" means DefaultRsync
	Host   string
	Port   int
	Module string
	// User and Password log in; an empty User is rsync's default ($USER),
	// an empty Password none.
	User, Password string
	// Debugf and Step as in Options.
	Debugf func(level int, format string, args ...any)
	Step   func(format string, args ...any)
}

func (o CanaryOptions) debugf(level int, format string, args ...any) {
	if o.Debugf != nil {
		o.Debugf(level, format, args...)
	}
}

func (o CanaryOptions) step(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	if o.Step != nil {
		o.Step("%s", s)
	}
	return s
}

// Canary is what the transfer showed.
type Canary struct {
	// Wrote: the canary was written and read back; false with Err nil
	// means the module is read-only and a canary already there was read.
	Wrote bool
	Took  time.Duration // the rsync runs together
	Bytes int
	Err   error
}

// CanaryError is a transfer the rsync binary reported as failed.
type CanaryError struct {
	Action string // "writing .pbxha-canary to module pbx"
	Exit   int    // rsync's exit code (-1: it did not run or was killed)
	Output string // its first error line, raw
}

func (e *CanaryError) Error() string {
	s := e.Action + " failed"
	if e.Exit > 0 {
		s += " (rsync exit " + strconv.Itoa(e.Exit) + ")"
	}
	if e.Output != "" {
		s += ": " + plugin.Clean(e.Output, 0)
	}
	return s
}

// ErrReadOnlyNoCanary: the module is read-only and holds no canary to read.
var ErrReadOnlyNoCanary = errors.New("the module is read-only and holds no " + CanaryName + " to read back (create one on the sending side)")

// RunCanary writes a fresh canary (a line with this host's name, the time
// and a random token) into the module with the rsync binary and reads it
// back, comparing the content. A read-only module cannot be written; then
// a canary already there is read. Each rsync runs in its own session, so
// that it cannot prompt for a password on a terminal, and its whole
// process group is killed when ctx ends.
func RunCanary(ctx context.Context, o CanaryOptions) (c Canary) {
	bin := o.Rsync
	if bin == "" {
		bin = DefaultRsync
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		c.Err = fmt.Errorf("--canary needs the rsync binary: %w", err)
		return c
	}
	dir, err := os.MkdirTemp("", "pbxha-canary-")
	if err != nil {
		c.Err = err
		return c
	}
	defer os.RemoveAll(dir)
	host, _ := os.Hostname()
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	content := fmt.Sprintf("pbxha canary from %s at %s %s\n", host, time.Now().UTC().Format(time.RFC3339Nano), hex.EncodeToString(token))
	local := filepath.Join(dir, CanaryName)
	if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
		c.Err = err
		return c
	}
	remote := canaryURL(o)

	start := time.Now()
	action := o.step("writing %s to module %s with rsync", CanaryName, plugin.Clean(o.Module, 64))
	out, code, err := runRsync(ctx, path, o, local, remote)
	c.Took = time.Since(start)
	readOnly := false
	if err != nil || code != 0 {
		if e := classify(ctx, action, start, out, code, err, o); !isReadOnly(out) {
			c.Err = e
			return c
		}
		readOnly = true
		o.debugf(1, "module %s is read-only: reading the canary that is there", plugin.Clean(o.Module, 64))
	}

	back := filepath.Join(dir, "readback")
	action = o.step("reading %s back from module %s with rsync", CanaryName, plugin.Clean(o.Module, 64))
	start = time.Now()
	out, code, err = runRsync(ctx, path, o, remote, back)
	c.Took += time.Since(start)
	if err != nil || code != 0 {
		if readOnly && missing(out) {
			c.Err = ErrReadOnlyNoCanary
			return c
		}
		c.Err = classify(ctx, action, start, out, code, err, o)
		return c
	}
	got, err := os.ReadFile(back)
	if err != nil {
		c.Err = err
		return c
	}
	c.Bytes = len(got)
	if !readOnly {
		c.Wrote = true
		if string(got) != content {
			c.Err = fmt.Errorf("the canary read back differs from the one written (%d bytes, %s): another writer, or the module's path is not what it seems", len(got), quote(string(got), 60))
		}
	}
	return c
}

// canaryURL is rsync://[user@]host:port/module/.pbxha-canary.
func canaryURL(o CanaryOptions) string {
	user := ""
	if o.User != "" {
		user = o.User + "@"
	}
	return "rsync://" + user + net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) + "/" + o.Module + "/" + CanaryName
}

// maxOutput bounds what is kept of rsync's output.
const maxOutput = 16 << 10

// runRsync copies src to dst. The password goes in RSYNC_PASSWORD, never
// on the command line; it is set, if empty, whatever the caller's
// environment holds, so rsync never falls back to asking for one.
func runRsync(ctx context.Context, path string, o CanaryOptions, src, dst string) (string, int, error) {
	args := []string{"--ignore-times", "--no-motd"}
	if dl, ok := ctx.Deadline(); ok {
		// rsync's own limits, so it gives up with a message before the
		// kill; whole seconds, at least one.
		secs := strconv.Itoa(max(1, int(time.Until(dl).Seconds())))
		args = append(args, "--timeout="+secs, "--contimeout="+secs)
	}
	args = append(args, "--", src, dst)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 500 * time.Millisecond
	cmd.Env = append(cleanEnv(os.Environ()), "RSYNC_PASSWORD="+o.Password)
	var buf limitedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	o.debugf(2, "running %s %s", path, strings.Join(args, " "))
	err := cmd.Run()
	out := scrub(buf.String(), &Credentials{Password: o.Password})
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return out, ee.ExitCode(), nil
	}
	if err != nil {
		return out, -1, err
	}
	return out, 0, nil
}

// cleanEnv drops what would change where or how rsync connects, or which
// password it sends.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "RSYNC_PASSWORD", "RSYNC_PROXY", "RSYNC_CONNECT_PROG", "RSYNC_PORT":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// classify turns a failed run into the error to report.
func classify(ctx context.Context, action string, start time.Time, out string, code int, err error, o CanaryOptions) error {
	if ctx.Err() != nil {
		return &StepError{Step: action, Err: ctx.Err(), Timeout: true, Waited: time.Since(start)}
	}
	if err != nil {
		return &CanaryError{Action: action, Exit: -1, Output: err.Error()}
	}
	first := firstError(out)
	switch {
	case strings.Contains(first, "@ERROR: auth failed"):
		return &AuthError{Module: o.Module, User: o.User, Message: errorText(first), NoPassword: o.Password == ""}
	case strings.Contains(first, "@ERROR: Unknown module"):
		return &UnknownModuleError{Module: o.Module, Message: errorText(first)}
	}
	return &CanaryError{Action: action, Exit: code, Output: first}
}

// firstError is the line of rsync's output that says what went wrong: the
// daemon's @ERROR, else rsync's first complaint, else the first line.
func firstError(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if i := strings.Index(l, ErrorPrefix); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "rsync:") || strings.HasPrefix(l, "ERROR:") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[0])
}

// isReadOnly: the daemon refused the upload because the module is
// "read only = yes" (rsync prints "ERROR: module is read only").
func isReadOnly(out string) bool { return strings.Contains(out, "module is read only") }

// missing: the file asked for is not there.
func missing(out string) bool {
	return strings.Contains(out, "No such file or directory") || strings.Contains(out, "link_stat")
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
