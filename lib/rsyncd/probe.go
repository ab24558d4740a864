package rsyncd

import (
	"context"
	"errors"
)

// Request is what one check asks of the daemon.
type Request struct {
	Modules []string // expected modules; may be empty
	// Cred logs in to each expected module when Login is set; a module
	// the daemon does not list is opened either way, to tell a hidden
	// module ("list = no") from a missing one.
	Cred  *Credentials
	Login bool
	// Canary, when set, transfers a canary through Modules[0].
	Canary *CanaryOptions
}

// ModuleCheck is what was learned about one expected module.
type ModuleCheck struct {
	Name   string
	Listed bool
	Access *Access // a session opened the module
	Err    error
}

// Observation is what one check learned, up to the step that failed.
type Observation struct {
	Addr    string
	Listing Listing
	// Greeted: the daemon's greeting arrived (Listing.Greeting and
	// Listing.Connect are valid).
	Greeted bool
	ListErr error // why the module list could not be read
	Modules []ModuleCheck
	Canary  *Canary
	User    string // who logged in, when a password was given
}

// Probe lists the modules, opens those that need it and runs the canary.
// Every step is bounded by ctx.
func Probe(ctx context.Context, o Options, req Request) Observation {
	obs := Observation{Addr: o.Addr}
	if req.Cred != nil {
		obs.User = req.Cred.User
	}
	l, err := List(ctx, o)
	obs.Listing, obs.Greeted, obs.ListErr = l, l.Greeted, err
	if err != nil {
		return obs
	}
	listed := map[string]bool{}
	for _, m := range l.Modules {
		listed[m.Name] = true
	}
	ok := true
	for _, name := range req.Modules {
		mc := ModuleCheck{Name: name, Listed: listed[name]}
		var cred *Credentials
		if req.Login {
			cred = req.Cred
		}
		if cred != nil || !mc.Listed {
			a, err := Open(ctx, o, name, cred)
			mc.Access, mc.Err = &a, err
			if err != nil {
				ok = false
				var ue *UnknownModuleError
				if errors.As(err, &ue) {
					mc.Access = nil
				}
			}
		}
		obs.Modules = append(obs.Modules, mc)
	}
	if req.Canary != nil && ok && len(req.Modules) > 0 && ctx.Err() == nil {
		co := *req.Canary
		co.Module = req.Modules[0]
		c := RunCanary(ctx, co)
		obs.Canary = &c
	}
	return obs
}
