package netnsdial

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread switched into the network namespace ns, so that
// every socket fn creates belongs to ns. fn must not start goroutines that
// create sockets: they would run on other threads, in the caller's namespace.
// An empty ns runs fn in the current namespace.
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	type result struct{ err error }
	done := make(chan result, 1)
	// A fresh goroutine keeps the caller's thread untouched; if switching
	// back fails, the goroutine exits still locked and the runtime throws the
	// thread away instead of reusing it in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("reading the current network namespace failed: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("opening network namespace %q failed: %w", ns, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("entering network namespace %q failed: %w", ns, err)}
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- result{fmt.Errorf("leaving network namespace %q failed: %w", ns, err)}
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		done <- result{ferr}
	}()
	return (<-done).err
}

// DialContext connects to address over network ("tcp", "udp", "unix"...)
// from inside the network namespace ns.
func DialContext(ctx context.Context, ns, network, address string) (net.Conn, error) {
	if err := literal(network, address); err != nil {
		return nil, err
	}
	var conn net.Conn
	err := Do(ns, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dialing %s %s in namespace %q failed: %w", network, address, ns, err)
	}
	return conn, nil
}

// literal refuses host names for IP networks: resolving one may make the
// net package dial several addresses from parallel goroutines, whose sockets
// would be created on other threads, outside the namespace. (And the lab
// has no DNS.)
func literal(network, address string) error {
	switch network {
	case "unix", "unixgram", "unixpacket":
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dialing %s %q: %w", network, address, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("dialing %s %q: host must be an IP address inside the namespace, not a name", network, address)
	}
	return nil
}

// Dialer returns a dial function for ns with the signature the MySQL driver
// (mysql.Config.DialFunc) and pgx (pgconn.Config.DialFunc) expect.
func Dialer(ns string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		return DialContext(ctx, ns, network, address)
	}
}

// Listen opens a listener on address inside ns (for a test's fake peer).
func Listen(ns, network, address string) (net.Listener, error) {
	var l net.Listener
	err := Do(ns, func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s %s in namespace %q failed: %w", network, address, ns, err)
	}
	return l, nil
}

// ListenPacket opens a packet socket (udp) on address inside ns.
func ListenPacket(ns, network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s %s in namespace %q failed: %w", network, address, ns, err)
	}
	return pc, nil
}
