// Package dbsync is check_pbx_db_sync: is this node's database a healthy
// replica of the primary, and how far behind is it?
//
// MariaDB/MySQL: SHOW REPLICA STATUS (SHOW SLAVE STATUS on servers that do
// not know it; SHOW ALL REPLICAS STATUS on MariaDB, so that every
// multi-source connection is seen; --connection picks one connection or
// MySQL channel). Its columns differ between servers and versions
// (Slave_IO_Running or Replica_IO_Running, Seconds_Behind_Master or
// Seconds_Behind_Source, Connection_name or Channel_Name), so rows are read
// into a map by column name, never into a fixed struct. IO and SQL threads
// must run; the last IO/SQL error is quoted when they do not;
// Seconds_Behind_Master is the server's own lag.
//
// PostgreSQL: pg_is_in_recovery(), pg_stat_wal_receiver's status, the
// replay lag (0 when everything received is replayed, else the age of
// pg_last_xact_replay_timestamp()), and with --primary-host the bytes
// between the primary's current WAL position and the replayed one.
//
// The heartbeat lag is the cross-check both engines share: the heartbeat
// row (package db) is read on the replica and compared with the primary's.
// A replica that already holds the primary's newest heartbeat is not behind
// it, however old that heartbeat is: that is what keeps an idle primary
// from reading as a growing lag (check_postgres' replicate_row and
// pt-heartbeat without a writer both fall into it). When the replica lacks
// it, the check waits a moment for it to arrive (a replica a few
// milliseconds behind a write made just now is not lagging); if it still
// lacks it, the lag is the age of the newest heartbeat it has, by the
// primary's clock: an upper bound, as exact as the heartbeats are frequent.
// So check_pbx_db_query should run on the primary at an interval well below
// the warning threshold; --write-heartbeat writes one from here instead
// (through --primary-host) and measures the delay of that very row.
// Without --primary-host the newest heartbeat's age is taken by the
// replica's own clock, which the output says.
//
// Reading (check.go) is split from parsing (status.go: SHOW output and
// PostgreSQL's text values into models, fuzzed) and evaluation
// (evaluate.go: models and policy into a plugin.Result, table-tested).
package dbsync
