// Package dbtest has stand-in database servers on loopback for tests of
// the database checks: they speak just enough of the MySQL and PostgreSQL
// wire protocols to refuse a login with a message of the test's choosing,
// or accept a connection and never answer. What a real server does is
// tested against the lab's (testharness/integration).
package dbtest
