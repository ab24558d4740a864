package labdb

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Engine names a database server kind; it is also the folder name under a
// node's Root and the second half of a Pids key.
type Engine string

// The two engines of the lab.
const (
	MariaDB    Engine = "mariadb"
	PostgreSQL Engine = "postgresql"
)

// Engines lists both, in the order labdb reports them.
var Engines = []Engine{MariaDB, PostgreSQL}

// Ports and the database name, fixed by LAB.md.
const (
	MariaDBPort    = 3306
	PostgreSQLPort = 5432
	Database       = "pbx"
)

// Timeouts of single operations; ctx deadlines shorten them further.
var (
	StartTimeout = 60 * time.Second // start until the server answers a query
	StopTimeout  = 20 * time.Second // shutdown signal until SIGKILL
	ReplTimeout  = 60 * time.Second // until a replica has caught up
)

// DefaultClientHosts are the addresses the lab's database users may log in
// from (LAB.md): 127.0.0.1, the VIP, both nodes' telephony and cluster IPs.
var DefaultClientHosts = []string{"127.0.0.1", "192.0.2.10", "192.0.2.11", "192.0.2.12", "198.51.100.1", "198.51.100.2"}

// Node is one lab host as far as the databases are concerned.
type Node struct {
	Name      string // "node1": the key in Pids, the argument of Kill and Start
	Netns     string // network namespace the servers run in; "" runs them in the caller's
	Root      string // this node's directory; the engines live in Root/mariadb and Root/postgresql
	ClusterIP string // where the peer's replica connects to this node
}

// Creds are the two database users, the same in both engines.
type Creds struct {
	AppUser      string `json:"app_user"`
	AppPassword  string `json:"app_password"`
	ReplUser     string `json:"repl_user"`
	ReplPassword string `json:"repl_password"`
}

// GenerateCreds returns the lab's user names with fresh random passwords.
func GenerateCreds() Creds {
	return Creds{AppUser: "pbx", AppPassword: randomPassword(), ReplUser: "repl", ReplPassword: randomPassword()}
}

func randomPassword() string {
	return rand.Text() // base32: safe in SQL literals, conninfo, config files and shells
}

// Config is what Up needs.
type Config struct {
	// StateDir receives labdb.json, which Attach reads back.
	StateDir string
	// Primary becomes the primary of both engines, Replica their replica.
	Primary, Replica Node
	Creds            Creds
	// ClientHosts are the addresses users may log in from; nil means
	// DefaultClientHosts. The nodes' ClusterIPs are always added.
	ClientHosts []string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any) `json:"-"`
}

// StateFile is the name of the state file in Config.StateDir.
const StateFile = "labdb.json"

// state is labdb.json: everything a later process needs.
type state struct {
	Version     int      `json:"version"`
	Nodes       [2]Node  `json:"nodes"` // [0] is the initial primary
	Creds       Creds    `json:"creds"`
	ClientHosts []string `json:"client_hosts"`
}

