package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// Method is how a target is probed.
type Method string

// Methods.
const (
	ICMP Method = "icmp"
	TCP  Method = "tcp"
	Both Method = "both" // ICMP and TCP at once; reachable if either is
	// Banner is a TCP connect that must also deliver the peer's first bytes
	// (SSH, AMI, SMTP greetings) within Timeout: a live application, not
	// just a live kernel.
	Banner Method = "banner"
)

// ParseMethod parses a --method value.
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToLower(s)); m {
	case ICMP, TCP, Both, Banner:
		return m, nil
	}
	return "", fmt.Errorf("%q is not a method (icmp, tcp, both, banner)", s)
}

// UsesTCP reports whether the method connects to Options.Ports.
func (m Method) UsesTCP() bool { return m == TCP || m == Both || m == Banner }

// Defaults: three probes 100 ms apart, each answered within 200 ms, so a
// dead target is known after 0.4 s while one reply in three still counts.
const (
	DefaultCount    = 3
	DefaultInterval = 100 * time.Millisecond
	DefaultTimeout  = 200 * time.Millisecond
)

// Options says how to probe. Zero values take the defaults above; Method
// "" is ICMP.
type Options struct {
	Method   Method
	Count    int           // probes per target (per port for TCP)
	Interval time.Duration // between probes
	Timeout  time.Duration // per probe: how long one reply may take
	Ports    []int         // TCP, Both, Banner
}

func (o Options) withDefaults() Options {
	if o.Method == "" {
		o.Method = ICMP
	}
	if o.Count <= 0 {
		o.Count = DefaultCount
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Budget is the longest a Probe with these options takes.
func (o Options) Budget() time.Duration {
	o = o.withDefaults()
	return time.Duration(o.Count-1)*o.Interval + o.Timeout
}

// Result is what one target did.
type Result struct {
	Target    netip.Addr
	Sent      int           // probes sent (ICMP echoes plus TCP connects)
	Received  int           // probes answered
	RTT       time.Duration // mean round trip of the answered probes; 0 when none
	Loss      float64       // percent of Sent unanswered; 100 when nothing was sent
	Reachable bool          // Received > 0
	Err       string        // why nothing could be sent or the last failure seen, "" if none
	// Privileged tells whether ICMP used a raw socket (CAP_NET_RAW) rather
	// than an unprivileged ping socket.
	Privileged bool
	// Denied tells that ICMP could not be sent at all: neither socket kind
	// was allowed (no CAP_NET_RAW, ping_group_range excludes us). The
	// target was not probed, so Reachable false says nothing about it.
	Denied bool
	// Detail is per-port and per-method text for -v output.
	Detail []string
}

// Probe probes one target and returns by Options.Budget or ctx's end.
func Probe(ctx context.Context, target netip.Addr, o Options) Result {
	o = o.withDefaults()
	target = target.Unmap()
	ctx, cancel := context.WithTimeout(ctx, o.Budget())
	defer cancel()
	var icmp, tcp *Result
	var wg sync.WaitGroup
	if o.Method == ICMP || o.Method == Both {
		wg.Add(1)
		go func() { defer wg.Done(); r := probeICMP(ctx, target, o); icmp = &r }()
	}
	if o.Method.UsesTCP() {
		wg.Add(1)
		go func() { defer wg.Done(); r := probeTCP(ctx, target, o); tcp = &r }()
	}
	wg.Wait()
	switch {
	case icmp != nil && tcp != nil:
		return merge(target, *icmp, *tcp)
	case icmp != nil:
		return *icmp
	case tcp != nil:
		return *tcp
	}
	return finish(Result{Target: target, Err: "no method " + strconv.Quote(string(o.Method))}, nil)
}

// ProbeAll probes the targets concurrently; results are in targets' order.
func ProbeAll(ctx context.Context, targets []netip.Addr, o Options) []Result {
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = Probe(ctx, t, o) }()
	}
	wg.Wait()
	return out
}

// merge is Both: the counts add up, so Loss stays honest, and one answer
// from either method is enough.
func merge(target netip.Addr, a, b Result) Result {
	r := Result{Target: target, Sent: a.Sent + b.Sent, Received: a.Received + b.Received, Privileged: a.Privileged, Denied: a.Denied || b.Denied}
	if r.Received > 0 {
		r.RTT = (a.RTT*time.Duration(a.Received) + b.RTT*time.Duration(b.Received)) / time.Duration(r.Received)
	}
	for _, x := range []Result{a, b} {
		if x.Err != "" {
			if r.Err != "" {
				r.Err += "; "
			}
			r.Err += x.Err
		}
	}
	r.Detail = append(append(r.Detail, a.Detail...), b.Detail...)
	return finish(r, nil)
}

