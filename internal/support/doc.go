// Package support is ECB's customer-support routing engine (the Openfire
// Fastpath queue of the seeds): workgroups with a FIFO queue of visitor
// requests (or several ordered queues chosen by the request's metadata,
// each served by its own agents: queues.go), agents with an availability
// and a maximum of concurrent chats,
// and offers made to one agent at a time that the agent accepts or rejects
// and that are revoked when they time out.
//
// The engine knows no transport and no backend. Time comes from a [Clock]
// (tests inject a [ManualClock]); what happens is told through [Events]; the
// support thread is created through a [ThreadCreator] when an agent accepts.
//
// The two state diagrams of the seed hold:
//
//   - visitor: Start --ask--> Queued (queue pushes while waiting) --invitation--> Chat room,
//     and Queued --cancel (or a disconnect longer than the grace period)--> Start;
//   - agent: Start --offer--> Offer Pending --accept--> Chat Pending --invite--> Chat room;
//     Offer Pending --reject or revoke (timeout, visitor cancels, agent unavailable)--> Start;
//     Chat Pending --revoke (the visitor cancels, the thread cannot be created)--> Start.
//
// Guarantees: a request is always in exactly one state (queued, offered,
// pending, chat, or ended: cancelled, dropped, closed); it is offered to at
// most one agent at a time; an agent holds at most one offer and never more
// chats than its limit; within a workgroup the request that has waited
// longest is routed first (a younger request is offered an agent only when
// every older waiting one may not go to that agent, because the agent has
// just rejected or let it time out, or does not serve its queue); a request
// of a workgroup with queues is offered only to the agents of its queue.
//
// # Snapshots
//
// [Engine.Snapshot] copies the whole state as JSON-serializable data and
// [Restore] builds an engine from it that continues where the first one
// stopped: the timers are armed again from their deadlines, in the order
// they were first armed, and a chat that was pending (its Accept ran on the
// engine that is gone) goes back to its place in the queue. [Engine.Halt]
// stops an engine's timers (a node that is no longer the owner). The events
// the engine tells are deterministic for a given sequence of calls and
// times (maps are walked in order), so a restored engine tells exactly what
// the one never restored tells (the property test checks it).
//
// # Concurrency and lock order
//
// An Engine is safe for concurrent use. One mutex guards all its state, and
// nothing outside the package is called while it is held but the [Clock]
// (Now, AfterFunc, Timer.Stop, which must not call the Engine): the
// [Events] are told after it is released, and the ThreadCreator and
// ThreadJoiner are called without it. The engine's mutex is thus a leaf:
// no other lock is taken while it is held (the Clock's only), so a hook may
// take any lock and call anything, the Engine included.
//
// Events keep the order of the transitions. A transition (a method, or a
// timer: offer timeout, cool-down, grace period) queues its events in the
// engine's outbox while it holds the lock, in the order things happen.
// Releasing the lock, it sends them, unless another goroutine is sending
// already: one goroutine at a time sends, oldest first, and it goes on
// until the outbox is empty, taking the events other goroutines queued
// meanwhile. The order is fixed when an event is queued, under the lock,
// not when it is sent, so two goroutines whose transitions interleave
// cannot reorder them: the Events see one total order, that of the
// transitions. In particular the events of one request (and so the
// callbacks of one conversation, keyed by the request) stay in order, and
// a visitor's queue position never goes backwards on the wire.
//
// A hook may come back into the engine: a push that finds a connection too
// slow has the hub cut it, and the connection's end calls VisitorGone or
// AgentGone. The lock is free by then; that call's events join the outbox
// behind those being sent, and the sending goroutine sends them too. The
// price: a method returns with its events sent unless another goroutine was
// sending at the time, which then sends them right after the ones before,
// in order. A hook that blocks delays the later events (never the engine's
// state): hooks should only enqueue, as the hub's pushes and the callback
// poster do.
package support