// Cluster is a handle on the four servers. Its methods may be called from
// several goroutines, but the lab never acts on it concurrently and labdb
// does not serialise its operations.
type Cluster struct {
	stateDir string
	st       state
	logMu    sync.Mutex
	logf     func(format string, args ...any)
}

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	userRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,31}$`)
	// Passwords end up in SQL literals, PostgreSQL conninfo strings inside a
	// config file, and my.cnf: a character set that needs no quoting in any
	// of them avoids three escaping schemes.
	passRE = regexp.MustCompile(`^[A-Za-z0-9_.~+=-]{8,64}$`)
)

func (cfg *Config) validate() error {
	if !filepath.IsAbs(cfg.StateDir) {
		return fmt.Errorf("labdb: StateDir %q is not an absolute path", cfg.StateDir)
	}
	for _, n := range []Node{cfg.Primary, cfg.Replica} {
		if !nameRE.MatchString(n.Name) {
			return fmt.Errorf("labdb: node name %q is not a short lower-case name", n.Name)
		}
		if !filepath.IsAbs(n.Root) {
			return fmt.Errorf("labdb: %s: Root %q is not an absolute path", n.Name, n.Root)
		}
		if net.ParseIP(n.ClusterIP) == nil {
			return fmt.Errorf("labdb: %s: ClusterIP %q is not an IP address", n.Name, n.ClusterIP)
		}
		// The PostgreSQL socket path is the longest; sun_path holds 107 bytes.
		if sock := filepath.Join(n.Root, "postgresql", "run", ".s.PGSQL.5432"); len(sock) > 100 {
			return fmt.Errorf("labdb: %s: Root %q is too long for a unix socket path (%s)", n.Name, n.Root, sock)
		}
	}
	if cfg.Primary.Name == cfg.Replica.Name || filepath.Clean(cfg.Primary.Root) == filepath.Clean(cfg.Replica.Root) {
		return fmt.Errorf("labdb: primary and replica need distinct names and roots")
	}
	c := cfg.Creds
	for _, u := range []string{c.AppUser, c.ReplUser} {
		if !userRE.MatchString(u) || u == "postgres" || u == "root" {
			return fmt.Errorf("labdb: user name %q must be a lower-case identifier and not postgres or root", u)
		}
	}
	if c.AppUser == c.ReplUser {
		return fmt.Errorf("labdb: AppUser and ReplUser must differ")
	}
	for _, p := range []string{c.AppPassword, c.ReplPassword} {
		if !passRE.MatchString(p) {
			return fmt.Errorf("labdb: a password must be 8-64 characters of A-Z a-z 0-9 _ . ~ + = -")
		}
	}
	for _, h := range cfg.ClientHosts {
		if net.ParseIP(h) == nil {
			return fmt.Errorf("labdb: client host %q is not an IP address", h)
		}
	}
	return nil
}

// Up builds both engines on both nodes from scratch and returns when the
// replicas have caught up. See the package documentation.
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hosts := cfg.ClientHosts
	if hosts == nil {
		hosts = DefaultClientHosts
	}
	hosts = uniq(append(append([]string{}, hosts...), cfg.Primary.ClusterIP, cfg.Replica.ClusterIP))
	c := &Cluster{
		stateDir: cfg.StateDir,
		st: state{
			Version:     1,
			Nodes:       [2]Node{cfg.Primary, cfg.Replica},
			Creds:       cfg.Creds,
			ClientHosts: hosts,
		},
		logf: cfg.Logf,
	}
	start := time.Now()
	if err := c.clearStale(ctx); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("labdb: creating %s failed: %w", c.stateDir, err)
	}
	// The state goes to disk before any server starts, so a failed or
	// interrupted Up can be cleaned up by Attach+Down from another process.
	if err := c.save(); err != nil {
		return nil, err
	}
	err := parallel(
		func() error { return c.upMariaDB(ctx) },
		func() error { return c.upPostgreSQL(ctx) },
	)
	if err != nil {
		c.log("up failed, stopping what was started: %v", err)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopTimeout+10*time.Second)
		defer cancel()
		if derr := c.Down(sctx); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	c.log("up: both engines replicating after %.1fs", time.Since(start).Seconds())
	return c, nil
}

// clearStale stops servers a previous Up left behind, found either through
// an old state file or through the pid files under the new roots, then
// removes the engines' folders.
func (c *Cluster) clearStale(ctx context.Context) error {
	if old, err := Attach(c.stateDir, c.logf); err == nil {
		if err := old.Down(ctx); err != nil {
			return fmt.Errorf("labdb: stopping the previous lab's databases failed: %w", err)
		}
	}
	var errs []error
	for i := range c.st.Nodes {
		for _, e := range Engines {
			s := c.server(i, e)
			if pid := running(s); pid != 0 {
				c.log("%s: stopping stale server pid %d", s.Key(), pid)
				errs = append(errs, c.stopServer(ctx, s))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := range c.st.Nodes {
		for _, e := range Engines {
			if err := os.RemoveAll(c.server(i, e).Dir); err != nil {
				return fmt.Errorf("labdb: removing %s failed: %w", c.server(i, e).Dir, err)
			}
		}
	}
	return nil
}

// Attach returns the cluster a previous Up described in stateDir. It starts
// nothing; logf may be nil.
func Attach(stateDir string, logf func(format string, args ...any)) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("labdb: reading the lab's database state failed: %w", err)
	}
	c := &Cluster{stateDir: stateDir, logf: logf}
	if err := json.Unmarshal(b, &c.st); err != nil {
		return nil, fmt.Errorf("labdb: parsing %s failed: %w", filepath.Join(stateDir, StateFile), err)
	}
	if c.st.Version != 1 {
		return nil, fmt.Errorf("labdb: %s has version %d, want 1", filepath.Join(stateDir, StateFile), c.st.Version)
	}
	return c, nil
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c.st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.stateDir, StateFile), append(b, '\n'), 0o600)
}

// Creds returns the users and passwords.
func (c *Cluster) Creds() Creds { return c.st.Creds }

// Nodes returns the initial primary and replica.
func (c *Cluster) Nodes() (primary, replica Node) { return c.st.Nodes[0], c.st.Nodes[1] }

// Pids maps "NODE/ENGINE" (e.g. "node1/mariadb") to the running server's
// pid, 0 for a server that is not running. All four keys are present.
func (c *Cluster) Pids() map[string]int {
	m := make(map[string]int, 4)
	for i := range c.st.Nodes {
		for _, e := range Engines {
			s := c.server(i, e)
			m[s.Key()] = running(s)
		}
	}
	return m
}

// Server describes one server's files and commands.
func (c *Cluster) Server(node string, e Engine) (Server, error) {
	i, err := c.nodeIndex(node)
	if err != nil {
		return Server{}, err
	}
	if e != MariaDB && e != PostgreSQL {
		return Server{}, fmt.Errorf("labdb: unknown engine %q (want mariadb or postgresql)", e)
	}
	return c.server(i, e), nil
}

func (c *Cluster) nodeIndex(node string) (int, error) {
	for i, n := range c.st.Nodes {
		if n.Name == node {
			return i, nil
		}
	}
	return 0, fmt.Errorf("labdb: unknown node %q (want %s or %s)", node, c.st.Nodes[0].Name, c.st.Nodes[1].Name)
}

// Down stops all four servers by pid, in parallel. Files stay; the caller
// removes the roots.
func (c *Cluster) Down(ctx context.Context) error {
	var fns []func() error
	for i := range c.st.Nodes {
		for _, e := range Engines {
			s := c.server(i, e)
			fns = append(fns, func() error { return c.stopServer(ctx, s) })
		}
	}
	return parallel(fns...)
}

// Stop shuts one server down gracefully (SIGKILL after StopTimeout).
func (c *Cluster) Stop(ctx context.Context, node string, e Engine) error {
	s, err := c.Server(node, e)
	if err != nil {
		return err
	}
	return c.stopServer(ctx, s)
}

// Kill crashes one server: SIGKILL to it and its children at once, then
// waits until they are gone. Killing a stopped server is not an error.
func (c *Cluster) Kill(ctx context.Context, node string, e Engine) error {
	s, err := c.Server(node, e)
	if err != nil {
		return err
	}
	pid := running(s)
	if pid == 0 {
		c.log("%s: not running, nothing to kill", s.Key())
		return nil
	}
	c.log("%s: SIGKILL pid %d and its children", s.Key(), pid)
	return killTree(ctx, pid)
}

// Start starts one server if it is not running and waits until it answers a
// query. A MariaDB server that has a replication source configured comes
// back read-only (the config file does not know the node's role).
func (c *Cluster) Start(ctx context.Context, node string, e Engine) error {
	i, err := c.nodeIndex(node)
	if err != nil {
		return err
	}
	if e != MariaDB && e != PostgreSQL {
		return fmt.Errorf("labdb: unknown engine %q (want mariadb or postgresql)", e)
	}
	return c.ensureRunning(ctx, i, e)
}

func (c *Cluster) ensureRunning(ctx context.Context, i int, e Engine) error {
	if e == MariaDB {
		return c.mdbEnsureRunning(ctx, i)
	}
	return c.pgEnsureRunning(ctx, i)
}

// Reset brings the databases back to the initial roles without rebuilding
// what is healthy: the first node primary and writable, the second its
// read-only replica, caught up. A server that is down is started; a replica
// that diverged (it was promoted and written to) is rebuilt from the primary,
// which takes a few seconds. The primary's data wins.
func (c *Cluster) Reset(ctx context.Context) error {
	start := time.Now()
	err := parallel(
		func() error { return c.mdbReset(ctx) },
		func() error { return c.pgReset(ctx) },
	)
	if err != nil {
		return err
	}
	c.log("reset done in %.1fs", time.Since(start).Seconds())
	return nil
}

// WaitReplicating returns when both replicas replicate from the first node
// and have applied everything the primaries had when it was called.
func (c *Cluster) WaitReplicating(ctx context.Context) error {
	return parallel(
		func() error { return c.mdbWaitReplicating(ctx) },
		func() error { return c.pgWaitReplicating(ctx) },
	)
}

func (c *Cluster) log(format string, args ...any) {
	if c.logf == nil {
		return
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	c.logf("labdb: "+format, args...)
}

// parallel runs fns concurrently and joins their errors.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("labdb: writing %s failed: %w", tmp, err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps an old file's mode
		return fmt.Errorf("labdb: chmod %s failed: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("labdb: renaming %s failed: %w", tmp, err)
	}
	return nil
}

// deadline bounds ctx by d.
func deadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// sqlQuote makes a single-quoted SQL literal of a value validated by passRE
// or userRE, or of an IP address; none of them contain quotes.
func sqlQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
