package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where a node's config lives.
const DefaultPath = "/etc/pbxha/cluster.toml"

// Defaults for keys that may be left out.
const (
	DefaultStateFile = "/var/lib/pbxha/state.json"
	DefaultRunDir    = "/run/pbxha"
	DefaultSpoolDir  = "/var/spool/pbxha"
)

// Config is the whole file.
type Config struct {
	ClusterID        string   `toml:"cluster_id"`
	Node             string   `toml:"node"` // this node's name; default: the hostname
	StateFile        string   `toml:"state_file"`
	RunDir           string   `toml:"run_dir"`
	AdminEmail       string   `toml:"admin_email"`
	FailoverServices []string `toml:"failover_services"`

	VIP       VIP       `toml:"vip"`
	Nodes     []Node    `toml:"nodes"`
	Services  []Service `toml:"services"`
	MySQL     *Database `toml:"mysql"`
	PgSQL     *Database `toml:"pgsql"`
	Sync      Sync      `toml:"sync"`
	SSH       SSH       `toml:"ssh"`
	SMTP      SMTP      `toml:"smtp"`
	AMI       AMI       `toml:"ami"`
	SIP       SIP       `toml:"sip"`
	NTP       NTP       `toml:"ntp"`
	Disk      Disk      `toml:"disk"`
	Failover  Failover  `toml:"failover"`
	Telephony Telephony `toml:"telephony"`
	// omitempty: a lab or tool that writes a config without it writes no
	// [notify] table, so older binaries still read the file.
	Notify Notify `toml:"notify,omitempty"`

	path string
}

// VIP is the address phones and gateways use; it lives on the master.
type VIP struct {
	Address   string `toml:"address"`   // CIDR, e.g. 192.0.2.10/24
	Interface string `toml:"interface"` // telephony interface it is bound to
}

// Node is one of the two cluster members.
type Node struct {
	Name               string `toml:"name"`
	TelephonyIP        string `toml:"telephony_ip"`
	ClusterIP          string `toml:"cluster_ip"`
	TelephonyInterface string `toml:"telephony_interface"`
	ClusterInterface   string `toml:"cluster_interface"`
}

// Service is one PBX service the master must run. Where systemd is PID 1 the
// unit is checked; otherwise processes are matched by exact name or by a
// regular expression over the full command line.
type Service struct {
	Name    string   `toml:"name"`    // label in output
	Unit    string   `toml:"unit"`    // systemd unit, e.g. asterisk.service
	Process string   `toml:"process"` // exact process name (comm / argv[0] base)
	Cmdline string   `toml:"cmdline"` // regexp over the full command line
	Count   string   `toml:"count"`   // expected count as a range; default "1:"
	Start   []string `toml:"start"`   // argv to start it (failover)
	Stop    []string `toml:"stop"`    // argv to stop it (failover)
}

// Database is one engine's connection settings.
type Database struct {
	Host         string `toml:"host"`
	Port         int    `toml:"port"`
	Database     string `toml:"database"`
	User         string `toml:"user"`
	Password     Secret `toml:"password"`
	ReplUser     string `toml:"repl_user"`
	ReplPassword Secret `toml:"repl_password"`
	TLS          string `toml:"tls"` // disable, preferred, required, verify
	CA           string `toml:"ca"`
	// Commands to stop/start the local server, for demotion and rejoin.
	Start []string `toml:"start"`
	Stop  []string `toml:"stop"`
	// DataDir is the server's data directory (PostgreSQL rejoin).
	DataDir string `toml:"data_dir"`
}

// Sync is the file synchronisation from master to slave.
type Sync struct {
	Dirs          []string `toml:"dirs"`
	Excludes      []string `toml:"excludes"`
	RsyncModule   string   `toml:"rsync_module"`
	RsyncUser     string   `toml:"rsync_user"`
	RsyncPassword Secret   `toml:"rsync_password"`
}

// SSH is how a node reaches its peer over the cluster network.
type SSH struct {
	User    string `toml:"user"`
	Port    int    `toml:"port"`
	KeyFile string `toml:"key_file"`
	// CheckKeyFile is the checks' key (they run as nagios): the peer pins
	// it to `pbxha-peer --read-only`, so it can read state, time, probes
	// and manifests but never demote or promote. Empty: the checks use
	// KeyFile, which nagios must then be able to read.
	CheckKeyFile   string   `toml:"check_key_file"`
	KnownHosts     string   `toml:"known_hosts"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	// Command is the path of pbxha-peer on the nodes: each node's
	// authorized_keys pins the cluster key to it (command="...",restrict),
	// and the client sends only a subcommand of its fixed grammar, never a
	// shell string. Used by the docs and the lab to write that line.
	Command string `toml:"command"`
}

// SMTP is where the admin's mail goes; no local MTA is needed.
type SMTP struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"`
	From     string `toml:"from"`
	Username string `toml:"username"`
	Password Secret `toml:"password"`
	TLS      string `toml:"tls"` // none, starttls (opportunistic), tls
	SpoolDir string `toml:"spool_dir"`
}

