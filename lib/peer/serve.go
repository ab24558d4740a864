package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/probe"
)

// Exit codes of the remote end.
const (
	ExitOK     = 0
	ExitFailed = 1 // the command ran and failed (its reply says why)
	ExitUsage  = 2 // the command was refused by the grammar
)

// MaxCommandTime bounds any one command on the remote end, whatever the
// client asked for: a client that vanished must not leave work running.
const MaxCommandTime = 30 * time.Second

// command is one entry of the table: its parameters and its handler.
// Adding a subcommand is adding an entry here.
type command struct {
	name   string
	params []param
	run    func(s *Server, c call) (replier, error)
	// maxTime replaces MaxCommandTime for a command that must run longer.
	maxTime time.Duration
	// changes: the command changes this node (roles, VIP, services,
	// maintenance); a read-only key may not run it.
	changes bool
}

// call is one invocation as a handler sees it.
type call struct {
	ctx      context.Context
	req      Request
	io       IO
	commands []string // the table's names, for `version`
}

// IO is a command's standard streams. In nil reads as empty; Err nil
// discards.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Ready is what `time` writes on stderr once it runs: the client then
// sends one line on stdin and times only that exchange.
const Ready = "ready"

// pingWait bounds how long `time` waits for the client's line.
const pingWait = 5 * time.Second

var commands = map[string]*command{
	"version": {name: "version", run: (*Server).version},
	"state":   {name: "state", run: (*Server).state},
	"time":    {name: "time", run: (*Server).time},
	"demote":  {name: "demote", run: (*Server).demote, changes: true},
	"demote-below": {name: "demote-below", run: (*Server).demoteBelow, changes: true, params: []param{
		{name: "EPOCH", kind: kindInt, min: 1, max: MaxEpoch},
	}},
	"promote": {name: "promote", run: (*Server).promote, maxTime: PromoteTime, changes: true, params: []param{
		{name: "REASON", kind: kindWord, words: PromoteReasons},
	}},
	"maintenance-on": {name: "maintenance-on", run: (*Server).maintenanceOn, changes: true, params: []param{
		{name: "SECONDS", kind: kindInt, min: 1, max: MaxMaintenance},
	}},
	"maintenance-off": {name: "maintenance-off", run: (*Server).maintenanceOff, changes: true},
	"manifest":        {name: "manifest", run: (*Server).manifest, params: manifestParams},
	"probe": {name: "probe", run: (*Server).probe, params: []param{
		{name: "METHOD", kind: kindWord, words: []string{string(probe.ICMP), string(probe.TCP), string(probe.Both), string(probe.Banner)}},
		{name: "TIMEOUT_MS", kind: kindInt, min: 1, max: 5000},
		{name: "COUNT", kind: kindInt, min: 1, max: 10},
		{name: "INTERVAL_MS", kind: kindInt, min: 1, max: 1000},
		{name: "PORTS", kind: kindPorts, max: 8},
		{name: "ADDR", kind: kindAddr, variadic: true, atLeast: 1, atMost: 32},
	}},
}

// Server answers commands on this node. Zero fields take the real thing;
// tests replace them.
type Server struct {
	// Config is this node's cluster.toml; when nil, LoadConfig is called
	// the first time a command needs it.
	Config     *config.Config
	LoadConfig func() (*config.Config, error)
	Now        func() time.Time
	Probe      func(ctx context.Context, targets []netip.Addr, o probe.Options) []probe.Result
	VIPBound   func(iface string, vip netip.Prefix) (bool, error)
	// ReadOnly (pbxha-peer --read-only, what authorized_keys pins the
	// checks' key to) refuses every command that changes the node.
	ReadOnly bool
}

// ErrReadOnly is a changing command refused to a read-only key.
var ErrReadOnly = errors.New("refused: this key is read-only (pbxha-peer --read-only)")

func (s *Server) config() (*config.Config, error) {
	if s.Config != nil {
		return s.Config, nil
	}
	if s.LoadConfig == nil {
		return nil, errors.New("no configuration")
	}
	cfg, err := s.LoadConfig()
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("no configuration file %s", config.DefaultPath)
	}
	s.Config = cfg
	return cfg, nil
}

