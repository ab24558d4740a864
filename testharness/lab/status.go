package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"pbxha/lib/cluster"
)

// ServiceStatus is one row of the status table.
type ServiceStatus struct {
	Host    string
	Service string
	Ports   []Port
	Pid     int
	// State: up, down, stopped (a PBX service off on the slave, as it
	// should be), frozen, or "not answering: ...".
	State string
	// Expected tells whether the service runs in a healthy lab.
	Expected bool
}

// OK reports whether the row is as a healthy lab has it.
func (s ServiceStatus) OK() bool {
	if s.Expected {
		return s.State == "up"
	}
	return s.State == "up" || s.State == "stopped"
}

// HostStatus is one host's network state.
type HostStatus struct {
	Host   string
	Netns  string
	Exists bool
	Addrs  []string // tel0 and clu0 addresses, the VIP marked
	Links  []string // "tel:up", "clu:down", "tel:up(fenced: out of the switch)"
	Role   string   // from the state file, nodes only: "master@1"
	Frozen bool
}

// Status is the whole table.
type Status struct {
	Root     string
	Hosts    []HostStatus
	Services []ServiceStatus
}

// Status probes every service (in parallel, a second each at most).
func (l *Lab) Status(ctx context.Context) Status {
	st := Status{Root: l.root}
	for _, h := range Hosts {
		hs := HostStatus{Host: h.Name, Netns: Netns(h.Name), Exists: nsExists(Netns(h.Name)), Frozen: l.Frozen(h.Name)}
		if h.TelIP != "" {
			if hasAddr(ctx, h.Name, TelIface, h.TelIP) {
				hs.Addrs = append(hs.Addrs, h.TelIP)
			}
			if isNode(h.Name) && hasAddr(ctx, h.Name, TelIface, VIP) {
				hs.Addrs = append(hs.Addrs, VIP+"(VIP)")
			}
			tel := "tel:" + upDown(linkUp(ctx, Netns(Switch), h.Name))
			if !SwitchPortEnabled(ctx, h.Name) {
				tel += "(fenced: out of the switch)"
			}
			hs.Links = append(hs.Links, tel)
		}
		if h.ClusterIP != "" {
			if hasAddr(ctx, h.Name, ClusterFace, h.ClusterIP) {
				hs.Addrs = append(hs.Addrs, h.ClusterIP)
			}
			hs.Links = append(hs.Links, "clu:"+upDown(linkUp(ctx, Netns(h.Name), ClusterFace)))
		}
		if isNode(h.Name) {
			if s, err := cluster.ReadState(l.StatePath(h.Name)); err == nil {
				hs.Role = s.Role + "@" + strconv.FormatUint(s.Epoch, 10)
			} else {
				hs.Role = "?"
			}
		}
		st.Hosts = append(st.Hosts, hs)
	}
	svcs := services()
	if pid := l.Pid(Node1, SvcIcinga); pid != 0 {
		svcs = append(svcs, service{Name: SvcIcinga, Host: Node1})
	}
	if pid := l.Pid(Node2, SvcIcinga); pid != 0 {
		svcs = append(svcs, service{Name: SvcIcinga, Host: Node2})
	}
	master := ""
	if h := l.VIPHolders(ctx); len(h) == 1 {
		master = h[0]
	}
	rows := make([]ServiceStatus, len(svcs))
	var wg sync.WaitGroup
	for i, s := range svcs {
		wg.Go(func() {
			r := ServiceStatus{Host: s.Host, Service: s.Name, Ports: s.Ports}
			r.Expected = s.Name != SvcIcinga && (!s.PBX || s.Host == master || master == "")
			r.Pid = l.Pid(s.Host, s.Name)
			switch {
			case r.Pid == 0 && s.PBX && !r.Expected:
				r.State = "stopped"
			case r.Pid == 0:
				r.State = "down"
			case procState(r.Pid) == 'T':
				r.State = "frozen"
			default:
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				err := l.probe(pctx, s)
				cancel()
				if err != nil {
					r.State = "not answering: " + err.Error()
				} else {
					r.State = "up"
				}
			}
			rows[i] = r
		})
	}
	wg.Wait()
	st.Services = rows
	return st
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

// Healthy returns nil when every service a healthy lab runs answers, the
// VIP is on exactly one node and no host is frozen.
func (l *Lab) Healthy(ctx context.Context) error {
	st := l.Status(ctx)
	var errs []error
	for _, h := range st.Hosts {
		if !h.Exists {
			errs = append(errs, fmt.Errorf("namespace %s missing", h.Netns))
		}
		if h.Frozen {
			errs = append(errs, fmt.Errorf("%s is frozen", h.Host))
		}
	}
	if v := l.VIPHolders(ctx); len(v) != 1 {
		errs = append(errs, fmt.Errorf("the VIP is on %d nodes %v", len(v), v))
	}
	for _, s := range st.Services {
		if !s.OK() {
			errs = append(errs, fmt.Errorf("%s/%s: %s", s.Host, s.Service, s.State))
		}
	}
	return errors.Join(errs...)
}

// Print writes the status as two tables.
func (st Status) Print(w io.Writer) {
	fmt.Fprintf(w, "lab root %s\n", st.Root)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAMESPACE\tADDRESSES\tLINKS\tROLE")
	for _, h := range st.Hosts {
		ns := h.Netns
		if !h.Exists {
			ns += " (missing)"
		}
		if h.Frozen {
			ns += " (frozen)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Host, ns, dash(strings.Join(h.Addrs, " ")), dash(strings.Join(h.Links, " ")), dash(h.Role))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSERVICE\tPORTS\tPID\tSTATE")
	for _, s := range st.Services {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, p.String())
		}
		pid := "-"
		if s.Pid != 0 {
			pid = strconv.Itoa(s.Pid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Host, s.Service, dash(strings.Join(ports, " ")), pid, s.State)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// PrintStatus prints the status of the lab to stdout.
func (l *Lab) PrintStatus(ctx context.Context) { l.Status(ctx).Print(os.Stdout) }
