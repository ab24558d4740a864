package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pbxha/testharness/labdb"
)

// Service names (LAB.md "Services"); the argument of kill, start and
// status. Aliases accepted on the command line are in serviceAliases.
const (
	SvcMariaDB    = "mariadb"
	SvcPostgreSQL = "postgresql"
	SvcKamailio   = "kamailio"
	SvcAMI        = "ami"
	SvcRsyncd     = "rsyncd"
	SvcSSHD       = "sshd"
	SvcChronyd    = "chronyd"
	SvcSMTP       = "smtp"
	SvcIcinga     = "icinga2"
)

var serviceAliases = map[string]string{
	"sip": SvcKamailio, "ntp": SvcChronyd, "mysql": SvcMariaDB, "pgsql": SvcPostgreSQL,
	"postgres": SvcPostgreSQL, "rsync": SvcRsyncd, "ssh": SvcSSHD, "icinga": SvcIcinga,
}

// Port is one socket a service answers on.
type Port struct {
	Proto string // tcp or udp
	Addr  string // ip:port
}

func (p Port) String() string { return p.Addr + "/" + p.Proto }

// service is one daemon of the lab.
type service struct {
	Name  string
	Host  string
	Ports []Port
	// PBX marks the services that run on the master only (the failover
	// starts and stops them); the others run everywhere they are defined.
	PBX bool
	DB  labdb.Engine // set for the engines labdb runs
}

func hp(ip string, port int) string { return ip + ":" + strconv.Itoa(port) }

// services lists every service in status order.
func services() []service {
	var out []service
	for _, n := range Nodes {
		h, _ := Host(n)
		out = append(out,
			service{Name: SvcMariaDB, Host: n, DB: labdb.MariaDB, Ports: []Port{{"tcp", hp(h.ClusterIP, 3306)}}},
			service{Name: SvcPostgreSQL, Host: n, DB: labdb.PostgreSQL, Ports: []Port{{"tcp", hp(h.ClusterIP, 5432)}}},
			service{Name: SvcKamailio, Host: n, PBX: true, Ports: []Port{{"udp", hp(h.TelIP, SIPPort)}, {"tcp", hp(h.TelIP, SIPPort)}}},
			service{Name: SvcAMI, Host: n, PBX: true, Ports: []Port{{"tcp", hp(h.TelIP, AMIPort)}}},
			service{Name: SvcRsyncd, Host: n, Ports: []Port{{"tcp", hp(h.ClusterIP, RsyncPort)}}},
			service{Name: SvcSSHD, Host: n, Ports: []Port{{"tcp", hp(h.ClusterIP, SSHPort)}}},
		)
	}
	out = append(out,
		service{Name: SvcChronyd, Host: Infra, Ports: []Port{{"udp", hp(InfraTelIP, NTPPort)}}},
		service{Name: SvcSMTP, Host: Infra, Ports: []Port{{"tcp", hp(InfraTelIP, SMTPPort)}}},
	)
	return out
}

func findService(host, name string) (service, error) {
	if a, ok := serviceAliases[name]; ok {
		name = a
	}
	if _, err := Host(host); err != nil {
		return service{}, err
	}
	var names []string
	for _, s := range services() {
		if s.Host == host {
			names = append(names, s.Name)
			if s.Name == name {
				return s, nil
			}
		}
	}
	if name == SvcIcinga && isNode(host) {
		return service{Name: SvcIcinga, Host: host}, nil
	}
	if len(names) == 0 {
		return service{}, fmt.Errorf("%s runs no service", host)
	}
	return service{}, fmt.Errorf("%s has no service %q (want one of %s)", host, name, strings.Join(names, ", "))
}

func (l *Lab) pidFile(host, name string) string {
	return filepath.Join(l.root, host, "run", name+".pid")
}

func (l *Lab) logFile(host, name string) string {
	return filepath.Join(l.root, host, "log", name+".log")
}

// Pid returns the pid of a running service, 0 when it is not running.
func (l *Lab) Pid(host, name string) int {
	s, err := findService(host, name)
	if err != nil {
		return 0
	}
	if s.DB != "" {
		c, err := l.db()
		if err != nil {
			return 0
		}
		return c.Pids()[host+"/"+string(s.DB)]
	}
	return livePid(l.pidFile(host, s.Name))
}

