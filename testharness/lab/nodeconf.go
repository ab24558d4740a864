package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/testharness/labdb"
)

// FailoverServices are the Icinga services of failover class in the lab's
// configs (DESIGN.md "Checks"). The lab has no RAID, but pbx_raid is failover
// class (icinga-conf gives it the failover template) so that the hand-over
// after a local failure on the master can be triggered as Icinga would.
var FailoverServices = []string{"pbx_master_alive", "pbx_cluster", "pbx_net_failover", "pbx_raid"}

// NodeConfig builds node's cluster.toml content as the lab describes it.
func (l *Lab) NodeConfig(node string) (*config.Config, error) {
	if !isNode(node) {
		return nil, fmt.Errorf("%q is not a node", node)
	}
	dir := filepath.Join(l.root, node)
	c := l.st.Creds
	pbxlab := filepath.Join(l.st.Bin, "pbxlab")
	svc := func(verb, name string) []string {
		return []string{pbxlab, "service", "--root", l.root, verb, node, name}
	}
	cfg := &config.Config{
		ClusterID:        "pbxlab",
		Node:             node,
		StateFile:        l.StatePath(node),
		RunDir:           filepath.Join(dir, "run", "pbxha"),
		AdminEmail:       "pbx-admin@example.net",
		FailoverServices: FailoverServices,
		VIP:              config.VIP{Address: VIPPrefix, Interface: TelIface},
		Services: []config.Service{
			{
				Name: SvcKamailio,
				// Every namespace sees every process; the config path tells
				// this node's Kamailio from the peer's.
				Cmdline: regexp.QuoteMeta("kamailio -f " + filepath.Join(dir, "kamailio", "kamailio.cfg")),
				Start:   svc("start", SvcKamailio),
				Stop:    svc("stop", SvcKamailio),
			},
			{
				Name:    SvcAMI,
				Cmdline: regexp.QuoteMeta("pbxlab serve-ami --node " + node + " "),
				Start:   svc("start", SvcAMI),
				Stop:    svc("stop", SvcAMI),
			},
		},
		Sync: config.Sync{
			Dirs:          []string{l.SyncDir(node)},
			Excludes:      []string{"*.tmp"},
			RsyncModule:   "pbx",
			RsyncUser:     c.RsyncUser,
			RsyncPassword: config.FromFile(l.secretFile("rsync.pw")),
		},
		SSH: config.SSH{
			User:           "root",
			Port:           SSHPort,
			KeyFile:        c.SSHKey,
			CheckKeyFile:   l.CheckKey(),
			KnownHosts:     l.KnownHosts(),
			ConnectTimeout: config.Duration{Duration: 3 * time.Second},
			Command:        l.PeerCommand(), // what authorized_keys pins the key to
		},
		SMTP: config.SMTP{
			Host:     InfraTelIP,
			Port:     SMTPPort,
			From:     "pbxha@" + node + ".example.net",
			TLS:      "none",
			SpoolDir: filepath.Join(dir, "spool"),
		},
		AMI:       config.AMI{Host: "127.0.0.1", Port: AMIPort, User: c.AMIUser, Secret: config.FromFile(l.secretFile("ami.secret"))},
		SIP:       config.SIP{Host: VIP, Port: SIPPort, Transport: "udp"},
		NTP:       config.NTP{Servers: []string{InfraTelIP}},
		Disk:      config.Disk{Paths: []string{l.DiskDir(node)}},
		Telephony: config.Telephony{Targets: []string{InfraTelIP}},
		Failover: config.Failover{
			MaxPromoteLag: config.Duration{Duration: 30 * time.Second},
			GARPCount:     3,
			GARPInterval:  config.Duration{Duration: 300 * time.Millisecond},
			// STONITH as a switch-port fence: the old master's telephony
			// port taken out of the switch until it has demoted.
			FenceCommand:   []string{pbxlab, "switch-port", peerOf(node), "disable"},
			UnfenceCommand: []string{pbxlab, "switch-port", peerOf(node), "enable"},
			FenceTimeout:   config.Duration{Duration: 5 * time.Second},
		},
	}
	for _, h := range Hosts[:2] {
		cfg.Nodes = append(cfg.Nodes, config.Node{
			Name: h.Name, TelephonyIP: h.TelIP, ClusterIP: h.ClusterIP,
			TelephonyInterface: TelIface, ClusterInterface: ClusterFace,
		})
	}
	// The database servers' files and commands come from labdb's state.
	cl, err := labdb.Attach(l.root, nil)
	if err != nil {
		return nil, err
	}
	for _, e := range labdb.Engines {
		s, err := cl.Server(node, e)
		if err != nil {
			return nil, err
		}
		db := &config.Database{
			Host: "127.0.0.1", Database: labdb.Database, TLS: "disable",
			Start: s.StartCommand, Stop: s.StopCommand, DataDir: s.DataDir,
		}
		if e == labdb.MariaDB {
			db.Port = labdb.MariaDBPort
			db.User, db.Password = c.MySQLUser, config.FromFile(l.secretFile("mysql.pw"))
			db.ReplUser, db.ReplPassword = c.MySQLReplUser, config.FromFile(l.secretFile("mysql-repl.pw"))
			cfg.MySQL = db
		} else {
			db.Port = labdb.PostgreSQLPort
			db.User, db.Password = c.PGUser, config.FromFile(l.secretFile("pgsql.pw"))
			db.ReplUser, db.ReplPassword = c.PGReplUser, config.FromFile(l.secretFile("pgsql-repl.pw"))
			cfg.PgSQL = db
		}
	}
	return cfg, nil
}

