package ami

import (
	"context"
	"errors"
	"time"
)

// Stage is how far a session got.
type Stage int

// The stages in order; each includes the ones before.
const (
	StageNone      Stage = iota
	StageConnected       // TCP (and TLS) up
	StageGreeted         // Asterisk's greeting read
	StageLoggedIn        // login accepted
	StagePinged          // Ping answered
	StageCore            // CoreStatus answered (read or not: see CoreErr)
)

// Observation is what one session learned, up to the step that failed.
type Observation struct {
	Addr    string
	TLS     bool
	User    string
	Reached Stage
	Version string // the AMI version the greeting announced

	Connect time.Duration // TCP connect plus TLS handshake
	Login   time.Duration // from sending Login to its response
	Ping    time.Duration // Ping's round trip

	Pong Pong
	Core CoreStatus
	// Now is when CoreStatus answered: the server's clock (Ping's
	// Timestamp, moved on by the time since) when it gave one, else ours.
	Now time.Time

	// Err is the failure that ended the session; nil when every step
	// worked.
	Err error
	// CoreErr: the server answers but its CoreStatus could not be used
	// (the user may not read it, or it lacks the call count).
	CoreErr error

	Skipped int // events skipped while waiting for responses
}

// Login is who logs in and how.
type Login struct {
	User   string
	Secret string
	MD5    bool // challenge-response: the secret never crosses the network
	// Location is the zone CoreStatus's dates are read in (Asterisk
	// prints its local time); nil means this host's.
	Location *time.Location
}

// Probe runs one check session: connect, greeting, login, Ping,
// CoreStatus, logoff. Every step is bounded by ctx; the logoff only by a
// short part of what is left, and its failure changes nothing.
func Probe(ctx context.Context, o Options, l Login) (obs Observation) {
	obs = Observation{Addr: o.Addr, TLS: o.TLS != nil, User: l.User}
	loc := l.Location
	if loc == nil {
		loc = time.Local
	}
	c, d, err := Dial(ctx, o)
	if err != nil {
		obs.Err = err
		return obs
	}
	defer c.Close()
	obs.Connect, obs.Reached = d, StageConnected
	defer func() { obs.Skipped = c.Skipped() }()

	if obs.Version, err = c.Greeting(ctx); err != nil {
		obs.Err = err
		return obs
	}
	obs.Reached = StageGreeted

	start := time.Now()
	if err := c.Login(ctx, l.User, l.Secret, l.MD5); err != nil {
		obs.Err = err
		return obs
	}
	obs.Login, obs.Reached = time.Since(start), StageLoggedIn

	start = time.Now()
	pong, err := c.Ping(ctx)
	if err != nil {
		obs.Err = err
		return obs
	}
	obs.Ping, obs.Pong, obs.Reached = time.Since(start), pong, StagePinged

	cs, err := c.CoreStatus(ctx, loc)
	var se *StepError
	if errors.As(err, &se) {
		obs.Err = err
		return obs
	}
	obs.Reached = StageCore
	obs.Core, obs.CoreErr = cs, err
	obs.Now = time.Now()
	if !pong.Timestamp.IsZero() {
		obs.Now = pong.Timestamp.Add(time.Since(start) - obs.Ping/2)
	}

	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Logoff(lctx); err != nil {
		c.debugf(2, "logoff: %v", err)
	}
	return obs
}
