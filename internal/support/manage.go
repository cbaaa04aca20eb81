package support

import (
	"slices"
	"sort"
)

// Managing workgroups at run time (the Server API's /workgroups): adding,
// changing and removing them while the engine serves. Changes live in the
// engine's memory (and in its Snapshot, which cluster mode saves in
// Redis): a restart of a lone node returns to the configuration.

// PutWorkgroup adds a workgroup or replaces its settings; its queue and
// agents stay, offers already made keep their expiry unless a lower
// maxChats leaves their agent no room (revoked, reason unavailable, and
// passed on). It reports whether the
// workgroup is new. A new workgroup is served at once by the agents whose
// token named it (their SetAvailability claims), available or not.
func (e *Engine) PutWorkgroup(w Workgroup) (created bool, err error) {
	if err := w.Validate(); err != nil {
		return false, err
	}
	w.RequiredFields = slices.Clone(w.RequiredFields)
	w.Queues = cloneQueues(w.Queues)
	e.mu.Lock()
	defer e.unlock()
	if g := e.wgs[w.Name]; g != nil {
		// Changed queues: every waiting request lands again in the first
		// new queue it matches (refused when one would match none).
		moved, err := e.requeue(g, w)
		if err != nil {
			return false, err
		}
		g.Workgroup = w
		for r, name := range moved {
			r.Queue = name
		}
		for name := range g.qstats {
			if w.queue(name) == nil {
				delete(g.qstats, name)
			}
		}
		// A lower maxChats takes back the offers that no longer fit, and
		// changed queues those made to an agent of another queue.
		for _, a := range e.sortedAgents() {
			if a.offer != nil && a.offer.req.Workgroup == w.Name {
				e.revokeIfOver(a)
			}
			if o := a.offer; o != nil && o.req.Workgroup == w.Name && o.req.Queue != "" && !g.serves(o.req.Queue, a.id) {
				e.dropOffer(o, ReasonUnavailable)
				e.emitRevoked(a.id, o.id, o.req.snapshot(), ReasonUnavailable)
			}
		}
		e.routeAll() // an agent whose offer went back may take another workgroup's request
		e.pushAll()
		return false, nil
	}
	e.wgs[w.Name] = &wgState{Workgroup: w}
	for _, a := range e.agents {
		if slices.Contains(a.claimed, w.Name) {
			a.workgroups[w.Name] = true
		}
	}
	return true, nil
}

// RemoveWorkgroup stops serving workgroup name: its agents no longer serve
// it (they keep the claim: a workgroup of the same name added later is
// theirs again). It is refused with KindConflict while the workgroup has
// waiting requests or live chats (close it first, Open false, and let them
// end), with KindNotFound when there is no such workgroup.
func (e *Engine) RemoveWorkgroup(name string) error {
	e.mu.Lock()
	defer e.unlock()
	g := e.wgs[name]
	if g == nil {
		return errf(KindNotFound, "no workgroup %q", name)
	}
	if n := len(g.waiting); n > 0 {
		return errf(KindConflict, "workgroup %q has %d waiting request(s): close it (open: false) and let its queue drain first", name, n)
	}
	chats := 0
	for _, r := range e.requests {
		if r.Workgroup == name {
			chats++
		}
	}
	if chats > 0 {
		return errf(KindConflict, "workgroup %q has %d live chat(s): close it (open: false) and let them end first", name, chats)
	}
	delete(e.wgs, name)
	for _, a := range e.agents {
		delete(a.workgroups, name)
	}
	return nil
}

// WorkgroupInfo is a workgroup's settings and its live status.
type WorkgroupInfo struct {
	Workgroup Workgroup
	Status    Status
	Chats     int // live chats, pending or in progress
}

// Workgroup returns the settings and status of workgroup name.
func (e *Engine) Workgroup(name string) (WorkgroupInfo, error) {
	e.mu.Lock()
	defer e.unlock()
	g := e.wgs[name]
	if g == nil {
		return WorkgroupInfo{}, errf(KindNotFound, "no workgroup %q", name)
	}
	return e.info(g), nil
}

// WorkgroupInfos returns every workgroup's settings and status, by name.
func (e *Engine) WorkgroupInfos() []WorkgroupInfo {
	e.mu.Lock()
	defer e.unlock()
	out := make([]WorkgroupInfo, 0, len(e.wgs))
	for _, g := range e.wgs {
		out = append(out, e.info(g))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workgroup.Name < out[j].Workgroup.Name })
	return out
}

func (e *Engine) info(g *wgState) WorkgroupInfo {
	w := g.Workgroup
	w.RequiredFields = slices.Clone(w.RequiredFields)
	w.Queues = cloneQueues(w.Queues)
	chats := 0
	for _, r := range e.requests {
		if r.Workgroup == g.Name && (r.State == StatePending || r.State == StateChat) {
			chats++
		}
	}
	return WorkgroupInfo{Workgroup: w, Status: e.status(g, e.opts.Clock.Now()), Chats: chats}
}

// claims returns the distinct workgroup names of a token's claim.
func claims(workgroups []string) []string {
	out := slices.Clone(workgroups)
	slices.Sort(out)
	return slices.Compact(out)
}
