package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"

	"pbxha/lib/fssync/manifest"
	"pbxha/lib/plugin"
)

// Checksum policies of `manifest`: which files the peer hashes.
const (
	ChecksumNone   = "none"
	ChecksumAll    = "all"
	ChecksumRecent = "recent" // files modified in the last SINCE_S seconds
)

// MaxSyncDirs bounds the INDEX of `manifest`.
const MaxSyncDirs = 64

// manifestParams is `manifest INDEX CHECKSUM SINCE_S`. The client names a
// directory only by its index in the peer's own [sync] dirs: no path
// from the network is ever opened.
var manifestParams = []param{
	{name: "INDEX", kind: kindInt, min: 0, max: MaxSyncDirs - 1},
	{name: "CHECKSUM", kind: kindWord, words: []string{ChecksumNone, ChecksumAll, ChecksumRecent}},
	{name: "SINCE_S", kind: kindInt, min: 0, max: 999999999},
}

// ManifestReply ends the stream of `manifest`: the directory walked (the
// client checks it is the one it meant) and how many records came.
type ManifestReply struct {
	Status
	Dir     string `json:"dir"`
	Entries int    `json:"entries"`
}

// manifest streams the manifest of [sync] dirs[INDEX], the peer's own
// excludes applied, to stdout; the reply line follows the records.
func (s *Server) manifest(c call) (replier, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	i := c.req.Args[0].(int)
	if i >= len(cfg.Sync.Dirs) {
		return nil, fmt.Errorf("no sync dir %d: %s lists %d", i, cfg.Path(), len(cfg.Sync.Dirs))
	}
	var h manifest.HashPolicy
	switch c.req.Args[1].(string) {
	case ChecksumAll:
		h.All = true
	case ChecksumRecent:
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		h.Since = now().Add(-time.Duration(c.req.Args[2].(int)) * time.Second)
	}
	r := &ManifestReply{Dir: cfg.Sync.Dirs[i]}
	r.Entries, err = manifest.Write(c.ctx, c.io.Out, r.Dir, cfg.Sync.Excludes, h)
	return r, err
}

// ManifestStream is the peer's manifest as it arrives. Read it with Next
// until io.EOF, then call Close for the peer's verdict.
type ManifestStream struct {
	*manifest.Reader
	c      *Client
	req    Request
	sess   *ssh.Session
	stderr *capture
	stop   func() bool
	ctx    context.Context
}

// Manifest asks the peer for the manifest of its sync dir number index
// (see `manifest` in the package doc). checksum is ChecksumNone,
// ChecksumAll or ChecksumRecent with since.
func (c *Client) Manifest(ctx context.Context, index int, checksum string, since time.Duration) (*ManifestStream, error) {
	req, err := NewRequest("manifest", index, checksum, int(since/time.Second))
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("peer command manifest: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	sess, err := c.conn.NewSession()
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("peer command manifest: no answer from %s: %w", c.node, ctx.Err())
		}
		return nil, fmt.Errorf("peer command manifest: opening a session on %s: %w", c.node, err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		stop()
		sess.Close()
		return nil, err
	}
	stderr := &capture{max: 4096}
	sess.Stderr = stderr
	if err := sess.Start(req.String()); err != nil {
		stop()
		sess.Close()
		return nil, fmt.Errorf("peer command manifest: on %s: %w", c.node, err)
	}
	return &ManifestStream{Reader: manifest.NewReader(out), c: c, req: req, sess: sess, stderr: stderr, stop: stop, ctx: ctx}, nil
}

// Close waits for the peer to finish and returns its reply: an error when
// the peer reported one, the stream ended without a reply, or the peer's
// exit status says it failed.
func (m *ManifestStream) Close() (ManifestReply, error) {
	defer m.stop()
	defer m.sess.Close()
	var r ManifestReply
	fail := func(format string, args ...any) error {
		return fmt.Errorf("peer command manifest: "+format, args...)
	}
	trailer := m.Trailer()
	if trailer == nil {
		// Closed early (a read error): do not wait for a peer still
		// writing records.
		m.sess.Close()
	}
	err := m.sess.Wait()
	if m.ctx.Err() != nil {
		return r, fail("no answer from %s: %w", m.c.node, m.ctx.Err())
	}
	if trailer == nil {
		msg := "ended without a reply"
		m.stderr.mu.Lock()
		if s := plugin.Clean(string(m.stderr.b), 0); s != "" {
			msg += ": " + s
		}
		m.stderr.mu.Unlock()
		return r, fail("%s from %s (is the cluster key pinned to pbxha-peer in authorized_keys there?)", msg, m.c.node)
	}
	if jerr := json.Unmarshal(bytes.TrimSpace(trailer), &r); jerr != nil {
		return r, fail("the reply from %s is not what pbxha-peer writes: %v: %q", m.c.node, jerr, plugin.Clean(string(trailer), 80))
	}
	code := 0
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitStatus()
	} else if err != nil && !errors.Is(err, io.EOF) {
		return r, fail("on %s: %w", m.c.node, err)
	}
	if msg := r.errorText(); msg != "" {
		return r, &RemoteError{Node: m.c.node, Command: m.req.Name, ExitCode: code, Message: plugin.Clean(msg, 0)}
	}
	if code != 0 {
		return r, fail("exit status %d from %s without an error message", code, m.c.node)
	}
	if r.Entries != m.Count() {
		return r, fail("%s announced %d entries, %d arrived", m.c.node, r.Entries, m.Count())
	}
	r.Dir = plugin.Clean(r.Dir, 0)
	return r, nil
}
