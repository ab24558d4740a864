// Package eventhandler is pbxha-eventhandler: the command Icinga runs as
// the event handler of the failover-class checks (`handle`), plus `flush`
// for the mail spool. The actions themselves live in lib/failover; this
// package parses the command line, takes the lock, logs, and mails the
// admin.
package eventhandler
