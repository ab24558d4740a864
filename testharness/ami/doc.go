// Package ami is the lab's stand-in for Asterisk's Manager Interface: a TCP
// server that speaks the manager protocol byte for byte as Asterisk 20's
// main/manager.c does (no Asterisk package exists for the lab's OS), so the
// AMI check and the goami2 library are tested against the real framing:
// the one-line greeting, CRLF lines, empty-line-terminated messages, an
// ActionID echoed right after Response, events arriving between a request
// and its response, and the session ending after a failed login.
//
// The lab starts it on node1 (port 5038) with Serve on a listener made in
// the node's namespace; tests use Listen on 127.0.0.1:0. SetFault makes it
// misbehave (refused logins, no greeting, a response cut in half, garbage),
// SetCore sets what CoreStatus reports and Emit pushes an event.
//
// Sources followed (asterisk/asterisk main/manager.c, 20 branch):
// session_do (greeting), get_input/do_message (line and message limits),
// process_message (error texts), action_login/authenticate, action_ping,
// action_corestatus, action_coresettings, action_command, action_logoff,
// astman_send_response_full (field order).
package ami
