package support

import "time"

// The outbox: the engine's events leave after its lock is released.
//
// A transition (any method, a timer) queues its events with emit while it
// holds e.mu, in the order things happen. unlock releases e.mu and then
// sends what is queued, unless another goroutine is sending already: one
// goroutine at a time sends, oldest event first, and it takes the events
// queued meanwhile by others (or by its own hooks coming back into the
// engine) before it stops. So the events reach the Events in exactly the
// order of the transitions that made them, the same total order as under
// one lock, with no lock held while a hook runs.

// outEvent is one queued Events call: send, or, when send is nil, a Queue push
// (the most frequent event, kept without an allocation).
type outEvent struct {
	send      func(Events)
	visitorID string
	requestID string
	queue     string
	position  int
	wait      time.Duration
}

// emit queues f. The caller holds e.mu.
func (e *Engine) emit(f func(Events)) { e.out = append(e.out, outEvent{send: f}) }

// emitQueue queues a Queue event. The caller holds e.mu.
func (e *Engine) emitQueue(visitorID, requestID, queue string, pos int, est time.Duration) {
	e.out = append(e.out, outEvent{visitorID: visitorID, requestID: requestID, queue: queue, position: pos, wait: est})
}

// unlock releases e.mu, then sends the queued events unless another
// goroutine is sending them. Every transition releases the lock through it.
func (e *Engine) unlock() {
	if e.sending || len(e.out) == 0 {
		e.mu.Unlock()
		return
	}
	e.sending = true
	e.mu.Unlock()
	e.drain()
}

// drain sends the queued events, batch by batch, until none is left. Only
// the goroutine that set e.sending runs it. A hook that panics loses the
// rest of its batch but does not stop the engine's events: the next unlock
// sends again.
func (e *Engine) drain() {
	done := false
	defer func() {
		if !done {
			e.mu.Lock()
			e.sending = false
			e.mu.Unlock()
		}
	}()
	var batch []outEvent
	for {
		e.mu.Lock()
		if batch != nil {
			clear(batch)
			e.spare = batch[:0] // the two buffers take turns
		}
		if len(e.out) == 0 {
			e.sending = false
			e.mu.Unlock()
			done = true
			return
		}
		batch, e.out = e.out, e.spare
		e.spare = nil
		e.mu.Unlock()
		ev := e.opts.Events
		for _, x := range batch {
			if x.send == nil {
				if qe, ok := ev.(QueueEvents); ok && x.queue != "" {
					qe.QueueIn(x.visitorID, x.requestID, x.queue, x.position, x.wait)
				} else {
					ev.Queue(x.visitorID, x.requestID, x.position, x.wait)
				}
				continue
			}
			x.send(ev)
		}
	}
}

// emitRevoked queues an OfferRevoked event. The caller holds e.mu.
func (e *Engine) emitRevoked(agentID, offerID string, r Request, reason string) {
	e.emit(func(ev Events) { ev.OfferRevoked(agentID, offerID, r, reason) })
}

// emitInvitation queues an Invitation event. The caller holds e.mu.
func (e *Engine) emitInvitation(inv Invitation, toVisitor, toAgent bool) {
	e.emit(func(ev Events) { ev.Invitation(inv, toVisitor, toAgent) })
}

// emitJoined queues a ConferenceEvents.Joined event, when the Events hear
// them. The caller holds e.mu.
func (e *Engine) emitJoined(r Request, userID, role, invitedBy string) {
	if _, ok := e.opts.Events.(ConferenceEvents); ok {
		e.emit(func(ev Events) { ev.(ConferenceEvents).Joined(r, userID, role, invitedBy) })
	}
}

// emitLeft queues a ConferenceEvents.Left event, when the Events hear them.
// The caller holds e.mu.
func (e *Engine) emitLeft(r Request, userID, role string) {
	if _, ok := e.opts.Events.(ConferenceEvents); ok {
		e.emit(func(ev Events) { ev.(ConferenceEvents).Left(r, userID, role) })
	}
}

// emitTransferred queues a TransferEvents.Transferred event, when the
// Events hear them. The caller holds e.mu.
func (e *Engine) emitTransferred(r Request, fromAgent, toAgent string) {
	if _, ok := e.opts.Events.(TransferEvents); ok {
		e.emit(func(ev Events) { ev.(TransferEvents).Transferred(r, fromAgent, toAgent) })
	}
}

// emitAsked queues an AskEvents.Asked event, when the Events hear them.
// The caller holds e.mu.
func (e *Engine) emitAsked(r Request) {
	if _, ok := e.opts.Events.(AskEvents); ok {
		e.emit(func(ev Events) { ev.(AskEvents).Asked(r) })
	}
}
