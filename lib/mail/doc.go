// Package mail sends the admin's email over SMTP (no local MTA) and never
// loses one: a message that cannot be sent is spooled as a file, written
// atomically, and sent by the next Flush.
package mail
