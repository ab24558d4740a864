// Package filesync is the master's file sync (`pbxha-eventhandler sync`):
// it pushes the [sync] dirs of cluster.toml into the peer's rsync daemon
// module over the cluster network with the rsync binary, and reads back
// what rsync did from its --stats block.
//
// # Where each directory lands
//
// One module (rsync_module, default pbx) receives every directory. Its path
// on the peer is the deepest directory the sync dirs have in common, and
// each dir goes to its path below that: with the one dir
// /var/spool/asterisk/voicemail the module's path is that dir itself (the
// lab's rsyncd.conf: module pbx, path = the node's sync dir); with
// /etc/asterisk and /var/spool/asterisk/voicemail it is /, and they land in
// <module>/etc/asterisk and <module>/var/spool/asterisk/voicemail (created
// with --mkpath). check_pbx_fs_sync pairs the dirs the same way, by
// position, so both nodes must list them in the same order.
//
// # What is pushed
//
// rsync -a --delete: the slave mirrors the master, so a voicemail deleted
// or moved on the master is deleted on the slave too — otherwise a
// failover brings back messages the callers already deleted and upsets
// Asterisk's msgNNNN numbering. The price is that files only the slave has
// are deleted. Two guards: a dir that is empty here (an unmounted spool?)
// is pushed without --delete, and `pbxha-eventhandler sync` pushes only to
// a peer that says it is the slave at this node's epoch or below (never to
// a standby waiting for rejoin, never to another master).
//
// Before `rejoin` of the old master, voicemail or recordings written there
// in the last minutes before the failover (not yet pushed) exist only
// there: `check_pbx_fs_sync --role any -v` on the new master lists them as
// "extra on the peer". Copy what matters by hand: after the rejoin the
// new master's timer (pbxha-sync.timer, every minute) pushes its files
// with --delete and they are gone. rejoin itself does not sync files.
//
// Excludes ([sync] excludes) mean what they mean to check_pbx_fs_sync: a
// pattern without '/' matches a name at any depth, one with '/' the path
// relative to the synced dir (it is anchored with a leading '/' for rsync,
// which would otherwise match it at any depth). .pbxha-canary, which
// check_pbx_rsync --canary writes into the slave's module, is always
// excluded: it is not pushed, and the slave's is not deleted. Excluded
// files on the slave are never deleted (no --delete-excluded).
//
// The password goes to rsync in RSYNC_PASSWORD, never on its command line;
// rsync runs in its own session (it cannot ask a terminal) and its process
// group is killed when the context ends.
package filesync
