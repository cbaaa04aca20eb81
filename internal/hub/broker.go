package hub

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Position is a place in a thread's push history.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Broker carries the pushes of threads between the nodes that have listeners
// of them, and keeps each thread's recent history under one offset sequence
// for the whole cluster. The broker assigns the position: Publish fills the
// push's Epoch and Offset. A node's own publishes come back to it through its
// Sink like everybody else's; local fan-out is one subscriber of the broker,
// not a shortcut beside it.
//
// Implementations: the in-memory broker of one node (NewMemoryBroker, the
// default) and the Redis broker of cluster mode (package cluster).
type Broker interface {
	// Publish appends p to threadID's history at the next position, sets
	// p.Epoch and p.Offset, and hands p to the Sink of every node subscribed
	// to the thread. Pushes of one thread reach each Sink in offset order.
	// A p.Key already published in the kept history publishes nothing,
	// sets p.Repeated and returns the earlier position.
	Publish(ctx context.Context, threadID string, p *Push) (Position, error)
	// Broadcast hands p, which takes no place in the history (typing), to
	// the Sink of every node subscribed to threadID, in order with the
	// thread's other pushes.
	Broadcast(ctx context.Context, threadID string, p *Push) error
	// Subscribe makes the Sink of this node receive threadID's pushes and
	// returns the thread's position at a moment after which every push
	// reaches the Sink (pushes up to it may reach it too: the hub drops
	// them). Calls are counted: Unsubscribe undoes one Subscribe.
	Subscribe(ctx context.Context, threadID string) (Position, error)
	// Unsubscribe undoes one Subscribe.
	Unsubscribe(ctx context.Context, threadID string) error
	// Position returns threadID's current position, starting a history
	// when there is none yet (so that a client told it can later recover).
	Position(ctx context.Context, threadID string) (Position, error)
	// History returns threadID's pushes after from, in order, AgentsOnly
	// ones included (the hub filters them per connection), and the
	// position now. ok is false when they cannot all be given: another
	// epoch (the history was lost), an offset from the future, or a gap
	// older than the kept history.
	History(ctx context.Context, threadID string, from Position) (pushes []*Push, now Position, ok bool, err error)
}

// Sink receives what a Broker and a Controller deliver to this node. The Hub
// is the Sink; the broker calls it from one goroutine per thread at a time
// (pushes of a thread in offset order) and HandlePush never blocks.
type Sink interface {
	HandlePush(threadID string, p *Push)
	HandleCommand(cmd Command)
	// Resync tells the Sink that pushes of threadID were lost and cannot be
	// given again: its listeners must resume.
	Resync(threadID string)
}

// BrokerBinder is implemented by a Broker or Controller that needs the Sink
// it delivers to; New binds the Hub.
type BrokerBinder interface {
	Bind(sink Sink)
}

// ErrUnavailable is wrapped by the errors of a Broker or Controller that
// cannot reach its shared state (cluster mode with Redis down).
var ErrUnavailable = errors.New("hub: broker unavailable")

// Payload returns the push's JSON with its position: for a push with an
// offset, {"epoch":...,"offset":N,...Data's fields}, otherwise Data. The
// position travels beside the payload (the broker assigns it after the
// payload was made); each transport's encoder calls Payload once per push.
func (p *Push) Payload() []byte {
	if p.Offset == 0 || len(p.Data) < 2 || p.Data[0] != '{' {
		return p.Data
	}
	b := make([]byte, 0, len(p.Data)+len(p.Epoch)+40)
	b = append(b, `{"epoch":`...)
	b = strconv.AppendQuote(b, p.Epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, p.Offset, 10)
	rest := p.Data[1:]
	if len(rest) > 0 && rest[0] != '}' {
		b = append(b, ',')
	}
	return append(b, rest...)
}

// timeout bounds the broker and controller calls that the hub makes for
// callers without a context of their own (pushes to users, broadcasts).
const timeout = 5 * time.Second
