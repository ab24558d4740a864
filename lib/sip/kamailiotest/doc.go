// Package kamailiotest runs a real Kamailio on 127.0.0.1 for the tests of
// check_pbx_sip, and the silent peers (UDP and TCP tarpits) a SIP check
// must survive. Without Kamailio a test skips, or fails under CI=true.
package kamailiotest
