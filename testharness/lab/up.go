package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"pbxha/lib/cluster"
	"pbxha/testharness/labdb"
)

// Options configure Up and Down.
type Options struct {
	// Root is the lab root; "" means Root().
	Root string
	// Bin is the folder holding pbxlab (and the other built binaries);
	// "" finds it (see FindBin).
	Bin string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

func (o *Options) root() string {
	if o.Root == "" {
		return Root()
	}
	return filepath.Clean(o.Root)
}

// Up builds the lab under Root() and starts every service, or returns the
// running lab when a healthy one is there. A stale or broken lab is torn
// down first.
func Up(ctx context.Context) (*Lab, error) { return UpWith(ctx, Options{}) }

// UpWith is Up with options.
func UpWith(ctx context.Context, o Options) (*Lab, error) {
	root := o.root()
	if l, err := AttachRoot(root); err == nil {
		l.logf = o.Logf
		if err := l.Healthy(ctx); err == nil {
			l.log("a healthy lab already runs under %s", root)
			return l, nil
		} else {
			l.log("the lab under %s is broken (%s); rebuilding it", root, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if leftovers(root) {
		if err := DownWith(ctx, Options{Root: root, Logf: o.Logf}); err != nil {
			return nil, fmt.Errorf("clearing the stale lab: %w", err)
		}
	}
	bin := o.Bin
	if bin == "" {
		var err error
		if bin, err = FindBin(ctx); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	l := &Lab{root: root, logf: o.Logf}
	l.st = state{Version: 1, Root: root, Bin: bin, Created: time.Now().UTC()}
	l.st.Creds = l.generateCreds()
	if err := l.build(ctx); err != nil {
		l.log("up failed after %.1fs: %v", time.Since(t0).Seconds(), err)
		if os.Getenv("PBXLAB_KEEP_FAILED") != "" {
			return nil, fmt.Errorf("%w (PBXLAB_KEEP_FAILED: left as it is; `pbxlab down` clears it)", err)
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if derr := DownWith(dctx, Options{Root: root, Logf: o.Logf}); derr != nil {
			err = errors.Join(err, fmt.Errorf("and tearing down: %w", derr))
		}
		return nil, err
	}
	l.log("lab up in %.1fs", time.Since(t0).Seconds())
	return l, nil
}

func (l *Lab) build(ctx context.Context) error {
	if err := os.MkdirAll(l.root, 0o755); err != nil {
		return err
	}
	// PostgreSQL runs as postgres and must traverse the root.
	if err := os.Chmod(l.root, 0o755); err != nil {
		return err
	}
	if err := l.saveState(); err != nil {
		return err
	}
	step := time.Now()
	if err := setupNetwork(ctx); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	l.log("network: namespaces and links in %.1fs", time.Since(step).Seconds())
	for _, n := range Nodes {
		if err := mountDisk(l.DiskDir(n)); err != nil {
			return err
		}
	}
	for _, f := range []func() error{l.writeSecrets, l.writeSSHKeys, l.writeStaticConfigs, l.seedSync, l.writeInitialStates} {
		if err := f(); err != nil {
			return err
		}
	}
	for _, n := range Nodes {
		if err := os.MkdirAll(filepath.Join(l.root, n, "ami"), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.Maildir(), 0o755); err != nil {
		return err
	}

	// The databases take longest; the other services start meanwhile.
	var dbErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, dbErr = labdb.Up(ctx, l.labdbConfig())
	})
	svcErr := l.startInitial(ctx)
	wg.Wait()
	if err := errors.Join(svcErr, dbErr); err != nil {
		return err
	}
	if err := l.writeNodeFiles(); err != nil {
		return err
	}
	if err := l.shareWithNagios(); err != nil {
		return err
	}
	return writeFile0600(l.EnvFile(), envText(l.Env()))
}

// initialServices are the services that run in the healthy initial state.
func initialServices() []service {
	var out []service
	for _, s := range services() {
		if s.DB != "" || (s.PBX && s.Host != Node1) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// startInitial starts every lab-run service of the initial state, in
// parallel.
func (l *Lab) startInitial(ctx context.Context) error {
	svcs := initialServices()
	errs := make([]error, len(svcs))
	var wg sync.WaitGroup
	for i, s := range svcs {
		wg.Go(func() { errs[i] = l.StartService(ctx, s.Host, s.Name) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) saveState() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	return writeFile0600(filepath.Join(l.root, stateName), string(b)+"\n")
}

// FindBin locates the folder with the pbxlab binary: $PBXLAB_BIN, then
// $PBXHA_BIN, then this program's own folder when it is pbxlab, then the
// module's bin/ (building pbxlab there when it is missing, as `make build`
// would).
func FindBin(ctx context.Context) (string, error) {
	for _, env := range []string{"PBXLAB_BIN", "PBXHA_BIN"} {
		if d := os.Getenv(env); d != "" {
			if isExec(filepath.Join(d, "pbxlab")) {
				return filepath.Abs(d)
			}
		}
	}
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "pbxlab" {
		return filepath.Dir(exe), nil
	}
	out, err := runOut(ctx, "go", "env", "GOMOD")
	gomod := strings.TrimSpace(out)
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("cannot find the pbxlab binary: set PBXLAB_BIN, or run from inside the module (`go env GOMOD`: %v)", err)
	}
	bin := filepath.Join(filepath.Dir(gomod), "bin")
	if !isExec(filepath.Join(bin, "pbxlab")) {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "pbxlab"), "./testharness/cmd/pbxlab")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building pbxlab: %w: %s", err, out)
		}
	}
	return bin, nil
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// leftovers reports whether anything of a lab exists: the root, a
// namespace, a mount under the root.
func leftovers(root string) bool {
	if _, err := os.Stat(root); err == nil {
		return true
	}
	for _, h := range Hosts {
		if nsExists(Netns(h.Name)) {
			return true
		}
	}
	return len(mountsUnder(root)) > 0
}

// Down tears down the lab under Root(); see DownWith.
func Down(ctx context.Context) error { return DownWith(ctx, Options{}) }

// DownWith stops every process of the lab (the databases gracefully, the
// rest by pid, then whatever is left in the namespaces), unmounts the
// nodes' disks, deletes the namespaces (and with them every link) and
// removes the root. It works on a half-built or crashed lab too, and
// leaves nothing behind.
func DownWith(ctx context.Context, o Options) error {
	root := o.root()
	t0 := time.Now()
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// Frozen processes cannot act on a shutdown signal.
	for _, h := range Hosts {
		for _, p := range pidsInNetns(Netns(h.Name)) {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
	}
	var errs []error
	var mu sync.Mutex
	addErr := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	if c, err := labdb.Attach(root, o.Logf); err == nil {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := c.Down(sctx); err != nil {
				logf("databases: %v (the namespace sweep kills what is left)", err)
			}
		})
	}
	pidFiles, _ := filepath.Glob(filepath.Join(root, "*", "run", "*.pid"))
	for _, pf := range pidFiles {
		wg.Go(func() { addErr(stopPid(ctx, pf, syscall.SIGTERM, 3*time.Second)) })
	}
	wg.Wait()
	// Whatever still runs inside a lab namespace belongs to the lab: a
	// check a test started, a database child, an Icinga.
	for _, h := range Hosts {
		if pids := pidsInNetns(Netns(h.Name)); len(pids) > 0 {
			logf("%s: killing %d leftover processes %v", h.Name, len(pids), pids)
			addErr(killPids(ctx, pids))
		}
	}
	for _, m := range mountsUnder(root) {
		if err := syscall.Unmount(m, 0); err != nil {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				addErr(fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	addErr(deleteNamespaces(ctx))
	if err := os.RemoveAll(root); err != nil {
		addErr(fmt.Errorf("removing %s: %w", root, err))
	}
	removeRunSSHD()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logf("lab down in %.1fs", time.Since(t0).Seconds())
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// mountsUnder lists mount points at or below root, deepest first.
func mountsUnder(root string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == root || strings.HasPrefix(mp, root+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DiskSize is the size of each node's data disk.
const DiskSize = 64 << 20

func mountDisk(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("pbxlab-disk", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", DiskSize)); err != nil {
		return fmt.Errorf("mounting the data disk at %s: %w", dir, err)
	}
	return nil
}

// Reset brings the lab back to its initial healthy state without
// rebuilding it: every fault undone, node1 master with the VIP and the PBX
// services, node2 slave, replication running, both state files at epoch 1,
// configs, sync dirs, spools and the maildir as `up` left them. Icinga
// instances the tests started are stopped.
func (l *Lab) Reset(ctx context.Context) error {
	t0 := time.Now()
	var dbErr error
	var wg sync.WaitGroup
	// Thaw first: a frozen database cannot be reset.
	for _, h := range Hosts {
		l.thaw(h.Name)
	}
	// A fence watch left by a promote would act on the roles the reset
	// restores (pbxha-eventhandler fence-watch writes its pid file).
	for _, n := range Nodes {
		l.killFenceWatch(n)
	}
	// Links first: the database reset below talks over the cluster network
	// (a base backup from node1), and must not race their return.
	if err := restoreLinks(ctx); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	wg.Go(func() {
		c, err := l.db()
		if err != nil {
			dbErr = err
			return
		}
		dbErr = c.Reset(ctx)
	})
	err := l.resetRest(ctx)
	wg.Wait()
	if err := errors.Join(err, dbErr); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	l.log("reset in %.1fs", time.Since(t0).Seconds())
	return nil
}

// restoreLinks brings every link up and every switch port back into the
// switch, and forgets the neighbours the cut-off links left unresolved (an
// entry in FAILED state can refuse the first connect after the link's
// return).
func restoreLinks(ctx context.Context) error {
	for _, h := range Hosts[:3] {
		if err := setLink(ctx, h.Name, "all", true); err != nil {
			return err
		}
		if h.TelIP != "" && !SwitchPortEnabled(ctx, h.Name) {
			if err := SetSwitchPort(ctx, h.Name, true); err != nil {
				return err
			}
		}
	}
	for _, h := range Hosts {
		if h.Name == Switch {
			continue
		}
		if err := ipCmd(ctx, "-n", Netns(h.Name), "neigh", "flush", "nud", "failed"); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) resetRest(ctx context.Context) error {
	for _, n := range Nodes {
		if err := l.DiskFill(n, 0); err != nil {
			return err
		}
		if err := l.StopIcinga(ctx, n); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(l.root, n, "ami", "fault"), []byte("none\n"), 0o644); err != nil {
			return err
		}
	}
	if err := l.StopService(ctx, Node2, SvcKamailio); err != nil {
		return err
	}
	if err := l.StopService(ctx, Node2, SvcAMI); err != nil {
		return err
	}
	if l.sipCode(Node1) != 200 || l.sipCode(Node2) != 200 {
		for _, n := range Nodes {
			if err := l.SetSIPCode(ctx, n, 200); err != nil {
				return err
			}
		}
	}
	if l.ntpOffset() != 0 {
		if err := l.SetNTPOffset(ctx, 0); err != nil {
			return err
		}
	}
	if err := placeVIP(ctx, Node1); err != nil {
		return err
	}
	if err := l.startInitial(ctx); err != nil {
		return err
	}
	if err := l.writeNodeFiles(); err != nil {
		return err
	}
	if err := l.writeInitialStates(); err != nil {
		return err
	}
	if err := l.shareWithNagios(); err != nil {
		return err
	}
	if err := l.seedSync(); err != nil {
		return err
	}
	for _, n := range Nodes {
		for _, d := range []string{filepath.Join(l.root, n, "spool"), filepath.Join(l.root, n, "run", "pbxha")} {
			if err := emptyDir(d); err != nil {
				return err
			}
		}
	}
	return emptyDir(l.Maildir())
}

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return os.MkdirAll(dir, 0o755)
		}
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// SetRole writes node's state file (for tests that stage a situation).
func (l *Lab) SetRole(node, role string, epoch uint64, reason string) error {
	if !isNode(node) {
		return fmt.Errorf("%q is not a node", node)
	}
	return cluster.WriteState(l.StatePath(node), cluster.State{Node: node, Role: role, Epoch: epoch, Since: time.Now().UTC(), Reason: reason})
}

// removeRunSSHD removes sshd's privilege separation dir, which the lab's
// sshd needed, when it is empty and no sshd runs anywhere on the machine:
// the system's sshd gets it from systemd (RuntimeDirectory) when it starts.
func removeRunSSHD() {
	for _, p := range allProcs() {
		if p.Comm == "sshd" {
			return
		}
	}
	_ = os.Remove("/run/sshd") // fails unless empty
}

// killFenceWatch kills node's pbxha-eventhandler fence-watch, if one runs.
func (l *Lab) killFenceWatch(node string) {
	b, err := os.ReadFile(filepath.Join(l.root, node, "run", "pbxha", "fence-watch.pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
