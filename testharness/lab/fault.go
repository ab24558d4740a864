package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// FaultUsage lists the faults (LAB.md "Faults", plus sip-code and ami).
const FaultUsage = `faults:
  link-down HOST tel|clu|all    cut a host's link (tel at the switch port, clu at the host)
  link-up HOST tel|clu|all      restore it
  kill HOST SERVICE             SIGKILL a service and its children (a crash)
  start HOST SERVICE            start it again and wait until it answers
  freeze HOST                   SIGSTOP every process of the host
  thaw HOST                     SIGCONT them
  ntp-offset SECONDS            restart infra's NTP server SECONDS off (0: true time)
  disk-fill NODE PERCENT        fill the node's data disk to PERCENT (0: empty it)
  sip-code NODE CODE            Kamailio answers OPTIONS with CODE (200: normal, 0: silence)
  ami NODE MODE                 AMI endpoint fault: none, refuse-login, no-greeting,
                                stall-mid-response, garbage
hosts: node1 node2 infra; services: mariadb postgresql kamailio ami rsyncd sshd
(nodes), chronyd smtp (infra), icinga2 (kill only)`

// Fault applies one fault, given as on the command line:
// Fault(ctx, "link-down", "node1", "tel"). Each has its undo (see
// FaultUsage); Reset undoes them all.
func (l *Lab) Fault(ctx context.Context, args ...string) error {
	if len(args) == 0 {
		return errors.New("fault: which one?\n" + FaultUsage)
	}
	want := func(n int) error {
		if len(args) != n+1 {
			return fmt.Errorf("fault %s takes %d argument(s), got %d\n%s", args[0], n, len(args)-1, FaultUsage)
		}
		return nil
	}
	switch args[0] {
	case "link-down", "link-up":
		if err := want(2); err != nil {
			return err
		}
		if args[1] == Switch {
			return errors.New("fault: the switch has no links of its own; cut a host's")
		}
		return setLink(ctx, args[1], args[2], args[0] == "link-up")
	case "kill", "start":
		if err := want(2); err != nil {
			return err
		}
		if args[0] == "kill" {
			if args[2] == SvcIcinga || args[2] == "icinga" {
				return l.killIcinga(ctx, args[1])
			}
			return l.KillService(ctx, args[1], args[2])
		}
		return l.StartService(ctx, args[1], args[2])
	case "freeze", "thaw":
		if err := want(1); err != nil {
			return err
		}
		if _, err := Host(args[1]); err != nil {
			return err
		}
		if args[0] == "freeze" {
			return l.freeze(args[1])
		}
		l.thaw(args[1])
		return nil
	case "ntp-offset":
		if err := want(1); err != nil {
			return err
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("ntp-offset %q: want whole seconds, e.g. 300 or -300", args[1])
		}
		return l.SetNTPOffset(ctx, n)
	case "disk-fill":
		if err := want(2); err != nil {
			return err
		}
		p, err := strconv.Atoi(args[2])
		if err != nil {
			return fmt.Errorf("disk-fill %q: want a percentage 0-100", args[2])
		}
		return l.DiskFill(args[1], p)
	case "sip-code":
		if err := want(2); err != nil {
			return err
		}
		c, err := strconv.Atoi(args[2])
		if err != nil {
			return fmt.Errorf("sip-code %q: want a SIP status code", args[2])
		}
		return l.SetSIPCode(ctx, args[1], c)
	case "ami":
		if err := want(2); err != nil {
			return err
		}
		return l.SetAMIFault(args[1], args[2])
	}
	return fmt.Errorf("unknown fault %q\n%s", args[0], FaultUsage)
}

// hostPids lists every process of a host: whatever runs in its namespace
// and what the lab's pid files name there (with their children).
func (l *Lab) hostPids(host string) []int {
	seen := map[int]bool{}
	var out []int
	add := func(p int) {
		if !seen[p] && p != os.Getpid() {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range pidsInNetns(Netns(host)) {
		add(p)
	}
	pfs, _ := filepath.Glob(filepath.Join(l.root, host, "run", "*.pid"))
	for _, pf := range pfs {
		if p := livePid(pf); p != 0 {
			add(p)
			for _, k := range descendants(p) {
				add(k)
			}
		}
	}
	return out
}

func (l *Lab) frozenMark(host string) string { return filepath.Join(l.root, host, "frozen") }

// freeze stops every process of the host with SIGSTOP, as a hung machine.
func (l *Lab) freeze(host string) error {
	if err := os.MkdirAll(filepath.Join(l.root, host), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(l.frozenMark(host), nil, 0o644); err != nil {
		return err
	}
	pids := l.hostPids(host)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	l.log("%s: froze %d processes", host, len(pids))
	return nil
}

// thaw continues every process of the host.
func (l *Lab) thaw(host string) {
	_ = os.Remove(l.frozenMark(host))
	for _, p := range l.hostPids(host) {
		_ = syscall.Kill(p, syscall.SIGCONT)
	}
}

// Frozen reports whether a host is frozen.
func (l *Lab) Frozen(host string) bool { return fileExists(l.frozenMark(host)) }

// DiskFill fills node's data disk (a tmpfs of DiskSize) until percent of
// it is used, with one file; 0 removes the file.
func (l *Lab) DiskFill(node string, percent int) error {
	if !isNode(node) {
		return fmt.Errorf("disk-fill: %q is not a node", node)
	}
	if percent < 0 || percent > 100 {
		return fmt.Errorf("disk-fill %d: want a percentage 0-100", percent)
	}
	dir := l.DiskDir(node)
	fill := filepath.Join(dir, ".pbxlab-fill")
	if err := os.Remove(fill); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if percent == 0 {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("disk-fill: statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize)
	total := int64(st.Blocks) * bs
	used := (int64(st.Blocks) - int64(st.Bfree)) * bs
	need := total*int64(percent)/100 - used
	if need <= 0 {
		return nil
	}
	f, err := os.OpenFile(fill, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, need); err != nil {
		// A full disk is what 100 % asks for.
		if !(errors.Is(err, unix.ENOSPC) && percent == 100) {
			return fmt.Errorf("disk-fill: allocating %d bytes in %s: %w", need, dir, err)
		}
		return fillUp(f)
	}
	return nil
}

// fillUp writes until the disk is full.
func fillUp(f *os.File) error {
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return nil
			}
			return err
		}
	}
}
