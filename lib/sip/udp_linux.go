package sip

import (
	"net"
	"syscall"
)

// recvErr asks the kernel to report ICMP errors on the unconnected socket
// (ip(7) IP_RECVERR, ipv6(7) IPV6_RECVERR).
func recvErr(pc net.PacketConn, v6 bool) error {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, 1)
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
