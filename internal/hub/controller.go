package hub

import "context"

// A Command is an effect on connections that must take place on every node:
// on the connections of one user (UserID set) or on the listeners of one
// thread (UserID empty, ThreadID set). The Server API and the operations
// issue them through a Controller, so that a ban, a kick or a deleted thread
// reaches the connections wherever they are.
type Command struct {
	// UserID selects the connections of a user; empty selects the
	// listeners of ThreadID.
	UserID string `json:"u,omitempty"`
	// ThreadID is the thread that Detach stops them listening to; with a
	// UserID and without Detach it only narrows nothing.
	ThreadID string `json:"t,omitempty"`
	// Push is delivered to the selected connections first (nil: none); with
	// Detach it is the last push of the thread they get.
	Push *Push `json:"p,omitempty"`
	// Skip is the id (ConnID) of a connection that does not get Push.
	Skip string `json:"s,omitempty"`
	// Detach stops the selected connections listening to ThreadID.
	Detach bool `json:"d,omitempty"`
	// Disconnect, when set, closes the selected connections with this reason.
	Disconnect Reason `json:"x,omitempty"`
}

// Controller delivers commands to the Sink of every other node (the hub
// applies them on its own node itself, at once). Commands sent from one node
// reach each other node in the order they were sent.
type Controller interface {
	Send(ctx context.Context, cmd Command) error
}

// BatchController is a Controller that sends several commands in one round
// trip; each other node gets them in their order, as if sent one by one.
// The hub uses it where it has several commands at once (SendToUsers).
type BatchController interface {
	Controller
	SendAll(ctx context.Context, cmds []Command) error
}

// localController is the Controller of a node alone: there is nobody else.
type localController struct{}

func (localController) Send(context.Context, Command) error { return nil }
