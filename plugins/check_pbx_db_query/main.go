// Command check_pbx_db_query proves that the primary database
// (MariaDB/MySQL or PostgreSQL) takes writes: it upserts this node's
// heartbeat row in one short transaction and reads it back, and with
// --query judges a value of the admin's choosing. It applies on the master
// of a pbxha cluster (notify class). See lib/dbquery.
package main

import (
	"pbxha/lib/dbquery"
	"pbxha/lib/plugin"
)

func main() { plugin.Run(dbquery.Spec()) }