// AMI is the Asterisk Manager Interface login of check_pbx_ami.
type AMI struct {
	Host   string `toml:"host"`
	Port   int    `toml:"port"`
	User   string `toml:"user"`
	Secret Secret `toml:"secret"`
}

// SIP is what check_pbx_sip probes.
type SIP struct {
	Host      string `toml:"host"`
	Port      int    `toml:"port"`
	Transport string `toml:"transport"`
}

// NTP lists the servers check_pbx_time asks.
type NTP struct {
	Servers []string `toml:"servers"`
}

// Disk lists the mounts check_pbx_disk watches (default: every real one).
type Disk struct {
	Paths []string `toml:"paths"`
}

// Failover tunes the event handler.
type Failover struct {
	MaxPromoteLag Duration `toml:"max_promote_lag"`
	GARPCount     int      `toml:"garp_count"`
	GARPInterval  Duration `toml:"garp_interval"`
	// FenceCommand isolates or powers off the old master when a promote
	// takes the VIP without that node confirming its demotion (it was cut
	// off, or hung): STONITH, e.g. a switch-port shutdown (fence_ifmib)
	// or a power-off (fence_ipmilan). Run without a shell, with PBXHA_PEER,
	// PBXHA_PEER_TELEPHONY_IP and PBXHA_PEER_CLUSTER_IP in its environment;
	// exit 0 means fenced. Empty: no such fence (a frozen master's kernel
	// then answers ARP for the VIP until it thaws and is demoted).
	FenceCommand []string `toml:"fence_command"`
	// UnfenceCommand undoes FenceCommand once the old master confirmed it
	// is no longer master (a switch port re-enabled); empty for a power
	// fence.
	UnfenceCommand []string `toml:"unfence_command"`
	// FenceTimeout bounds each of them (default 10s).
	FenceTimeout Duration `toml:"fence_timeout"`
}

// Telephony lists what check_pbx_net_failover probes from both nodes
// (gateways, SIP trunks' addresses, the phone network's router).
type Telephony struct {
	Targets []string `toml:"targets"`
}

// Notify tunes pbxha-notify's mails.
type Notify struct {
	// IcingaWeb2URL is the base of Icinga Web 2 (e.g.
	// https://monitor.example.net/icingaweb2); when set, each notification
	// links to its host or service there, as Icinga's own mail scripts do.
	IcingaWeb2URL string `toml:"icingaweb2_url"`
}

// Duration reads "3s", "1m30s" from TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 3s, 1m)", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes it back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Path is the file the config was read from ("" when built in code).
func (c *Config) Path() string { return c.path }

// Load reads and validates the config. path "" means $PBXHA_CONFIG, then
// DefaultPath. With explicit=false a missing file is not an error: Load
// returns (nil, nil), so a check given everything on flags needs no file.
func Load(path string, explicit bool) (*Config, error) {
	if path == "" {
		path = os.Getenv("PBXHA_CONFIG")
		explicit = explicit || path != ""
	}
	if path == "" {
		path = DefaultPath
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(b, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates config text; name is used in messages.
func Parse(b []byte, name string) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: line %d: %s", name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s", name, strings.Join(keys, ", "))
	}
	c.path = name
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.StateFile == "" {
		c.StateFile = DefaultStateFile
	}
	if c.RunDir == "" {
		c.RunDir = DefaultRunDir
	}
	if c.SMTP.SpoolDir == "" {
		c.SMTP.SpoolDir = DefaultSpoolDir
	}
	if c.SMTP.Port == 0 {
		c.SMTP.Port = 25
	}
	if c.SSH.Port == 0 {
		c.SSH.Port = 22
	}
	if c.SSH.User == "" {
		c.SSH.User = "root"
	}
	if c.SSH.ConnectTimeout.Duration == 0 {
		c.SSH.ConnectTimeout.Duration = 3 * time.Second
	}
	if c.AMI.Port == 0 {
		c.AMI.Port = 5038
	}
	if c.SIP.Port == 0 {
		c.SIP.Port = 5060
	}
	if c.MySQL != nil && c.MySQL.Port == 0 {
		c.MySQL.Port = 3306
	}
	if c.PgSQL != nil && c.PgSQL.Port == 0 {
		c.PgSQL.Port = 5432
	}
	if c.Sync.RsyncModule == "" {
		c.Sync.RsyncModule = "pbx"
	}
	if c.Failover.MaxPromoteLag.Duration == 0 {
		c.Failover.MaxPromoteLag.Duration = 30 * time.Second
	}
	if c.Failover.GARPCount == 0 {
		c.Failover.GARPCount = 5
	}
	if c.Failover.GARPInterval.Duration == 0 {
		c.Failover.GARPInterval.Duration = time.Second
	}
	if c.Failover.FenceTimeout.Duration == 0 {
		c.Failover.FenceTimeout.Duration = 10 * time.Second
	}
	for i := range c.Services {
		if c.Services[i].Count == "" {
			c.Services[i].Count = "1:"
		}
	}
}