// ServeLine runs one command line as it arrives in $SSH_ORIGINAL_COMMAND,
// writes the reply to w and returns the exit code. Its stdin is empty.
func (s *Server) ServeLine(ctx context.Context, line string, w io.Writer) int {
	return s.ServeLineIO(ctx, line, IO{Out: w})
}

// ServeLineIO is ServeLine with all three streams, as sshd gives them.
func (s *Server) ServeLineIO(ctx context.Context, line string, stdio IO) int {
	words, err := SplitLine(line)
	if err != nil {
		writeReply(stdio.Out, &Status{Error: err.Error()})
		return ExitUsage
	}
	return s.ServeIO(ctx, words, stdio)
}

// Serve runs one command given as words, with an empty stdin.
func (s *Server) Serve(ctx context.Context, words []string, w io.Writer) int {
	return s.ServeIO(ctx, words, IO{Out: w})
}

// ServeIO runs one command given as words.
func (s *Server) ServeIO(ctx context.Context, words []string, stdio IO) int {
	w := stdio.Out
	if stdio.In == nil {
		stdio.In = strings.NewReader("")
	}
	if stdio.Err == nil {
		stdio.Err = io.Discard
	}
	req, err := Parse(words)
	if err != nil {
		writeReply(w, &Status{Error: err.Error()})
		return ExitUsage
	}
	if s.ReadOnly && commands[req.Name].changes {
		writeReply(w, &Status{Error: fmt.Sprintf("%v: %s changes the node; only the cluster key (ssh.key_file, the event handler's) may run it", ErrReadOnly, req.Name)})
		return ExitUsage
	}
	limit := MaxCommandTime
	if t := commands[req.Name].maxTime; t > 0 {
		limit = t
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	reply, err := commands[req.Name].run(s, call{ctx: ctx, req: req, io: stdio, commands: commandNames()})
	if reply == nil {
		reply = &Status{}
	}
	if err != nil {
		reply.setError(err.Error())
	}
	writeReply(w, reply)
	if reply.errorText() != "" {
		return ExitFailed
	}
	return ExitOK
}

func writeReply(w io.Writer, r replier) {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(Status{Error: "encoding the reply: " + err.Error()})
	}
	w.Write(append(b, '\n'))
}

func (s *Server) version(c call) (replier, error) {
	return &VersionReply{Version: plugin.Version, Commands: c.commands}, nil
}

