// Package db is what the database checks (check_pbx_db_query,
// check_pbx_db_sync) share: the connection flags and where their values
// come from (flags, then cluster.toml's [mysql]/[pgsql], the password from
// --password-file, $PBXHA_DB_PASSWORD or cluster.toml, never argv), one
// connection to MariaDB/MySQL (go-sql-driver/mysql) or PostgreSQL (pgx)
// bounded by the check's context, results as text, errors that name the
// step and carry the server's message cleaned and without the password, and
// the heartbeat table that ties the two checks together.
//
// Results are read as text on purpose: SHOW SLAVE STATUS changes its
// columns between server versions, so the checks look values up by column
// name, and every number they need is computed by the server as an integer
// (microseconds since the epoch, bytes), which leaves no time zone or
// timestamp format to get wrong. Both drivers use a single round trip per
// statement (MySQL client-side interpolation, pgx's simple protocol): no
// statement is prepared, which keeps a one-shot check as fast as the
// monitoring-plugins' check_mysql and check_pgsql.
//
// # The heartbeat
//
// One row per writing node in pbxha_heartbeat(node, token, ts):
// check_pbx_db_query upserts its node's row on the primary with a fresh
// random token and the primary's own clock; check_pbx_db_sync reads the
// row on the replica and compares it with the primary's. ts is stored as
// UTC (MariaDB/MySQL DATETIME(6) from UTC_TIMESTAMP(6), PostgreSQL
// timestamptz from clock_timestamp()).
package db
