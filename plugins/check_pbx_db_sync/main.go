// Command check_pbx_db_sync checks that this node's database
// (MariaDB/MySQL or PostgreSQL) is a healthy replica: replication threads
// or WAL receiver running, the server's own lag, and the heartbeat lag from
// the row check_pbx_db_query writes on the primary. It applies on the
// slave of a pbxha cluster (notify class). See lib/dbsync.
package main

import (
	"pbxha/lib/dbsync"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(dbsync.Spec()) }