func (l *Lab) db() (*labdb.Cluster, error) {
	return labdb.Attach(l.root, l.logf)
}

// DB returns the lab's database cluster (package labdb): driver configs
// for each node (MySQLConfig, PGConfig), Pids, Kill, Start, Reset.
func (l *Lab) DB() (*labdb.Cluster, error) { return l.db() }

// StartService starts a service if it is not running and waits until it
// answers.
func (l *Lab) StartService(ctx context.Context, host, name string) error {
	s, err := findService(host, name)
	if err != nil {
		return err
	}
	if s.DB != "" {
		c, err := l.db()
		if err != nil {
			return err
		}
		return c.Start(ctx, host, s.DB)
	}
	if s.Name == SvcIcinga {
		return fmt.Errorf("icinga2 is started with StartIcinga (it needs a config dir)")
	}
	if livePid(l.pidFile(host, s.Name)) != 0 {
		return nil
	}
	t0 := time.Now()
	argv, env, err := l.prepare(s)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", host, s.Name, err)
	}
	d, err := spawn(host, argv, env, l.HostDir(host), l.logFile(host, s.Name), l.pidFile(host, s.Name))
	if err != nil {
		return fmt.Errorf("%s/%s: %w", host, s.Name, err)
	}
	if err := l.waitReady(ctx, s, d); err != nil {
		_ = stopPid(context.WithoutCancel(ctx), l.pidFile(host, s.Name), syscall.SIGKILL, 0)
		return err
	}
	l.log("%s/%s: ready (pid %d) after %.1fs", host, s.Name, d.pid, time.Since(t0).Seconds())
	return nil
}

// StopService stops a service gracefully (SIGTERM, SIGKILL after 5 s).
func (l *Lab) StopService(ctx context.Context, host, name string) error {
	s, err := findService(host, name)
	if err != nil {
		return err
	}
	if s.DB != "" {
		c, err := l.db()
		if err != nil {
			return err
		}
		return c.Stop(ctx, host, s.DB)
	}
	return stopPid(ctx, l.pidFile(host, s.Name), syscall.SIGTERM, 5*time.Second)
}

// KillService crashes a service: SIGKILL to it and its children.
func (l *Lab) KillService(ctx context.Context, host, name string) error {
	s, err := findService(host, name)
	if err != nil {
		return err
	}
	if s.DB != "" {
		c, err := l.db()
		if err != nil {
			return err
		}
		return c.Kill(ctx, host, s.DB)
	}
	return stopPid(ctx, l.pidFile(host, s.Name), syscall.SIGKILL, 0)
}

