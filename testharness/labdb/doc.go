// Package labdb runs the lab's two database pairs (LAB.md): MariaDB and
// PostgreSQL 15 on both nodes, the first node primary, the second its
// replica (MariaDB GTID replication, PostgreSQL streaming standby made with
// pg_basebackup). The lab CLI and the integration tests drive it; product
// code never imports it.
//
// # Lifecycle
//
//	c, err := labdb.Up(ctx, labdb.Config{
//		StateDir: "/tmp/pbxlab",
//		Primary:  labdb.Node{Name: "node1", Netns: "pbxlab-node1", Root: "/tmp/pbxlab/node1", ClusterIP: "198.51.100.1"},
//		Replica:  labdb.Node{Name: "node2", Netns: "pbxlab-node2", Root: "/tmp/pbxlab/node2", ClusterIP: "198.51.100.2"},
//		Creds:    labdb.GenerateCreds(),
//		Logf:     log.Printf,
//	})
//
// Up initialises both engines on both nodes, starts the four servers, creates
// the database `pbx` and the users, and returns once both replicas have
// caught up with their primaries. The namespaces must exist and have their
// addresses. Up first stops whatever a previous Up left under the same
// directories, so it is safe to rerun after a crash.
//
// The servers are daemons, not children that die with the caller: each runs
// in its own session (setsid), stdin /dev/null, output appended to a log
// file, no pipe to the caller, and the state needed to find them
// again is written to StateDir/labdb.json (mode 0600: it holds the
// passwords). A later process gets a Cluster back with Attach(StateDir) and
// can then Down, Reset, Kill, Start, or read Pids. Liveness is never taken
// from labdb.json: it comes from each server's own pid file, checked against
// /proc (program name and working directory), so a server restarted by other
// means (the failover's pg_ctl) is still found, and a recycled pid is not
// mistaken for a server.
//
//	c.Pids()                                  // "node1/mariadb" -> pid, 0 when stopped
//	c.Kill(ctx, "node2", labdb.PostgreSQL)    // SIGKILL the server and its children (a crash)
//	c.Start(ctx, "node2", labdb.PostgreSQL)   // start it again, wait until it answers
//	c.Stop(ctx, "node1", labdb.MariaDB)       // graceful stop by pid
//	c.Reset(ctx)                              // node1 primary, node2 replicating, in seconds
//	c.WaitReplicating(ctx)                    // both replicas streaming from node1 and caught up
//	c.Server("node1", labdb.PostgreSQL)       // paths, socket, address, start/stop commands
//	c.Down(ctx)                               // stop all four by pid; files stay
//
// Reset keeps what is healthy: the first node is made primary (a PostgreSQL
// standby there is promoted, a MariaDB source is removed and read_only
// cleared); the second node's MariaDB is re-pointed when its GTIDs are all
// in the first node's binlog, else rebuilt from a mariadb-dump of the
// first; its PostgreSQL is kept when it streams from the first node within
// seconds, else rebuilt with pg_basebackup. Measured on the 2-core lab host:
// 0.4 s healthy, 1.5 s after a failover with writes on both sides.
//
// Stops are by pid: the engine's shutdown signal (SIGTERM for MariaDB,
// SIGINT, PostgreSQL's fast shutdown, because SIGTERM there waits for every
// client to leave), then SIGKILL to the server and its children after
// StopTimeout. Every start waits for a connection and a query, until
// StartTimeout.
//
// # Layout
//
// Under each node's Root:
//
//	mariadb/my.cnf, client.cnf             server config; root's client config
//	mariadb/data, run/mysqld.sock, run/mariadbd.pid, log/mariadbd.log
//	postgresql/conf/{postgresql,pg_hba,pg_ident}.conf
//	postgresql/data, run/.s.PGSQL.5432, log/postgres.log
//
// PostgreSQL's config lives outside its data directory, so pg_basebackup and
// pg_rewind, which copy the peer's data directory, never carry the other
// node's settings along. primary_conninfo goes to postgresql.auto.conf, as
// pg_basebackup -R would write it. Server.StartCommand and StopCommand give
// the commands the failover may run inside the node (cluster.toml's
// start/stop); they work on the same files, so labdb finds a server they
// started.
//
// # Users
//
// In both engines, database `pbx`:
//   - Creds.AppUser: all rights on `pbx`, plus what the checks and the
//     failover need: MariaDB SUPER, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN,
//     BINLOG MONITOR, SLAVE MONITOR (so it can also write on a read-only
//     replica); PostgreSQL owner of `pbx`, pg_monitor, EXECUTE on pg_promote
//     and on the file functions pg_rewind needs from its source (granted in
//     the databases postgres, template1 and pbx: function rights are per
//     database).
//   - Creds.ReplUser: MariaDB REPLICATION SLAVE; PostgreSQL REPLICATION (and
//     the pg_rewind functions).
//
// Both accept TCP logins (MariaDB per-host accounts, PostgreSQL pg_hba
// scram-sha-256) from every address in Config.ClientHosts, by default both
// nodes' telephony and cluster addresses, the VIP and 127.0.0.1. labdb's own
// administration runs as root over the unix sockets, without a password:
// MariaDB's root@localhost uses unix_socket authentication (the mariadb
// client, as `mariadb --defaults-file=mariadb/client.cnf`), PostgreSQL's
// `postgres` role peer authentication with root mapped to it (`psql -h
// postgresql/run -U postgres`). Unix sockets are not bound to a network
// namespace, so this works from the root namespace.
//
// For tests, MySQLConfig and PGConfig return driver configs for the
// application user that dial the node's cluster address from inside its
// namespace (package netnsdial).
//
// The lab trades durability for speed (fsync off, relaxed flushing): its
// data lives in /tmp and is rebuilt, never recovered after a host crash.
package labdb
