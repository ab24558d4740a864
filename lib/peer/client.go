package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/plugin"
	"pbxha/lib/probe"
)

// maxReply bounds what the client reads from a peer's stdout; replies are
// a few hundred bytes, a probe of 32 targets a few kilobytes.
const maxReply = 1 << 20

// Client is an SSH connection to the other node over the cluster network.
// Its methods may be called concurrently. When a method's ctx ends, the
// connection is closed (that is what unblocks a peer that stopped
// answering), and every later call fails.
type Client struct {
	conn *ssh.Client
	node string // the peer's name in cluster.toml
	addr string // host:port on the cluster network
}

// Option changes how Dial connects.
type Option func(*dialOptions)

type dialOptions struct {
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	handshake time.Duration
	connected func()
	readOnly  bool
}

// ReadOnly makes Dial log in with ssh.check_key_file when it is set: the
// checks' key, which the peer pins to `pbxha-peer --read-only` (state,
// time, probe, manifest, version). The checks run as nagios and read only
// that key; the cluster key, which can demote and promote, stays root's.
func ReadOnly() Option {
	return func(o *dialOptions) { o.readOnly = true }
}

// WithHandshakeWait gives the SSH handshake d from the moment the TCP
// connection is up (instead of what is left of ssh.connect_timeout, with
// GreetingTimeout for sshd's greeting), and calls connected then: a fence
// watch keeps one connection to a frozen peer and has its greeting the
// moment it thaws, rather than piling up connections it would have to
// serve first.
func WithHandshakeWait(d time.Duration, connected func()) Option {
	return func(o *dialOptions) { o.handshake, o.connected = d, connected }
}

// WithDialer makes Dial open the TCP connection with f (the lab dials
// from inside a node's network namespace this way).
func WithDialer(f func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *dialOptions) { o.dial = f }
}

// ErrNoHandshake matches (errors.Is) a Dial that connected but got no SSH
// handshake in time: the peer's kernel accepts connections while its sshd
// does not answer — a node whose processes are frozen or hung, as opposed
// to one that cannot be reached at all.
var ErrNoHandshake = errors.New("connected, but no SSH handshake")

type noHandshake struct{ error }

func (noHandshake) Is(target error) bool { return target == ErrNoHandshake }
func (e noHandshake) Unwrap() error      { return e.error }

// GreetingTimeout bounds the wait for sshd's greeting after the TCP
// connect (within ssh.connect_timeout).
const GreetingTimeout = time.Second

// greetingConn lifts the greeting's read deadline once the first bytes
// have come.
type greetingConn struct {
	net.Conn
	deadline time.Time
	greeted  bool
}

func (c *greetingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.greeted {
		c.greeted = true
		c.Conn.SetReadDeadline(c.deadline)
	}
	return n, err
}

