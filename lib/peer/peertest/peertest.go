// Package peertest runs a peer node in-process for tests: a real SSH
// server (golang.org/x/crypto/ssh) on 127.0.0.1 with a generated host key,
// which accepts one client key and answers exec requests with lib/peer's
// dispatcher, as sshd and pbxha-peer do on a node. Checks that ask the peer
// something (check_pbx_cluster, check_pbx_net_failover, check_pbx_time
// --peer) test against it without a lab:
//
//	p := peertest.Start(t, peertest.Options{State: cluster.State{Role: cluster.Slave, Epoch: 3}})
//	c, err := peer.Dial(ctx, p.Config())
package peertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"pbxha/lib/cluster"
	"pbxha/lib/config"
	"pbxha/lib/peer"
)

// Node names in the configs peertest writes: the test is Self, the
// in-process server is Peer.
const (
	Self = "node1"
	Peer = "node2"
)

// Options shape the fake peer.
type Options struct {
	// Server answers the commands. nil: a Server whose config names this
	// node Peer, with a state file holding State and a VIP reported as
	// VIPBound.
	Server   *peer.Server
	State    cluster.State
	VIPBound bool
	// AuthorizedKey is the only client key accepted (nil: the generated
	// one, Peer.KeyFile).
	AuthorizedKey ssh.PublicKey
	// Silent accepts TCP connections and never sends a byte.
	Silent bool
	// Hang accepts every exec request and never answers it.
	Hang bool
	// StartDelay is slept before each command runs, as a busy node takes
	// to start pbxha-peer.
	StartDelay time.Duration
	// ECDSAHostKey adds an ECDSA host key, which SSH clients prefer to
	// ed25519 unless told otherwise, as a stock sshd has; KnownHosts
	// still lists only the ed25519 one.
	ECDSAHostKey bool
}

// Server is a running fake peer.
type Server struct {
	Addr       netip.AddrPort
	HostKey    ssh.PublicKey
	KeyFile    string // the client key it accepts (OpenSSH format, no passphrase)
	KnownHosts string // one line: Addr with HostKey
	StateFile  string // the default Server's state file ("" with Options.Server)
	Dir        string

	srv   *peer.Server
	o     Options
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	lines []string
	wg    sync.WaitGroup
	ctx   context.Context
}

// Start starts a fake peer; it stops at the end of the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{Dir: dir, o: o, KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	clientPub := WriteKey(t, s.KeyFile)
	if o.AuthorizedKey == nil {
		o.AuthorizedKey = clientPub
		s.o = o
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = hostSigner.PublicKey()

	s.srv = o.Server
	if s.srv == nil {
		s.StateFile = filepath.Join(dir, "state.json")
		st := o.State
		if st.Node == "" {
			st.Node = Peer
		}
		if st.Role == "" {
			st.Role = cluster.Slave
		}
		if st.Epoch == 0 {
			st.Epoch = 1
		}
		if st.Since.IsZero() {
			st.Since = time.Now().UTC().Truncate(time.Second)
		}
		if err := cluster.WriteState(s.StateFile, st); err != nil {
			t.Fatal(err)
		}
		cfg := clusterConfig(Peer, netip.MustParseAddrPort("127.0.0.1:22"))
		cfg.StateFile = s.StateFile
		bound := o.VIPBound
		s.srv = &peer.Server{Config: cfg, VIPBound: func(string, netip.Prefix) (bool, error) { return bound, nil }}
	}

	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = s.ln.Addr().(*net.TCPAddr).AddrPort()
	line := knownhosts.Line([]string{s.Addr.String()}, s.HostKey) + "\n"
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}

	sc := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(s.o.AuthorizedKey.Marshal()) {
				return nil, nil
			}
			return nil, errRefused
		},
	}
	sc.AddHostKey(hostSigner)
	if o.ECDSAHostKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		es, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		sc.AddHostKey(es)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx = ctx
	t.Cleanup(func() {
		cancel()
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	s.wg.Go(func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			if s.o.Silent {
				continue
			}
			s.wg.Go(func() { s.serveConn(c, sc) })
		}
	})
	return s
}

type refused struct{}

func (refused) Error() string { return "key not authorized" }

var errRefused = refused{}

func (s *Server) serveConn(c net.Conn, sc *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, sc)
	if err != nil {
		c.Close()
		return
	}
	s.wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.wg.Go(func() { s.serveSession(ch, creqs) })
	}
}

// serveSession does what sshd does with a forced command: the client's
// command line becomes $SSH_ORIGINAL_COMMAND of pbxha-peer, whose stdout
// goes back on the channel, followed by its exit status.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			req.Reply(false, nil)
			continue
		}
		req.Reply(true, nil)
		s.mu.Lock()
		s.lines = append(s.lines, p.Command)
		s.mu.Unlock()
		if s.o.Hang {
			continue
		}
		time.Sleep(s.o.StartDelay)
		code := s.srv.ServeLineIO(s.ctx, p.Command, peer.IO{In: ch, Out: ch, Err: ch.Stderr()})
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
		return
	}
}

// Lines are the command lines the peer received, in order.
func (s *Server) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Config is a cluster.toml for the test's side: this node is Self, the
// peer is Peer at s.Addr, with s's key and known_hosts.
func (s *Server) Config() *config.Config {
	cfg := clusterConfig(Self, s.Addr)
	cfg.SSH.KeyFile = s.KeyFile
	cfg.SSH.KnownHosts = s.KnownHosts
	cfg.StateFile = filepath.Join(s.Dir, "self-state.json")
	return cfg
}

// clusterConfig is a two-node config naming node self, the peer reachable
// on the cluster network at peer.
func clusterConfig(self string, peerAddr netip.AddrPort) *config.Config {
	return &config.Config{
		ClusterID: "peertest",
		Node:      self,
		VIP:       config.VIP{Address: "192.0.2.10/24", Interface: "tel0"},
		Nodes: []config.Node{
			{Name: Self, TelephonyIP: "192.0.2.11", ClusterIP: "127.0.0.2", TelephonyInterface: "tel0", ClusterInterface: "lo"},
			{Name: Peer, TelephonyIP: "192.0.2.12", ClusterIP: peerAddr.Addr().String(), TelephonyInterface: "tel0", ClusterInterface: "lo"},
		},
		SSH: config.SSH{
			User:           "root",
			Port:           int(peerAddr.Port()),
			ConnectTimeout: config.Duration{Duration: 2 * time.Second},
		},
	}
}

// WriteKey writes a fresh ed25519 key without passphrase to path (OpenSSH
// format) and returns its public half.
func WriteKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "peertest")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}