// finish fills Loss and Reachable; rtts are the answered probes' times.
func finish(r Result, rtts []time.Duration) Result {
	if len(rtts) > 0 {
		var sum time.Duration
		for _, d := range rtts {
			sum += d
		}
		r.RTT = sum / time.Duration(len(rtts))
		r.Received = len(rtts)
	}
	r.Loss = 100
	if r.Sent > 0 {
		r.Loss = float64(r.Sent-r.Received) / float64(r.Sent) * 100
	}
	r.Reachable = r.Received > 0
	return r
}

// sequence runs o.Count probes. Each may take o.Timeout; the next starts
// as soon as the previous one is answered, or o.Interval after it started,
// whichever comes first (as check_icmp does): a live target is done in a
// few round trips, a silent one by Budget. A probe that fails at once
// (no route, refused banner) does not hurry the next one: a burst of
// instant local errors must not decide that a path is dead. one reports
// whether its probe was answered.
func sequence(ctx context.Context, o Options, one func(ctx context.Context) bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < o.Count; i++ {
		answered := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			if one(pctx) {
				close(answered)
			}
		}()
		if i == o.Count-1 {
			return
		}
		t := time.NewTimer(o.Interval)
		select {
		case <-answered:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// ---- ICMP ----

// PingGroupRange is where Linux says which gids may open ping sockets.
var PingGroupRange = "/proc/sys/net/ipv4/ping_group_range"

// UnprivilegedAllowed reports whether this process may open an
// unprivileged ICMP socket: one of its gids lies in ping_group_range.
func UnprivilegedAllowed() bool {
	b, err := os.ReadFile(PingGroupRange)
	if err != nil {
		return false
	}
	lo, hi, ok := parseGroupRange(string(b))
	if !ok {
		return false
	}
	gids, _ := os.Getgroups()
	gids = append(gids, os.Getegid(), os.Getgid())
	for _, g := range gids {
		if uint64(g) >= lo && uint64(g) <= hi {
			return true
		}
	}
	return false
}

// parseGroupRange reads "LOW\tHIGH"; "1 0" (LOW > HIGH) allows nobody.
func parseGroupRange(s string) (lo, hi uint64, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 32)
	hi, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

func permissionDenied(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission)
}

// tally collects one target's probes from concurrent goroutines.
type tally struct {
	mu      sync.Mutex
	sent    int
	rtts    []time.Duration
	lastErr string
}

func (t *tally) add(sent bool, rtt time.Duration, ok bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sent {
		t.sent++
	}
	if ok {
		t.rtts = append(t.rtts, rtt)
	} else if err != nil {
		t.lastErr = describe(err)
	}
}

func probeICMP(ctx context.Context, target netip.Addr, o Options) Result {
	var (
		mu     sync.Mutex
		priv   = !UnprivilegedAllowed()
		denied bool
		t      tally
	)
	sequence(ctx, o, func(ctx context.Context) bool {
		mu.Lock()
		p := priv
		mu.Unlock()
		sent, rtt, ok, err := pingOnce(ctx, target, o.Timeout, p)
		if !sent && permissionDenied(err) {
			// The sysctl or our capabilities changed under us, or a
			// container's seccomp forbids one kind: try the other.
			mu.Lock()
			priv = !p
			mu.Unlock()
			if sent, rtt, ok, err = pingOnce(ctx, target, o.Timeout, !p); !sent && permissionDenied(err) {
				mu.Lock()
				denied = true
				mu.Unlock()
			}
		}
		t.add(sent, rtt, ok, err)
		return ok
	})
	mu.Lock()
	defer mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Result{Target: target, Sent: t.sent, Privileged: priv, Err: t.lastErr}
	if denied {
		r.Err = "cannot open an ICMP socket: raw sockets need CAP_NET_RAW and ping sockets a gid in " + PingGroupRange
		r.Denied = t.sent == 0
	}
	r = finish(r, t.rtts)
	if r.Reachable {
		r.Err = ""
	}
	mode := "ping socket"
	if priv {
		mode = "raw socket"
	}
	r.Detail = append(r.Detail, fmt.Sprintf("icmp %s (%s): %d/%d answered%s", target, mode, r.Received, r.Sent, errSuffix(r.Err)))
	return r
}

// pingOnce sends one echo request with pro-bing and waits up to ctx's end
// for its reply.
func pingOnce(ctx context.Context, target netip.Addr, timeout time.Duration, privileged bool) (sent bool, rtt time.Duration, ok bool, err error) {
	p := probing.New(target.String())
	p.SetLogger(probing.NoopLogger{})
	p.SetPrivileged(privileged)
	if target.Is4() {
		p.SetNetwork("ip4")
	} else {
		p.SetNetwork("ip6")
	}
	p.SetIPAddr(&net.IPAddr{IP: target.AsSlice(), Zone: target.Zone()})
	p.Count = 1
	// pro-bing's Timeout ends the whole run and Interval would pace a
	// second request; ctx bounds this one, these are backstops.
	p.Timeout = timeout
	p.Interval = timeout
	p.RecordRtts, p.RecordTTLs = false, false

	var (
		mu      sync.Mutex
		sendErr error
		reply   = make(chan time.Duration, 1)
	)
	p.OnSend = func(*probing.Packet) { mu.Lock(); sent = true; mu.Unlock() }
	p.OnRecv = func(pkt *probing.Packet) {
		select {
		case reply <- pkt.Rtt:
		default:
		}
	}
	p.OnSendError = func(_ *probing.Packet, err error) { mu.Lock(); sendErr = err; mu.Unlock() }

	done := make(chan error, 1)
	go func() { done <- p.RunWithContext(ctx) }()
	var runErr error
	select {
	case rtt = <-reply:
		ok = true
	case runErr = <-done:
		// A reply may have raced the end of the run.
		select {
		case rtt = <-reply:
			ok = true
		default:
		}
	case <-ctx.Done():
		runErr = ctx.Err()
	}
	// Do not wait for pro-bing's receiver to notice (up to ~100 ms, see
	// doc.go): the answer is in.
	p.Stop()
	mu.Lock()
	defer mu.Unlock()
	if runErr == nil {
		runErr = sendErr
	}
	if runErr == nil && !ok {
		runErr = context.DeadlineExceeded
	}
	return sent, rtt, ok, runErr
}

// ---- TCP ----

func probeTCP(ctx context.Context, target netip.Addr, o Options) Result {
	r := Result{Target: target}
	if len(o.Ports) == 0 {
		r.Err = "no TCP port to probe"
		return finish(r, nil)
	}
	var (
		t       tally
		mu      sync.Mutex
		perPort = map[int][2]int{}
		portErr = map[int]string{}
	)
	// One probe is a round over every port; the round is answered when
	// every port answered.
	sequence(ctx, o, func(ctx context.Context) bool {
		var wg sync.WaitGroup
		all := true
		for _, port := range o.Ports {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rtt, ok, err := connect(ctx, netip.AddrPortFrom(target, uint16(port)), o)
				t.add(true, rtt, ok, err)
				mu.Lock()
				defer mu.Unlock()
				c := perPort[port]
				c[1]++
				if ok {
					c[0]++
				} else {
					all = false
					if err != nil {
						portErr[port] = describe(err)
					}
				}
				perPort[port] = c
			}()
		}
		wg.Wait()
		return all
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Sent = t.sent
	r = finish(r, t.rtts)
	if !r.Reachable {
		for _, port := range o.Ports {
			if e := portErr[port]; e != "" {
				r.Err = fmt.Sprintf("port %d: %s", port, e)
			}
		}
	}
	for _, port := range o.Ports {
		c := perPort[port]
		r.Detail = append(r.Detail, fmt.Sprintf("%s %s: %d/%d answered%s", o.Method.tcpName(), netip.AddrPortFrom(target, uint16(port)), c[0], c[1], errSuffix(portErr[port])))
	}
	return r
}

func (m Method) tcpName() string {
	if m == Banner {
		return "banner"
	}
	return "tcp"
}

// connect is one TCP probe, bounded by ctx. ok means the target answered:
// connected or refused (TCP); connected and greeted (Banner).
func connect(ctx context.Context, ap netip.AddrPort, o Options) (time.Duration, bool, error) {
	m := o.Method
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		if m != Banner && errors.Is(err, syscall.ECONNREFUSED) {
			return time.Since(start), true, nil
		}
		return 0, false, err
	}
	defer c.Close()
	if m != Banner {
		return time.Since(start), true, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, false, errors.New("connected, but no greeting within " + o.Timeout.String())
		}
		return 0, false, fmt.Errorf("connected, then %w", err)
	}
	return time.Since(start), true, nil
}

// describe turns a socket error into a few words ("connection refused",
// "no route to host", "timed out").
func describe(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return err.Error()
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}