// Dial connects to the peer named by cfg: cfg.Peer()'s cluster IP, port
// ssh.port, as ssh.user with ssh.key_file, its host key checked strictly
// against ssh.known_hosts. TCP connect, handshake and authentication
// together take at most ssh.connect_timeout, and never outlast ctx.
func Dial(ctx context.Context, cfg *config.Config, opts ...Option) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("ssh to the peer: no cluster.toml")
	}
	peer := cfg.Peer()
	if peer == nil {
		return nil, fmt.Errorf("ssh to the peer: %s does not say which node this is, so not which is the other (set node)", cfg.Path())
	}
	ip, err := netip.ParseAddr(peer.ClusterIP)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %s: nodes: no cluster_ip for %s", peer.Name, cfg.Path(), peer.Name)
	}
	port, user := cfg.SSH.Port, cfg.SSH.User
	if port == 0 {
		port = 22 // config.Load's default, for a Config built in code
	}
	if user == "" {
		user = "root"
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("ssh to %s: %s: ssh.port: %d is not a port", peer.Name, cfg.Path(), port)
	}
	addr := netip.AddrPortFrom(ip, uint16(port)).String()
	fail := func(step string, err error) error {
		return fmt.Errorf("ssh to %s (%s): %s: %w", peer.Name, addr, step, err)
	}
	o := dialOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dial == nil {
		o.dial = (&net.Dialer{}).DialContext
	}

	keyFile := cfg.SSH.KeyFile
	if o.readOnly && cfg.SSH.CheckKeyFile != "" {
		keyFile = cfg.SSH.CheckKeyFile
	}
	signer, err := readKey(keyFile)
	if err != nil {
		return nil, fail("key", err)
	}
	hostKey, algos, err := hostKeyCheck(cfg.SSH.KnownHosts, addr)
	if err != nil {
		return nil, fail("host key", err)
	}

	timeout := cfg.SSH.ConnectTimeout.Duration
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := dctx.Deadline()
	// expired says which deadline ended a step: the caller's (ctx) or
	// connect_timeout. Sockets time out at the deadline a hair before the
	// context notices, so the deadlines are compared, not the errors.
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	limit := "ssh.connect_timeout"
	expired := func(what string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if hasCtxDeadline && !ctxDeadline.After(deadline) {
			return context.DeadlineExceeded
		}
		return fmt.Errorf("no %s within %s (%s)", what, timeout, limit)
	}
	conn, err := o.dial(dctx, "tcp", addr)
	if err != nil {
		var (
			ne net.Error
			oe *net.OpError
		)
		if ctx.Err() != nil || dctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			return nil, fail("dial", expired("connection"))
		}
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // without "dial tcp 198.51.100.2:22:", said already
		}
		return nil, fail("dial", err)
	}
	// NewClientConn has no context: a deadline on the socket bounds a peer
	// that accepts and then says nothing, and closing it ends the
	// handshake at once when ctx is cancelled.
	if o.handshake > 0 {
		if o.connected != nil {
			o.connected()
		}
		timeout, limit = o.handshake, "the handshake wait"
		deadline = time.Now().Add(o.handshake)
		var hcancel context.CancelFunc
		dctx, hcancel = context.WithDeadline(ctx, deadline)
		defer hcancel()
		deadline, _ = dctx.Deadline()
	}
	conn.SetDeadline(deadline)
	// sshd sends its greeting the moment it accepts; a kernel that accepts
	// while nothing reads (a frozen or hung node) is told apart within
	// GreetingTimeout, not the whole connect_timeout.
	greeting := deadline
	if g := time.Now().Add(GreetingTimeout); o.handshake == 0 && g.Before(greeting) {
		greeting = g
		conn.SetReadDeadline(greeting)
		conn = &greetingConn{Conn: conn, deadline: deadline}
	}
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
	})
	stopped := stop()
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		switch {
		case errors.As(err, &hke):
			return nil, fail("host key", hke)
		case stopped && greeting.Before(deadline) && errors.Is(err, os.ErrDeadlineExceeded) && !conn.(*greetingConn).greeted:
			return nil, fail("handshake", noHandshake{fmt.Errorf("connected, but no SSH greeting within %s", GreetingTimeout)})
		case !stopped || errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fail("handshake", noHandshake{expired("SSH handshake")})
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fail("login", fmt.Errorf("the peer refused %s as user %s (is its public key in that user's authorized_keys on %s, pinned to pbxha-peer?)",
				keyFile, user, peer.Name))
		}
		return nil, fail("handshake", err)
	}
	conn.SetDeadline(time.Time{})
	return &Client{conn: ssh.NewClient(cc, chans, reqs), node: peer.Name, addr: addr}, nil
}

