// Package clustercheck is check_pbx_cluster, the master's view of the
// cluster: this node's state file says master; the VIP is bound on the
// telephony interface; no other machine answers ARP for the VIP; the peer,
// asked over SSH (lib/peer), is slave at an epoch not above ours.
//
// It is failover class: a CRITICAL here makes the event handler demote this
// node and promote the peer. So only what a failover can mend, or what the
// master must yield to, is CRITICAL: a split brain (the peer also master,
// another MAC answering for the VIP), the VIP missing here, a peer at a
// higher epoch. A lost peer or a standby one is WARNING (no redundancy, and
// nowhere to fail over to); anything that could not be checked (a state
// file that cannot be read, no CAP_NET_RAW for ARP, a missing interface) is
// UNKNOWN, which the handler ignores, so a broken file or a bad setting
// never moves calls.
//
// Reading (check.go: netlink, ARP, SSH, all at once and each bounded well
// inside -t) is split from evaluation (evaluate.go), which is pure and
// table-tested.
package clustercheck
