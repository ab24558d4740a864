package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"pbxha/testharness/netnsdial"
)

// Host names as LAB.md gives them; the namespace is NsPrefix+host.
const (
	Node1    = "node1"
	Node2    = "node2"
	Infra    = "infra"
	Switch   = "sw"
	NsPrefix = "pbxlab-"
)

// Addresses and interfaces (LAB.md "Networks").
const (
	TelNet      = "192.0.2.0/24"
	InfraTelIP  = "192.0.2.1"
	VIP         = "192.0.2.10"
	VIPPrefix   = "192.0.2.10/24"
	ClusterNet  = "198.51.100.0/24"
	TelIface    = "tel0"
	ClusterFace = "clu0"
	Bridge      = "br0"
)

// Ports (LAB.md "Services").
const (
	SIPPort   = 5060
	AMIPort   = 5038
	RsyncPort = 873
	SSHPort   = 22
	NTPPort   = 123
	SMTPPort  = 25
)

// DefaultRoot is the lab root when $PBXLAB_ROOT is unset.
const DefaultRoot = "/tmp/pbxlab"

// stateName is the lab's own state file under the root (mode 0600: it
// holds the credentials).
const stateName = "lab.json"

// HostInfo describes one lab host.
type HostInfo struct {
	Name      string
	TelIP     string // "" for the switch
	ClusterIP string // "" for infra and the switch
}

// Hosts lists the hosts in the order status prints them.
var Hosts = []HostInfo{
	{Name: Node1, TelIP: "192.0.2.11", ClusterIP: "198.51.100.1"},
	{Name: Node2, TelIP: "192.0.2.12", ClusterIP: "198.51.100.2"},
	{Name: Infra, TelIP: InfraTelIP},
	{Name: Switch},
}

// Nodes are the two PBX nodes.
var Nodes = []string{Node1, Node2}

// Host returns the description of a host by name.
func Host(name string) (HostInfo, error) {
	for _, h := range Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return HostInfo{}, fmt.Errorf("unknown host %q (want node1, node2, infra or sw)", name)
}

// Netns is the namespace name of a host ("node1" -> "pbxlab-node1").
func Netns(host string) string { return NsPrefix + host }

// peerOf is the other node.
func peerOf(node string) string {
	if node == Node1 {
		return Node2
	}
	return Node1
}

func isNode(h string) bool { return h == Node1 || h == Node2 }

// Creds are the credentials generated at Up. The passwords are the same in
// both database engines (labdb makes one app user and one replication user).
type Creds struct {
	MySQLUser         string `json:"mysql_user"`
	MySQLPassword     string `json:"mysql_password"`
	MySQLReplUser     string `json:"mysql_repl_user"`
	MySQLReplPassword string `json:"mysql_repl_password"`
	PGUser            string `json:"pg_user"`
	PGPassword        string `json:"pg_password"`
	PGReplUser        string `json:"pg_repl_user"`
	PGReplPassword    string `json:"pg_repl_password"`
	AMIUser           string `json:"ami_user"`
	AMISecret         string `json:"ami_secret"`
	RsyncUser         string `json:"rsync_user"`
	RsyncPassword     string `json:"rsync_password"`
	// SSHKey is the path of the cluster's private key (both nodes accept it).
	SSHKey string `json:"ssh_key"`
}

// state is lab.json.
type state struct {
	Version int       `json:"version"`
	Root    string    `json:"root"`
	Bin     string    `json:"bin"`
	Created time.Time `json:"created"`
	Creds   Creds     `json:"creds"`
}

// Lab is a handle on a built lab. It holds no live resources: every method
// finds processes through their pid files, so handles in several processes
// see the same lab.
type Lab struct {
	root string
	st   state
	logf func(format string, args ...any)
}

// Root returns the lab root: $PBXLAB_ROOT or DefaultRoot.
func Root() string {
	if r := os.Getenv("PBXLAB_ROOT"); r != "" {
		return filepath.Clean(r)
	}
	return DefaultRoot
}

// ErrNoLab is returned by Attach when no lab is built under the root.
var ErrNoLab = errors.New("no lab is running")

// Attach returns the lab described under Root(). It starts nothing; it fails
// when the root holds no lab or the lab's namespaces are gone.
func Attach() (*Lab, error) { return AttachRoot(Root()) }

// AttachRoot is Attach for an explicit root.
func AttachRoot(root string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(root, stateName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w under %s (run `pbxlab up`)", ErrNoLab, root)
		}
		return nil, fmt.Errorf("reading the lab state: %w", err)
	}
	l := &Lab{root: root}
	if err := json.Unmarshal(b, &l.st); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(root, stateName), err)
	}
	if l.st.Version != 1 {
		return nil, fmt.Errorf("%s has version %d, want 1", filepath.Join(root, stateName), l.st.Version)
	}
	for _, h := range Hosts {
		if !nsExists(Netns(h.Name)) {
			return nil, fmt.Errorf("%w: namespace %s is missing (stale lab under %s: run `pbxlab up` to rebuild)", ErrNoLab, Netns(h.Name), root)
		}
	}
	return l, nil
}

// SetLogf sets where progress lines go (nil: nowhere).
func (l *Lab) SetLogf(f func(format string, args ...any)) { l.logf = f }

