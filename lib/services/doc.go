// Package services is check_pbx_services: are the PBX's required services
// running on this node? Where systemd is PID 1 it asks systemd over D-Bus
// for each unit's state; otherwise (containers, the lab, SysV hosts) it
// counts processes in /proc by exact name or by a regular expression over
// the full command line, against an expected count range.
//
// The check never counts itself: its own pid is excluded, so a --cmdline
// regex that happens to match the check's own arguments is harmless.
package services
