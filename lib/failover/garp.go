package failover

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// GARP announces ip from iface: a burst of one request and one reply right
// away, then count-1 more pairs spaced by interval (switches and phones
// miss single ones). It returns how many frames went out and when the
// first did; ctx ends it early.
func GARP(ctx context.Context, iface string, ip netip.Addr, count int, interval time.Duration) (sent int, first time.Time, err error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return 0, first, fmt.Errorf("interface %q not found on this node", iface)
	}
	conn, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return 0, first, fmt.Errorf("opening an ARP socket on %s: %w", iface, err)
	}
	defer conn.Close()
	frames, err := garpFrames(ifi.HardwareAddr, ip)
	if err != nil {
		return 0, first, err
	}
	dst := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	for i := range max(count, 1) {
		if i > 0 {
			select {
			case <-ctx.Done():
				return sent, first, nil
			case <-time.After(interval):
			}
		}
		for _, f := range frames {
			if _, err := conn.WriteTo(f, dst); err != nil {
				return sent, first, fmt.Errorf("sending a gratuitous ARP for %s on %s: %w", ip, iface, err)
			}
			if sent == 0 {
				first = time.Now()
			}
			sent++
		}
	}
	return sent, first, nil
}

// garpFrames are the request and reply forms of a gratuitous ARP: sender
// and target IP both ip, broadcast.
func garpFrames(mac net.HardwareAddr, ip netip.Addr) ([][]byte, error) {
	var out [][]byte
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		p, err := arp.NewPacket(op, mac, ip, ethernet.Broadcast, ip)
		if err != nil {
			return nil, fmt.Errorf("building a gratuitous ARP for %s: %w", ip, err)
		}
		pb, err := p.MarshalBinary()
		if err != nil {
			return nil, err
		}
		f := ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
		b, err := f.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