func (l *Lab) log(format string, args ...any) {
	if l.logf != nil {
		l.logf(format, args...)
	}
}

// RootDir is the lab's root folder.
func (l *Lab) RootDir() string { return l.root }

// Bin is the folder holding pbxlab and the other built binaries.
func (l *Lab) Bin() string { return l.st.Bin }

// Creds returns the generated credentials.
func (l *Lab) Creds() Creds { return l.st.Creds }

// HostDir is a host's folder under the root.
func (l *Lab) HostDir(host string) string { return filepath.Join(l.root, host) }

// ConfigPath is a node's cluster.toml.
func (l *Lab) ConfigPath(node string) string { return filepath.Join(l.root, node, "cluster.toml") }

// StatePath is a node's state file.
func (l *Lab) StatePath(node string) string {
	return filepath.Join(l.root, node, "state", "state.json")
}

// SyncDir is a node's synchronised directory (rsync module pbx).
func (l *Lab) SyncDir(node string) string { return filepath.Join(l.root, node, "sync") }

// DiskDir is where a node's small data disk (a tmpfs) is mounted.
func (l *Lab) DiskDir(node string) string { return filepath.Join(l.root, node, "disk") }

// Maildir is where the SMTP sink stores messages, one .eml file each.
func (l *Lab) Maildir() string { return filepath.Join(l.root, Infra, "maildir") }

// EnvFile is lab.env.
func (l *Lab) EnvFile() string { return filepath.Join(l.root, "lab.env") }

func (l *Lab) secretsDir() string { return filepath.Join(l.root, "secrets") }

func (l *Lab) secretFile(name string) string { return filepath.Join(l.secretsDir(), name) }

// Command returns an exec.Cmd that runs argv inside host's namespace (via
// `ip netns exec`, which execs in place). The caller may set Env, Stdin,
// Stdout... before running it.
func (l *Lab) Command(ctx context.Context, host string, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", Netns(host)}, argv...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Exec runs argv inside host's namespace and returns its combined output.
// A non-zero exit is an *exec.ExitError.
func (l *Lab) Exec(host string, argv ...string) ([]byte, error) {
	return l.ExecContext(context.Background(), host, argv...)
}

// ExecContext is Exec with a context.
func (l *Lab) ExecContext(ctx context.Context, host string, argv ...string) ([]byte, error) {
	if _, err := Host(host); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("exec: no command")
	}
	return l.Command(ctx, host, argv...).CombinedOutput()
}

// DialIn opens a connection from inside host's namespace, e.g.
// DialIn("infra", "tcp", "192.0.2.11:5038"). The address must be an IP.
func (l *Lab) DialIn(host, network, addr string) (net.Conn, error) {
	return DialIn(context.Background(), host, network, addr)
}

// DialIn is the package-level form of (*Lab).DialIn with a context.
func DialIn(ctx context.Context, host, network, addr string) (net.Conn, error) {
	if _, err := Host(host); err != nil {
		return nil, err
	}
	return netnsdial.DialContext(ctx, Netns(host), network, addr)
}

// Dialer returns a dial function for host's namespace, as the MySQL driver,
// pgx and beevik/ntp (via a small adapter) take it.
func Dialer(host string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return netnsdial.Dialer(Netns(host))
}

// WaitFor calls fn every 100 ms until it returns nil or ctx ends; without a
// deadline in ctx it gives up after 30 s. The error names desc and fn's last
// error.
func WaitFor(ctx context.Context, desc string, fn func() error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	start := time.Now()
	var last error
	for {
		if last = fn(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: gave up after %.1fs: %w", desc, time.Since(start).Seconds(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Env returns the variables of lab.env.
func (l *Lab) Env() map[string]string {
	c := l.st.Creds
	return map[string]string{
		"PBXLAB_NODE1_CONFIG":        l.ConfigPath(Node1),
		"PBXLAB_NODE2_CONFIG":        l.ConfigPath(Node2),
		"PBXLAB_MYSQL_USER":          c.MySQLUser,
		"PBXLAB_MYSQL_PASSWORD":      c.MySQLPassword,
		"PBXLAB_MYSQL_REPL_USER":     c.MySQLReplUser,
		"PBXLAB_MYSQL_REPL_PASSWORD": c.MySQLReplPassword,
		"PBXLAB_PG_USER":             c.PGUser,
		"PBXLAB_PG_PASSWORD":         c.PGPassword,
		"PBXLAB_AMI_USER":            c.AMIUser,
		"PBXLAB_AMI_SECRET":          c.AMISecret,
		"PBXLAB_SSH_KEY":             c.SSHKey,
		"PBXLAB_NODE1_SYNC_DIR":      l.SyncDir(Node1),
		"PBXLAB_NODE2_SYNC_DIR":      l.SyncDir(Node2),
		"PBXLAB_MAILDIR":             l.Maildir(),
		"PBXLAB_BIN":                 l.st.Bin,
	}
}

// envText renders lab.env: KEY=value lines, sorted, single-quoted where a
// shell would need it.
func envText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by `pbxlab up`; shell-sourceable. Secrets: keep this file 0600.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(m[k]))
	}
	return b.String()
}

func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:@,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
