package filesync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pbxha/lib/config"
	"pbxha/lib/rsyncd"
)

// Defaults of Options.
const (
	DefaultRsync     = "rsync"
	DefaultPort      = 873
	DefaultIOTimeout = 60 * time.Second // rsync --timeout: no data moving for this long
	ConnectTimeout   = 10 * time.Second // rsync --contimeout
	// WaitDelay is how long rsync's pipes may stay open after its kill.
	WaitDelay = 2 * time.Second
)

// Options say where and how the dirs are pushed.
type Options struct {
	Rsync     string        // the rsync binary; "" is DefaultRsync in $PATH
	Host      string        // "" is the peer's cluster_ip
	Port      int           // 0 is DefaultPort
	DryRun    bool          // rsync --dry-run: what would be transferred and deleted
	IOTimeout time.Duration // 0 is DefaultIOTimeout
	// Logf, when set, gets one line per rsync run (never the password).
	Logf func(format string, args ...any)
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// DirResult is the push of one synced dir.
type DirResult struct {
	Dir   string
	Dest  string // rsync://[user@]host:port/module/rel/ (no password)
	Stats Stats
	Took  time.Duration
	// KeptExtra: the dir is empty here, so it was pushed without --delete
	// (an unmounted spool must not wipe the slave's copy).
	KeptExtra bool
	// Vanished: files vanished while rsync sent them (exit 24): normal for
	// a live spool, the next run takes the rest.
	Vanished bool
	Err      error
}

// Summary is a whole push.
type Summary struct {
	Peer   string // host:port
	Module string
	DryRun bool
	Dirs   []DirResult
	Took   time.Duration
}

// Totals sums the dirs that were pushed.
func (s Summary) Totals() Stats {
	var t Stats
	for _, d := range s.Dirs {
		if d.Err == nil {
			t = t.Add(d.Stats)
		}
	}
	return t
}

// Failed counts the dirs whose push failed.
func (s Summary) Failed() int {
	n := 0
	for _, d := range s.Dirs {
		if d.Err != nil {
			n++
		}
	}
	return n
}

// String is the summary on one line, e.g. "1 dir to rsync://pbxsync@
// 198.51.100.2:873/pbx: 3 files transferred (1234 bytes), 0 deleted, 12
// files in the dirs, in 0.210s".
func (s Summary) String() string {
	t := s.Totals()
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s to module %s on %s: ", len(s.Dirs), plural(len(s.Dirs), "dir", "dirs"), s.Module, s.Peer)
	verb, del := "transferred", "deleted"
	if s.DryRun {
		verb, del = "to transfer", "to delete"
	}
	fmt.Fprintf(&b, "%d %s %s (%d bytes), %d %s, %d %s in the dirs", t.Transferred, plural(int(t.Transferred), "file", "files"), verb, t.TransferredSize, t.Deleted, del, t.Files, plural(int(t.Files), "entry", "entries"))
	if f := s.Failed(); f > 0 {
		fmt.Fprintf(&b, ", %d failed", f)
	}
	var notes []string
	for _, d := range s.Dirs {
		if d.Err == nil && d.KeptExtra {
			notes = append(notes, d.Dir+" is empty here: nothing deleted on the peer")
		}
		if d.Err == nil && d.Vanished {
			notes = append(notes, "some files in "+d.Dir+" vanished while sent")
		}
	}
	fmt.Fprintf(&b, ", in %.3fs", s.Took.Seconds())
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Target is where one synced dir goes in the module.
type Target struct {
	Dir string // the dir here, cleaned
	Rel string // its path below the module's ("." for the module itself)
}

// Targets maps the [sync] dirs to the module: below the deepest directory
// they have in common (see the package doc). The dirs must be absolute and
// distinct.
func Targets(dirs []string) ([]Target, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no [sync] dirs in the config: nothing to push")
	}
	var clean []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("[sync] dirs: %q is not an absolute path", d)
		}
		c := filepath.Clean(d)
		if seen[c] {
			return nil, fmt.Errorf("[sync] dirs: %q is listed twice", d)
		}
		seen[c] = true
		clean = append(clean, c)
	}
	root := clean[0]
	for _, c := range clean[1:] {
		for !within(root, c) {
			root = filepath.Dir(root)
		}
	}
	out := make([]Target, len(clean))
	for i, c := range clean {
		rel, err := filepath.Rel(root, c)
		if err != nil {
			return nil, err
		}
		out[i] = Target{Dir: c, Rel: rel}
	}
	return out, nil
}

