//go:build !linux

package sip

import "net"

// recvErr: elsewhere an unconnected socket learns nothing of ICMP errors;
// a closed port then shows as no response.
func recvErr(net.PacketConn, bool) error { return nil }
