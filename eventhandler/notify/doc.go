// Package notify is pbxha-notify: the NotificationCommand Icinga runs for
// every check's problem, recovery, acknowledgement, downtime and flapping
// notifications (icinga-conf/notifications.conf fixes its command line).
// It mails the recipient over the SMTP of cluster.toml with lib/mail, so
// no local MTA is needed, and a mail that cannot be sent now is spooled and
// sent by a later run: every run first sends the spool, oldest first, so
// the admin reads a PROBLEM before its RECOVERY. `--flush` only sends the
// spool.
package notify
