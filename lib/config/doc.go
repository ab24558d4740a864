// Package config reads a node's /etc/pbxha/cluster.toml: the cluster, its
// two nodes, the VIP, the PBX services, the databases, the synced
// directories, SSH, SMTP, the failover-class services and the Icinga Web 2
// link of the notification mails ([notify]).
//
// Validation messages name the file and the key. Secrets (database
// passwords, the AMI secret, SMTP and rsync passwords) are Secret values:
// inline in the file (which is then mode 0640, group nagios), in a file of
// their own, or in an environment variable — never on a command line.
// A Secret never prints its value.
package config