// Validate checks the config; the first problem is returned, naming the
// file and key.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", c.path, key, fmt.Sprintf(format, args...))
	}
	if len(c.Nodes) != 0 && len(c.Nodes) != 2 {
		return bad("nodes", "a cluster has exactly two nodes, found %d", len(c.Nodes))
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		key := fmt.Sprintf("nodes[%d]", i)
		if n.Name == "" {
			return bad(key+".name", "missing")
		}
		if seen[n.Name] {
			return bad(key+".name", "%q appears twice", n.Name)
		}
		seen[n.Name] = true
		for k, ip := range map[string]string{"telephony_ip": n.TelephonyIP, "cluster_ip": n.ClusterIP} {
			if ip == "" {
				continue
			}
			if _, err := netip.ParseAddr(ip); err != nil {
				return bad(key+"."+k, "%q is not an IP address", ip)
			}
		}
	}
	if c.Node != "" && len(c.Nodes) > 0 && !seen[c.Node] {
		return bad("node", "%q is not one of the nodes", c.Node)
	}
	if c.VIP.Address != "" {
		if _, err := netip.ParsePrefix(c.VIP.Address); err != nil {
			return bad("vip.address", "%q is not an address with prefix length (e.g. 192.0.2.10/24)", c.VIP.Address)
		}
	}
	for i, s := range c.Services {
		key := fmt.Sprintf("services[%d]", i)
		if s.Name == "" {
			return bad(key+".name", "missing")
		}
		if s.Unit == "" && s.Process == "" && s.Cmdline == "" {
			return bad(key, "service %q needs unit, process or cmdline", s.Name)
		}
	}
	for _, d := range []struct {
		key string
		db  *Database
	}{{"mysql", c.MySQL}, {"pgsql", c.PgSQL}} {
		if d.db == nil {
			continue
		}
		if d.db.Port < 0 || d.db.Port > 65535 {
			return bad(d.key+".port", "%d is not a port", d.db.Port)
		}
		switch d.db.TLS {
		case "", "disable", "preferred", "required", "verify":
		default:
			return bad(d.key+".tls", "%q is not one of disable, preferred, required, verify", d.db.TLS)
		}
	}
	switch c.SMTP.TLS {
	case "", "none", "starttls", "tls":
	default:
		return bad("smtp.tls", "%q is not one of none, starttls, tls", c.SMTP.TLS)
	}
	if u := c.Notify.IcingaWeb2URL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return bad("notify.icingaweb2_url", "%q is not an http(s) URL (e.g. https://monitor.example.net/icingaweb2)", u)
		}
	}
	if len(c.Failover.UnfenceCommand) > 0 && len(c.Failover.FenceCommand) == 0 {
		return bad("failover.unfence_command", "set without failover.fence_command")
	}
	for _, k := range []struct {
		key  string
		argv []string
	}{{"failover.fence_command", c.Failover.FenceCommand}, {"failover.unfence_command", c.Failover.UnfenceCommand}} {
		if len(k.argv) > 0 && k.argv[0] == "" {
			return bad(k.key, "the first word is the program and is empty")
		}
	}
	if c.Failover.FenceTimeout.Duration < 0 {
		return bad("failover.fence_timeout", "negative")
	}
	for _, k := range []struct {
		key string
		s   *Secret
	}{
		{"smtp.password", &c.SMTP.Password}, {"ami.secret", &c.AMI.Secret},
		{"sync.rsync_password", &c.Sync.RsyncPassword},
	} {
		k.s.key = k.key
		k.s.cfg = c.path
	}
	if c.MySQL != nil {
		c.MySQL.Password.key, c.MySQL.Password.cfg = "mysql.password", c.path
		c.MySQL.ReplPassword.key, c.MySQL.ReplPassword.cfg = "mysql.repl_password", c.path
	}
	if c.PgSQL != nil {
		c.PgSQL.Password.key, c.PgSQL.Password.cfg = "pgsql.password", c.path
		c.PgSQL.ReplPassword.key, c.PgSQL.ReplPassword.cfg = "pgsql.repl_password", c.path
	}
	return nil
}

// Self is this node's entry: the one named by `node`, else the one whose
// name is the hostname. nil when neither is found.
func (c *Config) Self() *Node {
	name := c.Node
	if name == "" {
		name, _ = os.Hostname()
	}
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i]
		}
	}
	return nil
}

// Peer is the other node (nil when Self is unknown).
func (c *Config) Peer() *Node {
	self := c.Self()
	if self == nil {
		return nil
	}
	for i := range c.Nodes {
		if c.Nodes[i].Name != self.Name {
			return &c.Nodes[i]
		}
	}
	return nil
}

// IsFailoverService reports whether an Icinga service name is failover
// class.
func (c *Config) IsFailoverService(name string) bool {
	for _, s := range c.FailoverServices {
		if s == name {
			return true
		}
	}
	return false
}

// Encode writes a config as TOML (the lab writes each node's file with it).
// Secrets are written inline only when they were set inline.
func Encode(c *Config) ([]byte, error) {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
