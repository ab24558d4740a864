// Command bench runs each pbxha check beside its monitoring-plugins (or
// classic) peer on the same work and prints the medians of wall time, CPU
// time and peak RSS with the ratios ours/peer as Markdown tables, so a
// claim that our checks cost no more than the programs they replace is
// measured on the machine at hand rather than asserted.
//
// Usage (from the module root, after make build; the lab pairs need root):
//
//	go run ./scripts/bench -bin bin [-n 30] [-out bench.md] [-only icmp,sip] [-lab=false]
//
// Local pairs: it starts what they need and stops it at the end: a
// chronyd on a free loopback port, a process named pbxbenchd (a copy of
// /bin/sleep) and a copy of the Perl check_raid whose /proc/mdstat path
// points at the fixture.
//
// Network pairs (lab.go): both sides run inside node2's namespace, as a
// slave's Icinga runs them, against node1, the VIP and infra: ICMP
// (check_icmp), the rsync greeting (check_tcp), MariaDB (check_mysql,
// check_mysql_query, check_mysql -S), PostgreSQL (check_pgsql), SIP OPTIONS
// (sipsak), NTP (check_ntp_time), and AMI and rsync login alone (no
// peer). It takes the lab lock as the integration tests do, brings the lab
// up when none runs (and leaves it up), resets it first when it is not in
// its initial state, and at the end deletes the heartbeat row its db_query
// runs wrote and resets the lab if it is then not healthy. The peers get
// their passwords from 0600 files (a MySQL client options file, a
// PGPASSFILE), never argv.
//
// The event handler's step times and the failover times are not measured
// here; the report keeps a marked place for them.
package main
