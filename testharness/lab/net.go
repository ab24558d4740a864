package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ipCmd runs `ip ARGS...` and returns its error with ip's message.
func ipCmd(ctx context.Context, args ...string) error {
	_, err := runOut(ctx, "ip", args...)
	return err
}

// runOut runs a tool and returns stdout; a failure carries stderr.
func runOut(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// setupNetwork creates the namespaces and links of LAB.md "Networks". The
// veths are created directly inside their namespaces, so nothing, not even
// for a moment, appears in the root namespace.
func setupNetwork(ctx context.Context) error {
	for _, h := range Hosts {
		if err := ipCmd(ctx, "netns", "add", Netns(h.Name)); err != nil {
			return err
		}
		if err := ipCmd(ctx, "-n", Netns(h.Name), "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	sw := Netns(Switch)
	steps := [][]string{
		{"-n", sw, "link", "add", Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"-n", sw, "link", "set", Bridge, "up"},
	}
	for _, h := range Hosts {
		if h.TelIP == "" {
			continue
		}
		ns := Netns(h.Name)
		steps = append(steps,
			// The switch port is named after the host it leads to.
			[]string{"link", "add", TelIface, "netns", ns, "type", "veth", "peer", "name", h.Name, "netns", sw},
			[]string{"-n", sw, "link", "set", h.Name, "master", Bridge},
			[]string{"-n", sw, "link", "set", h.Name, "up"},
			[]string{"-n", ns, "addr", "add", h.TelIP + "/24", "dev", TelIface},
			[]string{"-n", ns, "link", "set", TelIface, "up"},
		)
	}
	n1, n2 := Hosts[0], Hosts[1]
	steps = append(steps,
		[]string{"link", "add", ClusterFace, "netns", Netns(n1.Name), "type", "veth", "peer", "name", ClusterFace, "netns", Netns(n2.Name)},
		[]string{"-n", Netns(n1.Name), "addr", "add", n1.ClusterIP + "/24", "dev", ClusterFace},
		[]string{"-n", Netns(n2.Name), "addr", "add", n2.ClusterIP + "/24", "dev", ClusterFace},
		[]string{"-n", Netns(n1.Name), "link", "set", ClusterFace, "up"},
		[]string{"-n", Netns(n2.Name), "link", "set", ClusterFace, "up"},
		[]string{"-n", Netns(Node1), "addr", "add", VIPPrefix, "dev", TelIface},
	)
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return err
		}
	}
	// The PBX services listen on the VIP on both nodes; the slave does not
	// hold it, so its namespace must allow binding an absent address.
	for _, n := range Nodes {
		if err := sysctlIn(ctx, n, "net.ipv4.ip_nonlocal_bind", "1"); err != nil {
			return err
		}
	}
	return nil
}

func sysctlIn(ctx context.Context, host, key, val string) error {
	_, err := runOut(ctx, "ip", "netns", "exec", Netns(host), "sysctl", "-q", "-w", key+"="+val)
	return err
}

// deleteNamespaces removes the lab's namespaces; their links and the
// bridge go with them once no process is left inside.
func deleteNamespaces(ctx context.Context) error {
	var firstErr error
	for _, h := range Hosts {
		ns := Netns(h.Name)
		if !nsExists(ns) {
			continue
		}
		if err := ipCmd(ctx, "netns", "del", ns); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// setLink brings one of a host's lab links up or down. tel is cut at the
// switch port (a pulled cable: the host's tel0 stays configured and loses
// carrier); clu at the host's end of the direct pair.
func setLink(ctx context.Context, host, which string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	var links [][2]string // namespace, device
	h, err := Host(host)
	if err != nil {
		return err
	}
	switch which {
	case "tel":
		if h.TelIP == "" {
			return fmt.Errorf("%s has no telephony link", host)
		}
		links = append(links, [2]string{Netns(Switch), host})
	case "clu":
		if h.ClusterIP == "" {
			return fmt.Errorf("%s has no cluster link", host)
		}
		links = append(links, [2]string{Netns(host), ClusterFace})
	case "all":
		if h.TelIP != "" {
			links = append(links, [2]string{Netns(Switch), host})
		}
		if h.ClusterIP != "" {
			links = append(links, [2]string{Netns(host), ClusterFace})
		}
	default:
		return fmt.Errorf("link %q: want tel, clu or all", which)
	}
	for _, l := range links {
		if err := ipCmd(ctx, "-n", l[0], "link", "set", l[1], state); err != nil {
			return err
		}
	}
	return nil
}

// linkUp reports whether a host's link is administratively up.
func linkUp(ctx context.Context, ns, dev string) bool {
	out, err := runOut(ctx, "ip", "-n", ns, "-o", "link", "show", dev)
	if err != nil {
		return false
	}
	return strings.Contains(out, ",UP") || strings.Contains(out, "<UP")
}

// hasAddr reports whether host's tel0 carries addr (no prefix).
func hasAddr(ctx context.Context, host, dev, addr string) bool {
	out, err := runOut(ctx, "ip", "-n", Netns(host), "-o", "-4", "addr", "show", "dev", dev)
	if err != nil {
		return false
	}
	return strings.Contains(out, " "+addr+"/")
}

// placeVIP puts the VIP on node's tel0 and removes it from the other node.
func placeVIP(ctx context.Context, node string) error {
	other := peerOf(node)
	if hasAddr(ctx, other, TelIface, VIP) {
		if err := ipCmd(ctx, "-n", Netns(other), "addr", "del", VIPPrefix, "dev", TelIface); err != nil {
			return err
		}
	}
	if !hasAddr(ctx, node, TelIface, VIP) {
		if err := ipCmd(ctx, "-n", Netns(node), "addr", "add", VIPPrefix, "dev", TelIface); err != nil {
			return err
		}
	}
	// Neighbours may still map the VIP to the other node's MAC.
	for _, h := range []string{Node1, Node2, Infra} {
		_ = ipCmd(ctx, "-n", Netns(h), "neigh", "flush", "all")
	}
	return nil
}

// VIPHolders lists the nodes whose tel0 carries the VIP.
func (l *Lab) VIPHolders(ctx context.Context) []string {
	var out []string
	for _, n := range Nodes {
		if hasAddr(ctx, n, TelIface, VIP) {
			out = append(out, n)
		}
	}
	return out
}

// SetSwitchPort takes host's telephony port out of the switch (enabled
// false) or puts it back: what a switch-port fence (fence_ifmib: the
// port's admin state) does to a node. It is separate from the cable:
// link-down/link-up leave it alone, so a fenced node whose link returns
// stays off the telephony network until it is unfenced. The lab's
// cluster.toml uses it as failover.fence_command.
func SetSwitchPort(ctx context.Context, host string, enabled bool) error {
	h, err := Host(host)
	if err != nil {
		return err
	}
	if h.TelIP == "" || host == Switch {
		return fmt.Errorf("%s has no switch port", host)
	}
	if enabled {
		return ipCmd(ctx, "-n", Netns(Switch), "link", "set", host, "master", Bridge)
	}
	return ipCmd(ctx, "-n", Netns(Switch), "link", "set", host, "nomaster")
}

// SwitchPortEnabled reports whether host's telephony port is in the switch.
func SwitchPortEnabled(ctx context.Context, host string) bool {
	out, err := runOut(ctx, "ip", "-n", Netns(Switch), "-o", "link", "show", host)
	return err == nil && strings.Contains(out, " master "+Bridge+" ")
}
