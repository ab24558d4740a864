// Package cluster holds a node's view of the cluster: its state file (role,
// epoch, since, reason), written atomically, and the --role gate every check
// uses to decide whether it applies on this node.
//
// The VIP side (vip.go, arp.go): whether the VIP is bound on the telephony
// interface, binding and releasing it idempotently over netlink, and RFC 5227
// duplicate address detection with ARP probes from 0.0.0.0, so a second
// holder of the VIP (split brain) is seen without touching anyone's ARP
// cache.
package cluster
