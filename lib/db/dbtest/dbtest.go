package dbtest

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// serve listens on 127.0.0.1 and runs handle for every connection until
// the test ends.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// MySQLRefuses is a MySQL server that answers every connection with an
// error packet instead of its greeting, as a server does for "Host is not
// allowed to connect" or "Too many connections". It returns host:port.
func MySQLRefuses(t testing.TB, errno uint16, sqlState, msg string) string {
	return serve(t, func(c net.Conn) {
		defer c.Close()
		payload := []byte{0xff, byte(errno), byte(errno >> 8), '#'}
		payload = append(payload, sqlState...)
		payload = append(payload, msg...)
		head := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), 0}
		c.Write(append(head, payload...))
	})
}

// PGRefuses is a PostgreSQL server that reads the startup message and
// answers with an ErrorResponse (severity FATAL, the given SQLSTATE and
// message), as it does for a failed login. The client must not ask for
// TLS (sslmode=disable).
func PGRefuses(t testing.TB, code, msg string) string {
	return serve(t, func(c net.Conn) {
		defer c.Close()
		var n uint32
		if binary.Read(c, binary.BigEndian, &n) != nil || n < 8 || n > 1<<16 {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(n-4)); err != nil {
			return
		}
		var body []byte
		for _, f := range []struct {
			k byte
			v string
		}{{'S', "FATAL"}, {'V', "FATAL"}, {'C', code}, {'M', msg}} {
			body = append(body, f.k)
			body = append(body, f.v...)
			body = append(body, 0)
		}
		body = append(body, 0)
		out := []byte{'E', 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[1:], uint32(len(body)+4))
		c.Write(append(out, body...))
	})
}

// Silent accepts connections and never sends a byte: a server that is
// stopped (SIGSTOP) or wedged, whose kernel still completes the handshake.
func Silent(t testing.TB) string {
	return serve(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		c.Close()
	})
}
