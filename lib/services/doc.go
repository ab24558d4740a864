// Package services is check_pbx_services: are the PBX's required services
// (Asterisk, Kamailio, the database, ...) running on the master?
//
// Where systemd is PID 1 it asks systemd over D-Bus for each unit's state;
// elsewhere (containers, sysvinit) it counts processes in /proc by exact
// name or by a regular expression over the command line, against an
// expected count given as a Nagios range. Reading (procfs, D-Bus) is split
// from matching and evaluation, which are pure and table-tested against a
// fake /proc under testdata/.
package services
