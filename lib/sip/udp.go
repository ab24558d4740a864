package sip

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// udpConn is the UDP socket the probe hands to sipgo's transport layer
// (TransportLayer.ServeUDP) instead of letting sipgo open its own.
//
// sipgo's client socket is unconnected and has no IP_RECVERR, so Linux
// never reports the ICMP port unreachable a host sends back when nothing
// listens on the SIP port: a stopped Kamailio or Asterisk would look the
// same as a hung one, "no response" after the whole -t. With IP_RECVERR
// (set by listenUDP) the kernel reports ICMP errors on unconnected
// sockets too, as an error of the next read or write; udpConn passes
// them on through ICMP and keeps reading, so sipgo's reader survives them.
//
// The socket stays unconnected on purpose: a SIP server bound to 0.0.0.0
// may answer a request to the VIP from its node address, and a connected
// socket would drop that answer.
type udpConn struct {
	net.PacketConn
	ICMP  chan error    // the first ICMP error, buffered
	ready chan struct{} // closed at the first read: sipgo serves us
	once  sync.Once
	sent  atomic.Int32
}

func newUDPConn(pc net.PacketConn) *udpConn {
	return &udpConn{PacketConn: pc, ICMP: make(chan error, 1), ready: make(chan struct{})}
}

// ReadFrom is sipgo's read loop. An ICMP error is reported and skipped; any
// other error (the socket closed) ends the loop as sipgo expects.
func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil && icmpError(err) {
			c.report(err)
			continue
		}
		return n, a, err
	}
}

// WriteTo counts transmissions; the kernel may report a pending ICMP
// error on a write as well as on a read.
func (c *udpConn) WriteTo(b []byte, a net.Addr) (int, error) {
	c.sent.Add(1)
	n, err := c.PacketConn.WriteTo(b, a)
	if err != nil && icmpError(err) {
		c.report(err)
	}
	return n, err
}

func (c *udpConn) report(err error) {
	select {
	case c.ICMP <- err:
	default:
	}
}

// Sent is how many times the request went out.
func (c *udpConn) Sent() int { return int(c.sent.Load()) }

// icmpError: the errors the kernel turns ICMP destination unreachable,
// time exceeded and parameter problem messages into (icmp_err_convert).
func icmpError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.ENETDOWN, syscall.EACCES, syscall.ENOPROTOOPT, syscall.EPROTO, syscall.EMSGSIZE, syscall.EOPNOTSUPP:
		return true
	}
	return false
}