// within: p is root or below it.
func within(root, p string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

// RsyncExcludes turns [sync] excludes into rsync's --exclude patterns with
// check_pbx_fs_sync's meaning (a pattern with '/' anchored at the synced
// dir), with the canary first.
func RsyncExcludes(patterns []string) []string {
	out := []string{rsyncd.CanaryName}
	for _, p := range patterns {
		if strings.Contains(strings.TrimSuffix(p, "/"), "/") && !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		out = append(out, p)
	}
	return out
}

// Push pushes every [sync] dir of cfg into the peer's module, one rsync run
// per dir, in order. A dir that fails does not stop the others (but the end
// of ctx does); the error names every failed dir. The Summary holds what
// was done either way.
func Push(ctx context.Context, cfg *config.Config, o Options) (Summary, error) {
	start := time.Now()
	s := Summary{Module: cfg.Sync.RsyncModule, DryRun: o.DryRun}
	host := o.Host
	if host == "" {
		p := cfg.Peer()
		if p == nil {
			return s, fmt.Errorf("%s: cannot tell the peer: this node is not one of [[nodes]] (set node = \"...\")", cfg.Path())
		}
		if p.ClusterIP == "" {
			return s, fmt.Errorf("%s: the peer %s has no cluster_ip", cfg.Path(), p.Name)
		}
		host = p.ClusterIP
	}
	port := o.Port
	if port == 0 {
		port = DefaultPort
	}
	s.Peer = net.JoinHostPort(host, strconv.Itoa(port))
	if s.Module == "" {
		return s, fmt.Errorf("%s: [sync] rsync_module is empty", cfg.Path())
	}
	targets, err := Targets(cfg.Sync.Dirs)
	if err != nil {
		return s, err
	}
	bin := o.Rsync
	if bin == "" {
		bin = DefaultRsync
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return s, fmt.Errorf("the sync needs the rsync binary (Debian package rsync): %w", err)
	}
	password := ""
	if cfg.Sync.RsyncPassword.IsSet() {
		if password, err = cfg.Sync.RsyncPassword.Value(); err != nil {
			return s, err
		}
	}
	user := ""
	if cfg.Sync.RsyncUser != "" {
		user = cfg.Sync.RsyncUser + "@"
	}
	excludes := RsyncExcludes(cfg.Sync.Excludes)
	var errs []error
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		dest := "rsync://" + user + s.Peer + "/" + s.Module + "/"
		if t.Rel != "." {
			dest += filepath.ToSlash(t.Rel) + "/"
		}
		r := pushDir(ctx, path, t, dest, password, excludes, o)
		s.Dirs = append(s.Dirs, r)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Dir, r.Err))
		}
	}
	if err := ctx.Err(); err != nil && len(s.Dirs) < len(targets) {
		errs = append(errs, fmt.Errorf("%d of %d dirs not pushed: %w", len(targets)-len(s.Dirs), len(targets), cause(ctx)))
	}
	s.Took = time.Since(start)
	if len(errs) == 0 {
		return s, nil
	}
	return s, joined(errs)
}

// joined is errors.Join on one line.
type joined []error

func (j joined) Error() string {
	var parts []string
	for _, e := range j {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

func (j joined) Unwrap() []error { return j }

func cause(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return ctx.Err()
}

// pushDir runs rsync for one dir.
func pushDir(ctx context.Context, path string, t Target, dest, password string, excludes []string, o Options) (r DirResult) {
	r.Dir, r.Dest = t.Dir, dest
	start := time.Now()
	defer func() { r.Took = time.Since(start) }()
	st, err := os.Stat(t.Dir)
	if err != nil {
		r.Err = fmt.Errorf("not pushed: %w", err)
		return r
	}
	if !st.IsDir() {
		r.Err = errors.New("not pushed: not a directory")
		return r
	}
	empty, err := isEmpty(t.Dir)
	if err != nil {
		r.Err = fmt.Errorf("not pushed: %w", err)
		return r
	}
	r.KeptExtra = empty

	args := []string{"-a", "--stats", "--no-human-readable", "--no-motd"}
	if !empty {
		args = append(args, "--delete")
	}
	if o.DryRun {
		args = append(args, "--dry-run")
	}
	if t.Rel != "." {
		args = append(args, "--mkpath")
	}
	iot := o.IOTimeout
	if iot <= 0 {
		iot = DefaultIOTimeout
	}
	ct := ConnectTimeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		iot, ct = min(iot, left), min(ct, left)
	}
	args = append(args, "--timeout="+secs(iot), "--contimeout="+secs(ct))
	for _, e := range excludes {
		args = append(args, "--exclude="+e)
	}
	args = append(args, "--", t.Dir+"/", dest)

	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = WaitDelay
	// The password in the environment, never on the command line; set
	// even when empty, so rsync never falls back to asking. LC_ALL=C: the
	// messages in English, as they are matched.
	cmd.Env = append(cleanEnv(os.Environ()), "RSYNC_PASSWORD="+password, "LC_ALL=C")
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	o.logf("running %s %s", path, strings.Join(args, " "))
	err = cmd.Run()
	out, errOut := scrub(stdout.String(), password), scrub(stderr.String(), password)
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Err = fmt.Errorf("rsync stopped after %s: %w", time.Since(start).Round(time.Millisecond), cause(ctx))
		return r
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		r.Err = fmt.Errorf("running rsync: %w", err)
		return r
	}
	switch code {
	case 0:
	case 24:
		r.Vanished = true
	default:
		r.Err = rsyncError(code, errOut)
		r.Stats, _ = ParseStats(out)
		return r
	}
	r.Stats, err = ParseStats(out)
	if err != nil {
		r.Err = err
	}
	return r
}

