// Package e2e holds the end-to-end failover tests: the real Icinga 2 runs
// in node1's and node2's namespaces with the shipped icinga-conf/ (one
// standalone Icinga per node, each checking its own Host and running its
// own event handler), a fault is put on the lab, and the tests measure
// what phones would see: infra's ARP entry for the VIP, SIP OPTIONS to the
// VIP answered, the admin's mail in the sink.
//
// `make test` runs one test per trigger (link-down all, link-down tel, a
// failed RAID array). With PBXHA_E2E=all (`make e2e`) the fault matrix of
// issue 10 runs too, PBXHA_E2E_RUNS times each, and prints its summary.
package e2e
