package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"pbxha/testharness/lab"
)

// sampleEvery is the watcher's period: VIP holders, switch ports and
// infra's ARP entry are read this often.
const sampleEvery = 50 * time.Millisecond

// watcher samples, from the fault on, what phones on the telephony network
// would see, and records when each thing first happened.
type watcher struct {
	t       *testing.T
	l       *lab.Lab
	t0      time.Time // the fault
	newMAC  net.HardwareAddr
	sipBin  string
	subject string // the mail to wait for ("" none)

	handles map[string]*netlink.Handle
	stop    chan struct{}
	done    sync.WaitGroup

	mu         sync.Mutex
	arpAt      time.Duration // infra's ARP entry for the VIP = newMAC
	sipAt      time.Duration // check_pbx_sip from infra answered, after the ARP moved
	mailAt     time.Duration // the mail's file in the sink
	splitBrain time.Duration // VIP on both nodes while both tel ports are up
	episode    time.Duration // the current such stretch
	longest    time.Duration // the longest one
	bothVIP    time.Duration // VIP on both nodes, whatever the links
	holders    []string
	timeline   []string
	checks     map[string]string // node!service -> last status seen
	ic         *icinga
	arpMoved   chan struct{}
}

// watch applies the fault and watches from that moment; newMaster is the
// node expected to take the VIP, subject the mail expected (a substring of
// its subject). The timeline also shows every change of the failover
// checks' states in both Icingas.
func watch(t *testing.T, ic *icinga, newMaster, subject, what string, fault func() error) *watcher {
	t.Helper()
	l := ic.l
	w := &watcher{t: t, l: l, ic: ic, checks: map[string]string{}, sipBin: filepath.Join(binDir(t), "check_pbx_sip"), subject: subject,
		handles: map[string]*netlink.Handle{}, stop: make(chan struct{}), arpMoved: make(chan struct{}),
		arpAt: -1, sipAt: -1, mailAt: -1}
	for _, h := range []string{lab.Node1, lab.Node2, lab.Infra, lab.Switch} {
		ns, err := netns.GetFromName(lab.Netns(h))
		if err != nil {
			t.Fatalf("namespace of %s: %v", h, err)
		}
		hd, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			t.Fatalf("netlink in %s: %v", h, err)
		}
		w.handles[h] = hd
	}
	link, err := w.handles[newMaster].LinkByName(lab.TelIface)
	if err != nil {
		t.Fatal(err)
	}
	w.newMAC = link.Attrs().HardwareAddr
	w.t0 = time.Now()
	if err := fault(); err != nil {
		t.Fatalf("fault %s: %v", what, err)
	}
	w.event("fault: %s", what)
	w.done.Add(3)
	go w.sampleLoop()
	go w.sipLoop()
	go w.mailLoop()
	t.Cleanup(w.close)
	return w
}

// since is the time from the fault, for messages.
func (w *watcher) since() time.Duration { return time.Since(w.t0) }

func (w *watcher) event(format string, args ...any) {
	w.timeline = append(w.timeline, fmt.Sprintf("+%6.2fs %s", w.since().Seconds(), fmt.Sprintf(format, args...)))
}

// mark records a step the test took (the fault, its undo) in the timeline.
func (w *watcher) mark(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.event(format, args...)
}

func (w *watcher) vipOn(node string) bool {
	link, err := w.handles[node].LinkByName(lab.TelIface)
	if err != nil {
		return false
	}
	addrs, err := w.handles[node].AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.String() == lab.VIP {
			return true
		}
	}
	return false
}

func (w *watcher) portUp(node string) bool {
	link, err := w.handles[lab.Switch].LinkByName(node)
	// Up, and in the switch's bridge: a switch-port fence (the lab's
	// fence_command) takes the port out of it.
	return err == nil && link.Attrs().Flags&net.FlagUp != 0 && link.Attrs().MasterIndex != 0
}

func (w *watcher) infraARP() net.HardwareAddr {
	link, err := w.handles[lab.Infra].LinkByName(lab.TelIface)
	if err != nil {
		return nil
	}
	neigh, err := w.handles[lab.Infra].NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	for _, n := range neigh {
		if n.IP.String() == lab.VIP && n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) == 0 {
			return n.HardwareAddr
		}
	}
	return nil
}

