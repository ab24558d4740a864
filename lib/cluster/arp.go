package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// Duplicate address detection timing. RFC 5227 sends PROBE_NUM (3) probes
// and waits ANNOUNCE_WAIT (2 s); a host that holds the address answers a
// probe on a LAN within milliseconds, so a check can afford a much shorter
// window without missing it.
const (
	// DefaultDADWait is the listening window when ctx has no deadline.
	DefaultDADWait = time.Second
	dadProbes      = 3
	dadMaxInterval = 200 * time.Millisecond
)

// zeroMAC is the target hardware address of a probe (RFC 5227 section
// 2.1.1: "SHOULD be set to all zeroes").
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// DetectDuplicate asks, with ARP probes sent from iface, whether any other
// machine claims ip, and returns the first MAC that does. It listens until
// ctx's deadline (DefaultDADWait when it has none) unless a claim comes
// first; no claim by then is (nil, false, nil).
//
// The probes carry sender IP 0.0.0.0 as in RFC 5227 section 2.1.1, so they
// change no neighbour's ARP cache: asking must not move traffic. A claim is
// any ARP packet, reply or request (an announcement, a gratuitous ARP),
// whose sender IP is ip and whose sender MAC is neither ownMAC nor iface's.
// When this node holds ip itself its kernel answers too, from its own MAC,
// which is why own answers are not claims. Another host's probe (sender IP
// 0.0.0.0) only asks and is no claim.
//
// ownMAC may be nil (iface's MAC). It needs root or CAP_NET_RAW.
func DetectDuplicate(ctx context.Context, iface string, ip netip.Addr, ownMAC net.HardwareAddr) (net.HardwareAddr, bool, error) {
	if !ip.Is4() && !ip.Is4In6() {
		return nil, false, fmt.Errorf("duplicate address detection: %s is not an IPv4 address", ip)
	}
	ip = ip.Unmap()
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, false, fmt.Errorf("interface %q not found on this node", iface)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, false, fmt.Errorf("interface %s has no Ethernet address: ARP does not apply", iface)
	}
	conn, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return nil, false, fmt.Errorf("opening an ARP socket on %s: permission denied (needs root or CAP_NET_RAW)", iface)
		}
		return nil, false, fmt.Errorf("opening an ARP socket on %s: %w", iface, err)
	}
	defer conn.Close()
	own := []net.HardwareAddr{ifi.HardwareAddr}
	if len(ownMAC) > 0 {
		own = append(own, ownMAC)
	}
	return detect(ctx, conn, ifi.HardwareAddr, ip, own)
}

// detect probes for ip over conn (frames including the Ethernet header)
// and waits for a claim from a MAC not in own.
func detect(ctx context.Context, conn net.PacketConn, srcMAC net.HardwareAddr, ip netip.Addr, own []net.HardwareAddr) (net.HardwareAddr, bool, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultDADWait)
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, false, err
	}
	probe, err := probeFrame(srcMAC, ip)
	if err != nil {
		return nil, false, err
	}
	dst := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	if _, err := conn.WriteTo(probe, dst); err != nil {
		return nil, false, fmt.Errorf("sending an ARP probe for %s: %w", ip, err)
	}

	// The rest of the probes are spread over the window; a cancelled ctx
	// ends the read at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		interval := min(time.Until(deadline)/dadProbes, dadMaxInterval)
		t := time.NewTicker(max(interval, time.Millisecond))
		defer t.Stop()
		for sent := 1; ; {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				conn.SetReadDeadline(time.Unix(1, 0))
				return
			case <-t.C:
				if sent < dadProbes {
					conn.WriteTo(probe, dst) // a lost extra probe only narrows the check
					sent++
				}
			}
		}
	})

	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, false, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("reading ARP replies for %s: %w", ip, err)
		}
		if mac, ok := claim(buf[:n], ip, own); ok {
			return mac, true, nil
		}
	}
}

// probeFrame is an RFC 5227 probe for ip from srcMAC, broadcast.
func probeFrame(srcMAC net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationRequest, srcMAC, netip.IPv4Unspecified(), zeroMAC, ip)
	if err != nil {
		return nil, fmt.Errorf("building an ARP probe for %s: %w", ip, err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := ethernet.Frame{Destination: ethernet.Broadcast, Source: srcMAC, EtherType: ethernet.EtherTypeARP, Payload: pb}
	return f.MarshalBinary()
}

// claim reports whether an Ethernet frame is an ARP packet by which a
// machine other than us says it has ip, and that machine's MAC.
func claim(frame []byte, ip netip.Addr, own []net.HardwareAddr) (net.HardwareAddr, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil, false
	}
	if p.SenderIP != ip {
		return nil, false
	}
	for _, m := range own {
		if bytes.Equal(p.SenderHardwareAddr, m) {
			return nil, false
		}
	}
	return append(net.HardwareAddr(nil), p.SenderHardwareAddr...), true
}
