// Package lab builds, drives and tears down the two-node PBX cluster that
// the integration and end-to-end tests run against (LAB.md is the contract:
// names, addresses, ports, faults).
//
// The lab is four network namespaces (pbxlab-node1, pbxlab-node2,
// pbxlab-infra and the switch pbxlab-sw) with real Debian programs in them:
// Kamailio, rsyncd, sshd and the databases (package labdb) on the nodes,
// chronyd and an SMTP sink on infra, and the AMI endpoint (package ami).
// Every daemon is started detached, in its own session, with its output in a
// log file under the lab root, and found again later through a pid file that
// also records the process's start time, so a recycled pid is never taken
// for a lab process. Everything the lab knows lives under the root
// ($PBXLAB_ROOT, default /tmp/pbxlab): a later process, a test binary or
// `pbxlab down` after a crash, finds the lab with Attach.
//
// Tests share one lab. They take Lock first, so test packages run in
// parallel never act on it at the same time:
//
//	unlock, err := lab.Lock(ctx)
//	l, err := lab.Attach()       // or lab.Up(ctx) when none runs
//	l.Fault(ctx, "link-down", "node1", "tel")
//	defer l.Reset(ctx)
package lab
