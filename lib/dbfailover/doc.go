// Package dbfailover moves the database roles at failover: Promote makes
// the local replica the primary, Demote stops the local primary taking
// writes, Rejoin makes the local server a replica of the new master.
// MariaDB/MySQL (GTID) and PostgreSQL (streaming) each when configured.
// Every function looks before it acts, so running it twice is harmless, and
// returns a one-line summary for the admin's email.
package dbfailover