func readKey(path string) (ssh.Signer, error) {
	if path == "" {
		return nil, errors.New("ssh.key_file is not set in cluster.toml")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("%s is protected by a passphrase; the cluster key must have none", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Node is the peer's name in cluster.toml.
func (c *Client) Node() string { return c.node }

// Addr is the peer's host:port on the cluster network.
func (c *Client) Addr() string { return c.addr }

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RemoteError is a command the peer ran and reported as failed: the
// connection works, the peer said no. Message is cleaned for printing.
type RemoteError struct {
	Node     string
	Command  string
	ExitCode int
	Message  string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("peer command %s: %s says: %s", e.Command, e.Node, e.Message)
}

// capture is an io.Writer that keeps up to max bytes and when the first
// byte came; with ready set it closes ready once the Ready line is in.
type capture struct {
	mu       sync.Mutex
	max      int
	b        []byte
	overflow bool
	first    time.Time
	ready    chan struct{}
}

func (w *capture) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		// A login shell may print something first (a noisy .bashrc).
		if w.ready != nil && (bytes.HasPrefix(w.b, []byte(Ready+"\n")) || bytes.Contains(w.b, []byte("\n"+Ready+"\n"))) {
			close(w.ready)
			w.ready = nil
		}
	}()
	if w.first.IsZero() && len(p) > 0 {
		w.first = time.Now()
	}
	if room := w.max - len(w.b); len(p) > room {
		w.b = append(w.b, p[:max(room, 0)]...)
		w.overflow = true
	} else {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}

// run sends req, decodes the reply into reply and returns when it was
// sent and when the reply's first byte came. With ping, "sent" is when,
// after the peer said Ready on stderr, one line went to its stdin.
func (c *Client) run(ctx context.Context, req Request, reply replier, ping bool) (sent, first time.Time, err error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("peer command %s: "+format, append([]any{req.Name}, args...)...)
	}
	if err := ctx.Err(); err != nil {
		return sent, first, fail("%w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	sess, err := c.conn.NewSession()
	if err != nil {
		if ctx.Err() != nil {
			return sent, first, fail("no answer from %s: %w", c.node, ctx.Err())
		}
		return sent, first, fail("opening a session on %s: %w", c.node, err)
	}
	defer sess.Close()
	out, stderr := &capture{max: maxReply}, &capture{max: 4096}
	sess.Stdout, sess.Stderr = out, stderr
	var (
		stdin io.WriteCloser
		ready chan struct{}
	)
	if ping {
		ready = make(chan struct{})
		stderr.ready = ready
		if stdin, err = sess.StdinPipe(); err != nil {
			return sent, first, fail("on %s: %w", c.node, err)
		}
	}
	sent = time.Now()
	if err := sess.Start(req.String()); err != nil {
		if ctx.Err() != nil {
			return sent, first, fail("no answer from %s: %w", c.node, ctx.Err())
		}
		return sent, first, fail("on %s: %w", c.node, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	finished := false
	if ping {
		select {
		case <-ready:
			sent = time.Now()
			stdin.Write([]byte("\n")) // a failure shows in Wait
			stdin.Close()
		case err = <-done: // it ended without saying Ready
			finished = true
		}
	}
	if !finished {
		err = <-done
	}
	out.mu.Lock()
	first = out.first
	out.mu.Unlock()
	if ctx.Err() != nil {
		return sent, first, fail("no answer from %s: %w", c.node, ctx.Err())
	}
	code := 0
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitStatus()
	case err != nil:
		return sent, first, fail("on %s: %w", c.node, err)
	}
	if out.overflow {
		return sent, first, fail("the reply from %s is larger than %d bytes", c.node, maxReply)
	}
	if len(strings.TrimSpace(string(out.b))) == 0 {
		msg := "no reply"
		if code != 0 {
			msg = "exit status " + strconv.Itoa(code)
		}
		if s := plugin.Clean(strings.Replace("\n"+string(stderr.b), "\n"+Ready+"\n", "\n", 1), 0); s != "" {
			msg += ": " + s
		}
		// Without the forced command the words reach a shell, which knows
		// no `state`: say where to look.
		return sent, first, fail("%s from %s (is the cluster key pinned to pbxha-peer in authorized_keys there?)", msg, c.node)
	}
	if err := json.Unmarshal(out.b, reply); err != nil {
		return sent, first, fail("the reply from %s is not what pbxha-peer writes: %v: %q", c.node, err, plugin.Clean(string(out.b), 80))
	}
	if msg := reply.errorText(); msg != "" {
		return sent, first, &RemoteError{Node: c.node, Command: req.Name, ExitCode: code, Message: plugin.Clean(msg, 0)}
	}
	if code != 0 {
		return sent, first, fail("exit status %d from %s without an error message", code, c.node)
	}
	return sent, first, nil
}

// Version asks the peer's pbxha-peer for its version and subcommands.
func (c *Client) Version(ctx context.Context) (VersionReply, error) {
	var r VersionReply
	req, err := NewRequest("version")
	if err != nil {
		return r, err
	}
	_, _, err = c.run(ctx, req, &r, false)
	r.Version = plugin.Clean(r.Version, 0)
	return r, err
}

// State reads the peer's state file and whether it holds the VIP. When the
// peer cannot read its state file the error is a *RemoteError and the
// reply still carries the VIP fields. A peer that calls itself by another
// name than cluster.toml gives it is an error: two nodes with one name
// cannot be told apart.
func (c *Client) State(ctx context.Context) (StateReply, error) {
	var r StateReply
	req, err := NewRequest("state")
	if err != nil {
		return r, err
	}
	_, _, err = c.run(ctx, req, &r, false)
	r.Node = plugin.Clean(r.Node, 0)
	r.VIP, r.VIPInterface, r.VIPError = plugin.Clean(r.VIP, 0), plugin.Clean(r.VIPInterface, 0), plugin.Clean(r.VIPError, 0)
	if r.State != nil {
		r.State.Node, r.State.Reason = plugin.Clean(r.State.Node, 0), plugin.Clean(r.State.Reason, 0)
		switch r.State.Role {
		case cluster.Master, cluster.Slave, cluster.Standby:
		default:
			if err == nil {
				err = fmt.Errorf("peer command state: %s reports role %q", c.node, plugin.Clean(r.State.Role, 40))
			}
			r.State = nil
		}
	}
	if err == nil && r.Node != c.node {
		err = fmt.Errorf("peer command state: the node at %s says it is %q, cluster.toml names it %q", c.addr, r.Node, c.node)
	}
	if err == nil && r.State == nil {
		err = fmt.Errorf("peer command state: %s sent no state", c.node)
	}
	return r, err
}

// Time reads the peer's clock. rtt is the round trip of one line sent to
// the running pbxha-peer and its reply (not of starting it); the peer read
// its clock within it.
func (c *Client) Time(ctx context.Context) (remote time.Time, rtt time.Duration, err error) {
	remote, _, rtt, err = c.clock(ctx)
	return remote, rtt, err
}

// Skew is how far the peer's clock is ahead of ours (negative: behind):
// the peer's time minus our time halfway through the round trip. Its
// uncertainty is rtt/2.
func (c *Client) Skew(ctx context.Context) (skew, rtt time.Duration, err error) {
	remote, sent, rtt, err := c.clock(ctx)
	if err != nil {
		return 0, rtt, err
	}
	return remote.Sub(sent.Add(rtt / 2)), rtt, nil
}

func (c *Client) clock(ctx context.Context) (remote, sent time.Time, rtt time.Duration, err error) {
	var r TimeReply
	req, err := NewRequest("time")
	if err != nil {
		return remote, sent, 0, err
	}
	sent, first, err := c.run(ctx, req, &r, true)
	if err != nil {
		return remote, sent, 0, err
	}
	if first.IsZero() {
		first = time.Now()
	}
	if r.UnixNano <= 0 {
		return remote, sent, 0, fmt.Errorf("peer command time: %s sent no time", c.node)
	}
	return time.Unix(0, r.UnixNano), sent, first.Sub(sent), nil
}

// Probe asks the peer to probe targets from its side with lib/probe, and
// returns one result per target in order. Zero options take lib/probe's
// defaults; durations are sent in whole milliseconds (rounded up).
func (c *Client) Probe(ctx context.Context, targets []netip.Addr, o probe.Options) ([]probe.Result, error) {
	if o.Method == "" {
		o.Method = probe.ICMP
	}
	if o.Count <= 0 {
		o.Count = probe.DefaultCount
	}
	if o.Interval <= 0 {
		o.Interval = probe.DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = probe.DefaultTimeout
	}
	ports := o.Ports
	if ports == nil {
		ports = []int{}
	}
	args := []any{string(o.Method), millis(o.Timeout), o.Count, millis(o.Interval), ports}
	for _, t := range targets {
		args = append(args, t)
	}
	req, err := NewRequest("probe", args...)
	if err != nil {
		return nil, fmt.Errorf("peer command probe: %w", err)
	}
	var r ProbeReply
	if _, _, err := c.run(ctx, req, &r, false); err != nil {
		return nil, err
	}
	if len(r.Results) != len(targets) {
		return nil, fmt.Errorf("peer command probe: %s sent %d results for %d targets", c.node, len(r.Results), len(targets))
	}
	out := make([]probe.Result, len(targets))
	for i, w := range r.Results {
		if w.Target != targets[i] {
			return nil, fmt.Errorf("peer command probe: %s answered for %s where %s was asked", c.node, w.Target, targets[i])
		}
		res := w.result()
		res.Err = plugin.Clean(res.Err, 0)
		for j := range res.Detail {
			res.Detail[j] = plugin.Clean(res.Detail[j], 0)
		}
		out[i] = res
	}
	return out, nil
}

func millis(d time.Duration) int {
	return int(math.Ceil(float64(d) / float64(time.Millisecond)))
}
