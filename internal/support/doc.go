// Package support is ECB's customer-support routing engine (the Openfire
// Fastpath queue of the seeds): workgroups with a FIFO queue of visitor
// requests, agents with an availability and a maximum of concurrent chats,
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
// just rejected or let it time out).
//
// An Engine is safe for concurrent use. One mutex guards all its state;
// [Events] methods are called with it held, in the order things happen, so
// they must not block and must not call back into the Engine. The
// ThreadCreator is called without it.
package support