// waitReady probes s until it answers, failing early when the daemon dies.
func (l *Lab) waitReady(ctx context.Context, s service, d *daemon) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		last = l.probe(pctx, s)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s/%s exited during startup; log %s:\n%s", s.Host, s.Name, l.logFile(s.Host, s.Name), logTail(l.logFile(s.Host, s.Name)))
		case <-ctx.Done():
			return fmt.Errorf("%s/%s: not answering after the deadline: %v; log %s:\n%s", s.Host, s.Name, last, l.logFile(s.Host, s.Name), logTail(l.logFile(s.Host, s.Name)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prepare writes a service's config and returns its argv and extra
// environment.
func (l *Lab) prepare(s service) (argv, env []string, err error) {
	h, _ := Host(s.Host)
	dir := filepath.Join(l.root, s.Host)
	switch s.Name {
	case SvcKamailio:
		cfg, err := l.writeKamailioConfig(s.Host)
		if err != nil {
			return nil, nil, err
		}
		run := filepath.Join(dir, "kamailio", "run")
		if err := os.MkdirAll(run, 0o755); err != nil {
			return nil, nil, err
		}
		// -DD: stay in the foreground (children are still forked), so the
		// pid the lab records is the main process; -E: log to the log file.
		return []string{"/usr/sbin/kamailio", "-f", cfg, "-DD", "-E", "-m", "32", "-M", "4", "-Y", run, "-w", run}, nil, nil
	case SvcAMI:
		return []string{filepath.Join(l.st.Bin, "pbxlab"), "serve-ami", "--node", s.Host,
			"--addr", "0.0.0.0:" + strconv.Itoa(AMIPort),
			"--users-file", l.secretFile("ami-users"),
			"--fault-file", filepath.Join(dir, "ami", "fault")}, nil, nil
	case SvcRsyncd:
		cfg := filepath.Join(dir, "rsyncd", "rsyncd.conf")
		return []string{"/usr/bin/rsync", "--daemon", "--no-detach", "--config=" + cfg}, nil, nil
	case SvcSSHD:
		// Privilege separation needs this directory; systemd normally makes it.
		// Down removes it again when no sshd is left.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, nil, err
		}
		return []string{"/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "ssh", "sshd_config")}, nil, nil
	case SvcChronyd:
		cdir := filepath.Join(dir, "chrony")
		// chronyd refuses to start while its pid file names a live process,
		// and a zombie counts as live.
		_ = os.Remove(filepath.Join(cdir, "chronyd.pid"))
		off := l.ntpOffset()
		argv := []string{"/usr/sbin/chronyd", "-4", "-d", "-x", "-u", "root", "-f", filepath.Join(cdir, "chrony.conf")}
		if off != 0 {
			// What `faketime -f +Ns chronyd` does, without faketime's
			// wrapper process: it forks and would not pass signals on,
			// so the recorded pid would not be chronyd's.
			env = []string{"LD_PRELOAD=" + libfaketime, fmt.Sprintf("FAKETIME=%+ds", off), "FAKETIME_DONT_FAKE_MONOTONIC=1"}
		}
		return argv, env, nil
	case SvcSMTP:
		return []string{filepath.Join(l.st.Bin, "pbxlab"), "serve-smtp",
			"--addr", hp(h.TelIP, SMTPPort), "--maildir", l.Maildir()}, nil, nil
	}
	return nil, nil, fmt.Errorf("no way to start %s", s.Name)
}

const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// sipCode is the code Kamailio answers OPTIONS with on host (0: no answer).
func (l *Lab) sipCode(host string) int {
	b, err := os.ReadFile(filepath.Join(l.root, host, "kamailio", "code"))
	if err != nil {
		return 200
	}
	c, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 200
	}
	return c
}

var reasons = map[int]string{
	200: "OK", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 480: "Temporarily Unavailable",
	486: "Busy Here", 500: "Server Internal Error", 503: "Service Unavailable", 603: "Decline",
}

// writeKamailioConfig renders the node's kamailio.cfg for the current
// answer code: it listens on the node's telephony address, the VIP (bound
// even when absent: ip_nonlocal_bind) and loopback.
func (l *Lab) writeKamailioConfig(node string) (string, error) {
	h, _ := Host(node)
	code := l.sipCode(node)
	answer := `exit;`
	if code != 0 {
		reason := reasons[code]
		if reason == "" {
			reason = "Lab Fault"
		}
		answer = fmt.Sprintf(`sl_send_reply("%d", "%s"); exit;`, code, reason)
	}
	var listen strings.Builder
	for _, ip := range []string{h.TelIP, VIP, "127.0.0.1"} {
		fmt.Fprintf(&listen, "listen=udp:%s:%d\nlisten=tcp:%s:%d\n", ip, SIPPort, ip, SIPPort)
	}
	cfg := fmt.Sprintf(`#!KAMAILIO
# Written by pbxlab for %s: the PBX's SIP stack stand-in. OPTIONS are answered
# %d (pbxlab fault sip-code %s CODE changes it; 0 drops them unanswered).
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
%smpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "sl.so"
loadmodule "pv.so"

request_route {
	if ($rm == "OPTIONS") {
		%s
	}
	if ($rm == "ACK") {
		exit;
	}
	sl_send_reply("501", "Not Implemented");
}
`, node, code, node, listen.String(), answer)
	path := filepath.Join(l.root, node, "kamailio", "kamailio.cfg")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// writeStaticConfigs writes the configs that do not change while the lab
// runs: rsyncd, sshd, chronyd.
func (l *Lab) writeStaticConfigs() error {
	files := map[string]string{}
	for _, n := range Nodes {
		h, _ := Host(n)
		dir := filepath.Join(l.root, n)
		files[filepath.Join(dir, "rsyncd", "rsyncd.conf")] = fmt.Sprintf(`# Written by pbxlab for %[1]s.
address = %[2]s
port = %[3]d
use chroot = no
uid = root
gid = root
log file = %[4]s
max connections = 10
timeout = 30

[pbx]
	comment = %[1]s synced directory
	path = %[5]s
	read only = no
	list = yes
	auth users = %[6]s
	secrets file = %[7]s
`, n, h.ClusterIP, RsyncPort, filepath.Join(dir, "log", "rsyncd-transfer.log"), l.SyncDir(n),
			l.st.Creds.RsyncUser, l.secretFile("rsyncd.secrets"))
		sshDir := filepath.Join(dir, "ssh")
		files[filepath.Join(sshDir, "sshd_config")] = fmt.Sprintf(`# Written by pbxlab for %[1]s.
ListenAddress %[2]s:%[3]d
HostKey %[4]s/ssh_host_ed25519_key
PidFile %[4]s/sshd.pid
AuthorizedKeysFile %[4]s/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 30:30:100
MaxSessions 30
LogLevel INFO
Subsystem sftp internal-sftp
`, n, h.ClusterIP, SSHPort, sshDir)
	}
	cdir := filepath.Join(l.root, Infra, "chrony")
	files[filepath.Join(cdir, "chrony.conf")] = fmt.Sprintf(`# Written by pbxlab: infra's NTP server, serving its own clock.
bindaddress %s
port %d
cmdport 0
local stratum 8
allow
driftfile %s/drift
pidfile %s/chronyd.pid
`, InfraTelIP, NTPPort, cdir, cdir)
	for path, text := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) ntpOffset() int {
	b, err := os.ReadFile(filepath.Join(l.root, Infra, "chrony", "offset"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// SetNTPOffset restarts infra's NTP server serving its clock shifted by
// seconds (0: the true time).
func (l *Lab) SetNTPOffset(ctx context.Context, seconds int) error {
	if seconds > 10*365*86400 || seconds < -10*365*86400 {
		return fmt.Errorf("ntp-offset %d: more than ten years", seconds)
	}
	if err := os.WriteFile(filepath.Join(l.root, Infra, "chrony", "offset"), []byte(strconv.Itoa(seconds)+"\n"), 0o644); err != nil {
		return err
	}
	if err := l.StopService(ctx, Infra, SvcChronyd); err != nil {
		return err
	}
	return l.StartService(ctx, Infra, SvcChronyd)
}

// SetSIPCode makes node's Kamailio answer OPTIONS with code (0: never
// answer), restarting it if it runs.
func (l *Lab) SetSIPCode(ctx context.Context, node string, code int) error {
	if !isNode(node) {
		return fmt.Errorf("sip-code: %q is not a node", node)
	}
	if code != 0 && (code < 100 || code > 699) {
		return fmt.Errorf("sip-code %d: want 100-699, or 0 for no answer", code)
	}
	path := filepath.Join(l.root, node, "kamailio", "code")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(code)+"\n"), 0o644); err != nil {
		return err
	}
	if l.Pid(node, SvcKamailio) == 0 {
		_, err := l.writeKamailioConfig(node)
		return err
	}
	if err := l.StopService(ctx, node, SvcKamailio); err != nil {
		return err
	}
	return l.StartService(ctx, node, SvcKamailio)
}

// SetAMIFault switches node's AMI endpoint into a fault mode (ami.Fault
// names: none, refuse-login, no-greeting, stall-mid-response, garbage). The
// server rereads the file before it serves each new connection.
func (l *Lab) SetAMIFault(node, mode string) error {
	if !isNode(node) {
		return fmt.Errorf("ami: %q is not a node", node)
	}
	if _, err := parseAMIFault(mode); err != nil {
		return err
	}
	path := filepath.Join(l.root, node, "ami", "fault")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(mode+"\n"), 0o644)
}
