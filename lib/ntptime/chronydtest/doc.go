// Package chronydtest starts a real chronyd on loopback for tests: an NTP
// server (optionally with its clock shifted by libfaketime), a client of
// another one, or a daemon with no source at all. It never touches the
// system clock (-x) and keeps every file, the command socket included, in
// the test's temporary directory.
package chronydtest