// secs is a whole number of seconds, at least one.
func secs(d time.Duration) string { return strconv.Itoa(max(1, int(d.Seconds()))) }

func isEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return true, nil
}

// RsyncError is a run rsync itself reported as failed.
type RsyncError struct {
	Exit    int
	Meaning string // rsync's own words for the exit code
	Message string // rsync's first error line
}

func (e *RsyncError) Error() string {
	s := "rsync exit " + strconv.Itoa(e.Exit)
	if e.Meaning != "" {
		s += " (" + e.Meaning + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// exitMeaning is rsync(1)'s EXIT VALUES.
var exitMeaning = map[int]string{
	1: "syntax or usage error", 2: "protocol incompatibility", 3: "errors selecting input/output files, dirs",
	4: "requested action not supported", 5: "error starting client-server protocol",
	10: "error in socket I/O", 11: "error in file I/O", 12: "error in rsync protocol data stream",
	13: "errors with program diagnostics", 14: "error in IPC code", 20: "received SIGUSR1 or SIGINT",
	21: "some error returned by waitpid()", 22: "error allocating core memory buffers",
	23: "partial transfer due to error", 25: "the --max-delete limit stopped deletions",
	30: "timeout in data send/receive", 35: "timeout waiting for daemon connection",
}

func rsyncError(code int, stderr string) error {
	return &RsyncError{Exit: code, Meaning: exitMeaning[code], Message: firstError(stderr)}
}

// firstError is the line that says what went wrong: the daemon's @ERROR,
// else rsync's first complaint, else the first line; cleaned and bounded.
func firstError(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	pick := strings.TrimSpace(lines[0])
	found := false
	for _, l := range lines {
		if i := strings.Index(l, "@ERROR"); i >= 0 {
			pick, found = strings.TrimSpace(l[i:]), true
			break
		}
	}
	if !found {
		for _, l := range lines {
			if strings.HasPrefix(l, "rsync:") || strings.HasPrefix(l, "ERROR:") || strings.HasPrefix(l, "rsync error:") {
				pick = strings.TrimSpace(l)
				break
			}
		}
	}
	return oneLine(pick, 300)
}

// oneLine keeps printable characters, at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '|' {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// cleanEnv drops what would change where or how rsync connects, or which
// password it sends.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "RSYNC_PASSWORD", "RSYNC_PROXY", "RSYNC_CONNECT_PROG", "RSYNC_PORT", "RSYNC_RSH", "RSYNC_OLD_ARGS", "RSYNC_PROTECT_ARGS", "LC_ALL":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// scrub removes the password from rsync's output (it never prints it; this
// is the belt to that brace).
func scrub(s, password string) string {
	if len(password) < 4 {
		return s
	}
	return strings.ReplaceAll(s, password, "[secret]")
}

// maxOutput bounds what is kept of each of rsync's streams: the --stats
// block is at the end of stdout, so the tail is kept.
const maxOutput = 64 << 10

// limitedBuffer keeps the first and the last maxOutput/2 bytes.
type limitedBuffer struct {
	head, tail bytes.Buffer
	cut        bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := maxOutput/2 - l.head.Len(); room > 0 {
		k := min(len(p), room)
		l.head.Write(p[:k])
		p = p[k:]
	}
	if len(p) > 0 {
		l.tail.Write(p)
		if over := l.tail.Len() - maxOutput/2; over > 0 {
			l.tail.Next(over)
			l.cut = true
		}
	}
	return n, nil
}

func (l *limitedBuffer) String() string {
	if l.cut {
		// Start the tail at a line.
		t := l.tail.String()
		if i := strings.IndexByte(t, '\n'); i >= 0 {
			t = t[i+1:]
		}
		return l.head.String() + "\n[...]\n" + t
	}
	return l.head.String() + l.tail.String()
}