// time reads the clock when the client's line arrives (or stdin ends),
// not when pbxha-peer starts: the client times that exchange alone, so
// the seconds sshd and a busy node take to start pbxha-peer do not skew
// the measurement.
func (s *Server) time(c call) (replier, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	fmt.Fprintln(c.io.Err, Ready)
	got := make(chan error, 1)
	go func() {
		var b [1]byte
		for {
			n, err := c.io.In.Read(b[:])
			if n == 1 && b[0] == '\n' || err != nil {
				got <- err
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(c.ctx, pingWait)
	defer cancel()
	select {
	case <-got: // the line, EOF or a broken stdin: answer now either way
	case <-ctx.Done():
		return nil, fmt.Errorf("no line on stdin within %s", pingWait)
	}
	return &TimeReply{UnixNano: now().UnixNano()}, nil
}

// selfConfig is the config and this node's entry in it, for the commands
// that answer as this node.
func (s *Server) selfConfig() (*config.Config, *config.Node, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, nil, err
	}
	self := cfg.Self()
	if self == nil {
		return nil, nil, fmt.Errorf("%s: cannot tell which node this is (set node, or name a node after this host)", cfg.Path())
	}
	return cfg, self, nil
}

func (s *Server) state(c call) (replier, error) {
	cfg, self, err := s.selfConfig()
	if err != nil {
		return nil, err
	}
	r := &StateReply{Node: self.Name}
	if cfg.VIP.Address != "" {
		r.VIP, r.VIPInterface = cfg.VIP.Address, cfg.VIP.Interface
		bound := cluster.VIPBound
		if s.VIPBound != nil {
			bound = s.VIPBound
		}
		prefix, _ := netip.ParsePrefix(cfg.VIP.Address) // config.Validate checked it
		if ok, err := bound(cfg.VIP.Interface, prefix); err != nil {
			r.VIPError = err.Error()
		} else {
			r.VIPBound = &ok
		}
	}
	if ServicesFunc != nil {
		if run, err := ServicesFunc(c.ctx, cfg); err == nil {
			r.Services = run
		}
	}
	if m, _, active, _ := cluster.ReadMaintenance(cfg.StateFile, time.Now()); active {
		r.Maintenance = &m
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(cfg.StateFile), "last-failover.json")); err == nil && json.Valid(b) && len(b) < 4096 {
		r.LastFailover = b
	}
	st, err := cluster.ReadState(cfg.StateFile)
	if err != nil {
		return r, err
	}
	r.State = &st
	return r, nil
}

func (s *Server) probe(c call) (replier, error) {
	a := c.req.Args
	o := probe.Options{
		Method:   probe.Method(a[0].(string)),
		Timeout:  time.Duration(a[1].(int)) * time.Millisecond,
		Count:    a[2].(int),
		Interval: time.Duration(a[3].(int)) * time.Millisecond,
		Ports:    a[4].([]int),
	}
	var targets []netip.Addr
	for _, v := range a[5:] {
		targets = append(targets, v.(netip.Addr))
	}
	// lib/probe keeps to its budget; this only guards against a bug there.
	ctx, cancel := context.WithTimeout(c.ctx, o.Budget()+2*time.Second)
	defer cancel()
	run := probe.ProbeAll
	if s.Probe != nil {
		run = s.Probe
	}
	results := run(ctx, targets, o)
	if len(results) != len(targets) {
		return nil, fmt.Errorf("internal error: %d results for %d targets", len(results), len(targets))
	}
	r := &ProbeReply{Results: make([]ProbeResult, len(results))}
	for i, res := range results {
		r.Results[i] = toWire(res)
	}
	return r, nil
}

// Main is pbxha-peer: the remote end that authorized_keys pins the cluster
// key to. The command comes from $SSH_ORIGINAL_COMMAND (over SSH) or, when
// that is unset, from the words after the flags (local testing). getenv is
// os.LookupEnv in production.
func Main(args []string, getenv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("pbxha-peer", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // words after the subcommand are never flags
	configPath := fs.String("config", "", "cluster config file (default $PBXHA_CONFIG, then "+config.DefaultPath+")")
	help := fs.BoolP("help", "h", false, "print this help")
	readOnly := fs.Bool("read-only", false, "refuse every command that changes this node (for the checks' key, ssh.check_key_file)")
	if err := fs.Parse(args); err != nil {
		writeReply(stdout, &Status{Error: "usage: " + err.Error()})
		return ExitUsage
	}
	if *help {
		fmt.Fprintf(stdout, "Usage: pbxha-peer [--config FILE] COMMAND [ARG...]\n\n"+
			"The remote end of pbxha's peer access. Over SSH, authorized_keys pins the\n"+
			"cluster key to it and the command comes from $SSH_ORIGINAL_COMMAND:\n"+
			"  command=\"/usr/sbin/pbxha-peer --config /etc/pbxha/cluster.toml\",restrict ssh-ed25519 AAAA...\n"+
			"and the checks' key (run as nagios) to its read-only mode:\n"+
			"  command=\"/usr/sbin/pbxha-peer --read-only --config /etc/pbxha/cluster.toml\",restrict ssh-ed25519 AAAA...\n\n"+
			"Flags:\n%s\nCommands:\n", fs.FlagUsages())
		for _, n := range commandNames() {
			fmt.Fprintf(stdout, "  %s\n", commands[n].usage())
		}
		fmt.Fprintf(stdout, "\nOutput is one JSON object; on failure it has \"error\" and the exit code is 1 (2: refused command).\n")
		return ExitOK
	}
	srv := &Server{ReadOnly: *readOnly, LoadConfig: func() (*config.Config, error) {
		return config.Load(*configPath, *configPath != "")
	}}
	stdio := IO{In: stdin, Out: stdout, Err: stderr}
	ctx := context.Background()
	if line, ok := getenv("SSH_ORIGINAL_COMMAND"); ok {
		if fs.NArg() > 0 {
			// A forced command with words baked in and a client's command
			// too: refuse rather than pick one.
			writeReply(stdout, &Status{Error: fmt.Sprintf("%v: both $SSH_ORIGINAL_COMMAND and arguments (%s) given", ErrGrammar, strings.Join(fs.Args(), " "))})
			return ExitUsage
		}
		return srv.ServeLineIO(ctx, line, stdio)
	}
	return srv.ServeIO(ctx, fs.Args(), stdio)
}