// writeNodeFiles writes both nodes' cluster.toml (checked by parsing it
// back) and their directories.
func (l *Lab) writeNodeFiles() error {
	for _, n := range Nodes {
		cfg, err := l.NodeConfig(n)
		if err != nil {
			return err
		}
		b, err := config.Encode(cfg)
		if err != nil {
			return err
		}
		head := fmt.Sprintf("# Written by `pbxlab up` for %s; `pbxlab reset` rewrites it.\n", n)
		b = append([]byte(head), b...)
		if _, err := config.Parse(b, l.ConfigPath(n)); err != nil {
			return fmt.Errorf("the generated config does not load: %w", err)
		}
		for _, d := range []string{cfg.RunDir, cfg.SMTP.SpoolDir, filepath.Dir(cfg.StateFile), l.SyncDir(n)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := cluster.WriteFileAtomic(l.ConfigPath(n), b, 0o640); err != nil {
			return err
		}
	}
	return nil
}

// writeInitialStates writes node1 master, node2 slave, both at epoch 1.
func (l *Lab) writeInitialStates() error {
	now := time.Now().UTC().Truncate(time.Second)
	for _, n := range Nodes {
		role := cluster.Slave
		if n == Node1 {
			role = cluster.Master
		}
		s := cluster.State{Node: n, Role: role, Epoch: 1, Since: now, Reason: "pbxlab: initial state"}
		if err := cluster.WriteState(l.StatePath(n), s); err != nil {
			return err
		}
	}
	return nil
}

// seedSync gives both sync dirs the same small tree, the stand-in for
// /etc/asterisk and the voicemail spool.
func (l *Lab) seedSync() error {
	files := map[string]string{
		"asterisk/extensions.conf":        "[default]\nexten => 100,1,Answer()\n same => n,Playback(hello-world)\n same => n,Hangup()\n",
		"asterisk/sip.conf":               "[general]\ncontext=default\nudpbindaddr=0.0.0.0\n",
		"voicemail/default/100/INBOX/.ok": "",
	}
	for _, n := range Nodes {
		dir := l.SyncDir(n)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		for name, text := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				return err
			}
			// Same mtimes on both nodes: a fresh lab is in sync.
			t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			_ = os.Chtimes(p, t, t)
		}
	}
	return nil
}

func (l *Lab) labdbConfig() labdb.Config {
	node := func(n string) labdb.Node {
		h, _ := Host(n)
		return labdb.Node{Name: n, Netns: Netns(n), Root: filepath.Join(l.root, n), ClusterIP: h.ClusterIP}
	}
	return labdb.Config{
		StateDir: l.root,
		Primary:  node(Node1),
		Replica:  node(Node2),
		Creds:    l.st.Creds.labdb(),
		Logf:     l.logf,
	}
}