func (w *watcher) sampleLoop() {
	defer w.done.Done()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	var lastARP string
	lastPorts := ""
	last := time.Now()
	for i := 0; ; i++ {
		if i%10 == 0 {
			w.traceChecks()
		}
		var holders []string
		for _, n := range lab.Nodes {
			if w.vipOn(n) {
				holders = append(holders, n)
			}
		}
		ports := fmt.Sprintf("node1 tel %v, node2 tel %v", w.portUp(lab.Node1), w.portUp(lab.Node2))
		mac := w.infraARP()
		now := time.Now()
		w.mu.Lock()
		dt := now.Sub(last)
		if len(holders) == 2 {
			w.bothVIP += dt
			if w.portUp(lab.Node1) && w.portUp(lab.Node2) {
				w.splitBrain += dt
				w.episode += dt
				w.longest = max(w.longest, w.episode)
			} else {
				w.episode = 0
			}
		} else {
			w.episode = 0
		}
		if strings.Join(holders, ",") != strings.Join(w.holders, ",") || w.timeline == nil {
			w.event("VIP on %v", holders)
			w.holders = holders
		}
		if ports != lastPorts {
			w.event("ports: %s", ports)
			lastPorts = ports
		}
		if mac.String() != lastARP {
			w.event("infra's ARP entry for the VIP: %v", mac)
			lastARP = mac.String()
		}
		if w.arpAt < 0 && bytes.Equal(mac, w.newMAC) {
			w.arpAt = w.since()
			close(w.arpMoved)
		}
		w.mu.Unlock()
		last = now
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

// traceChecks adds the failover checks' state changes (status.dat, one
// second old at most) to the timeline.
func (w *watcher) traceChecks() {
	for _, n := range lab.Nodes {
		st := w.ic.services(n)
		for _, name := range append(failoverChecks, "pbx_raid") {
			s, ok := st[name]
			if !ok {
				continue
			}
			text := s.String()
			if len(text) > 160 {
				text = text[:160] + "..."
			}
			k := n + "!" + name
			w.mu.Lock()
			if w.checks[k] != text {
				if _, seen := w.checks[k]; seen || s.State != 0 {
					w.event("%s %s: %s", n, name, text)
				}
				w.checks[k] = text
			}
			w.mu.Unlock()
		}
	}
}

// sipLoop starts a check_pbx_sip from infra to the VIP every 200 ms once
// infra's ARP entry points at the new master (before that an answer would
// be the old master's); the first answered one counts.
func (w *watcher) sipLoop() {
	defer w.done.Done()
	select {
	case <-w.stop:
		return
	case <-w.arpMoved:
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	answered := make(chan struct{})
	var once sync.Once
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		wg.Go(func() {
			cmd := w.l.Command(ctx, lab.Infra, w.sipBin, "-H", lab.VIP, "--role", "any", "-t", "2")
			if cmd.Run() == nil {
				once.Do(func() {
					w.mu.Lock()
					w.sipAt = w.since()
					w.event("SIP OPTIONS to the VIP answered")
					w.mu.Unlock()
					close(answered)
				})
			}
		})
		select {
		case <-w.stop:
			return
		case <-answered:
			return
		case <-tick.C:
		}
	}
}

// mailLoop waits for the mail whose subject contains w.subject; its time
// is the file's (the sink writes it when the DATA ends).
func (w *watcher) mailLoop() {
	defer w.done.Done()
	if w.subject == "" {
		return
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, m := range mails(w.l, w.t0) {
			if strings.Contains(m.Subject, w.subject) {
				w.mu.Lock()
				w.mailAt = m.At.Sub(w.t0)
				w.event("mail %q", m.Subject)
				w.mu.Unlock()
				return
			}
		}
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

// wait waits until the ARP entry moved, SIP answered and the mail came,
// or timeout; it reports what is missing.
func (w *watcher) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		var missing []string
		if w.arpAt < 0 {
			missing = append(missing, "infra's ARP entry for the VIP on "+w.newMAC.String())
		}
		if w.sipAt < 0 {
			missing = append(missing, "SIP OPTIONS to the VIP answered")
		}
		if w.mailAt < 0 && w.subject != "" {
			missing = append(missing, fmt.Sprintf("a mail %q", w.subject))
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s after the fault, still waiting for: %s", timeout, strings.Join(missing, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *watcher) close() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	w.done.Wait()
	for _, h := range w.handles {
		h.Close()
	}
}

// result stops the watcher and returns its figures.
func (w *watcher) result() watchResult {
	w.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchResult{ARP: w.arpAt, SIP: w.sipAt, Mail: w.mailAt, SplitBrain: w.splitBrain, Longest: w.longest, BothVIP: w.bothVIP,
		Timeline: append([]string(nil), w.timeline...)}
}

type watchResult struct {
	ARP, SIP, Mail      time.Duration // -1: never
	SplitBrain, BothVIP time.Duration
	Longest             time.Duration // the longest split brain
	Timeline            []string
}

func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// sinkMail is one message in the sink.
type sinkMail struct {
	At      time.Time
	Subject string
	Text    string
}

// mails are the sink's messages written at or after since, oldest first.
func mails(l *lab.Lab, since time.Time) []sinkMail {
	ents, _ := os.ReadDir(l.Maildir())
	var out []sinkMail
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().Before(since) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(l.Maildir(), e.Name()))
		if err != nil {
			continue
		}
		text := strings.ReplaceAll(string(b), "\r\n", "\n")
		head, _, _ := strings.Cut(text, "\n\n")
		head = strings.ReplaceAll(head, "\n ", " ") // unfold
		var subj string
		for line := range strings.SplitSeq(head, "\n") {
			if s, ok := strings.CutPrefix(line, "Subject: "); ok {
				subj = s
			}
		}
		out = append(out, sinkMail{At: fi.ModTime(), Subject: subj, Text: text})
	}
	slices.SortStableFunc(out, func(a, b sinkMail) int { return a.At.Compare(b.At) })
	return out
}

// sipFromInfra runs check_pbx_sip from infra to the VIP once.
func sipFromInfra(t *testing.T, l *lab.Lab) Run {
	t.Helper()
	return runIn(t, l, lab.Infra, 10*time.Second, "check_pbx_sip", "-H", lab.VIP, "--role", "any")
}

// primeARP makes infra talk to the VIP, so that its ARP entry for it holds
// the old master's MAC, which only the new master's gratuitous ARP (or a
// re-resolution) corrects: a phone that called a minute ago is in that
// state.
func primeARP(t *testing.T, l *lab.Lab) {
	t.Helper()
	if r := sipFromInfra(t, l); r.Code != 0 {
		t.Fatalf("SIP OPTIONS to the VIP before the fault: %d %q %s", r.Code, r.Out, r.Stderr)
	}
}
