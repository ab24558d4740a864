// Package failover holds the event handler's actions as a library: the
// decision (which trigger leads to what), the exclusive lock, and the
// promote steps (fence, DAD, VIP, gratuitous ARP, databases, services,
// state). Every step has a deadline, looks before it acts so a rerun after
// a crash completes the work, and reports its duration and result.
package failover
