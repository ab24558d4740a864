package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The VIP is managed over netlink, as `ip addr` does, rather than by running
// ip(8): no PATH lookup, no output to parse, and errors come back as errnos.
// Every function works in the calling thread's network namespace.

// dumpRetries bounds how often an address dump interrupted by a concurrent
// change (NLM_F_DUMP_INTR) is repeated before its result is used anyway.
const dumpRetries = 3

// link finds an interface by name, with an error that names it.
func link(iface string) (netlink.Link, error) {
	if iface == "" {
		return nil, errors.New("no interface given for the VIP (vip.interface in cluster.toml)")
	}
	l, err := netlink.LinkByName(iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("interface %q not found on this node", iface)
		}
		return nil, fmt.Errorf("looking up interface %q: %w", iface, err)
	}
	return l, nil
}

// addrsWith lists the link's addresses whose IP is ip, whatever their
// prefix length: a VIP bound as /32 by hand still answers for the address.
func addrsWith(l netlink.Link, ip netip.Addr) ([]netlink.Addr, error) {
	var (
		addrs []netlink.Addr
		err   error
	)
	for range dumpRetries {
		addrs, err = netlink.AddrList(l, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("listing the addresses of %s: %w", l.Attrs().Name, err)
	}
	var out []netlink.Addr
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip.Unmap() {
			out = append(out, a)
		}
	}
	return out, nil
}

// VIPBound reports whether the VIP's address is bound to iface (with any
// prefix length). A missing interface is an error, not "unbound": a renamed
// NIC must not read as a lost VIP.
func VIPBound(iface string, vip netip.Prefix) (bool, error) {
	if !vip.IsValid() {
		return false, errors.New("no VIP address given (vip.address in cluster.toml)")
	}
	l, err := link(iface)
	if err != nil {
		return false, err
	}
	found, err := addrsWith(l, vip.Addr())
	return len(found) > 0, err
}

// AddVIP binds the VIP to iface; it does nothing when the address is
// already there.
func AddVIP(iface string, vip netip.Prefix) error {
	if !vip.IsValid() {
		return errors.New("no VIP address given (vip.address in cluster.toml)")
	}
	l, err := link(iface)
	if err != nil {
		return err
	}
	found, err := addrsWith(l, vip.Addr())
	if err != nil || len(found) > 0 {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   vip.Addr().AsSlice(),
		Mask: net.CIDRMask(vip.Bits(), vip.Addr().BitLen()),
	}}
	if err := netlink.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding %s to %s: %w", vip, iface, err)
	}
	return nil
}

// DelVIP removes the VIP's address from iface, whatever its prefix length;
// it does nothing when the address is not there.
func DelVIP(iface string, vip netip.Prefix) error {
	if !vip.IsValid() {
		return errors.New("no VIP address given (vip.address in cluster.toml)")
	}
	l, err := link(iface)
	if err != nil {
		return err
	}
	found, err := addrsWith(l, vip.Addr())
	if err != nil {
		return err
	}
	for _, a := range found {
		if err := netlink.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing %s from %s: %w", a.IPNet, iface, err)
		}
	}
	return nil
}
