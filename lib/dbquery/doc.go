// Package dbquery is check_pbx_db_query: proof that the primary database
// takes writes. In one short transaction it upserts this node's row of the
// heartbeat table (package db) with a fresh token and the primary's own
// clock, reads it back and compares; a primary that cannot write
// (MariaDB/MySQL read_only, PostgreSQL in recovery) is CRITICAL before
// anything is attempted. An optional --query with -w/-c on the first
// column of the first row is what check_mysql_query and check_pgsql -q
// offer.
//
// The row it writes is also what check_pbx_db_sync (package dbsync) reads
// on the replica: run both, and the replica's heartbeat lag stays honest
// on a primary that has nothing else to write.
//
// Reading (check.go) is split from evaluation (evaluate.go), which is pure
// and table-tested.
package dbquery
