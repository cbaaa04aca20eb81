// Package cluster holds the Redis implementations of what the hub and the
// operations declare for many nodes: the Broker (a thread's pushes, their
// positions and history), the Controller (commands to every node), and the
// liveness of nodes that presence and the probes build on. Every key and
// channel lives under Config.Prefix, so several deployments (and parallel
// test runs) share one Redis.
//
// # Data model
//
// Threads are spread over Config.Partitions partitions by a hash of their id;
// each partition's keys carry the hash tag {p<N>}, so that a thread's keys
// sit in one Redis Cluster slot and sharded pub/sub can carry its channel.
//
//	<prefix>:{p<N>}:m:<thread>  hash {e: epoch, o: last offset}; EXPIRE MetaTTL
//	<prefix>:{p<N>}:s:<thread>  stream, entry id 0-<offset>, field d: the push; MAXLEN HistorySize, EXPIRE HistoryTTL
//	<prefix>:{p<N>}:k:<thread>  sorted set: push keys (message ids) by offset, as many as the stream keeps; EXPIRE HistoryTTL
//	<prefix>:{p<N>}:c:<thread>  channel: "<offset> <epoch> <push JSON>" (offset 0: not in the history)
//	<prefix>:{p<N>}:probe       channel: the partition's liveness probe
//	<prefix>:ctl                channel: commands, {"n": sending node, "c": command};
//	                            access changes, {"n": node, "a": {"k": kind, "t": thread, "u": user}}
//	<prefix>:{acc}:o:<len>:<thread>:<user>  an access override (JSON), PXAT its deadline
//	<prefix>:{acc}:t:<thread>   a thread's mark (JSON), PXAT now + StateTTL
//	<prefix>:{acc}:r:<user>     a revocation (JSON), PXAT now + StateTTL
//	<prefix>:{acc}:idx          sorted set: the access keys by deadline (ms; +inf: none)
//	<prefix>:{<name>}:lease     string: a Lease's holder token (node/random), PX ttl (lease.go)
//	<prefix>:{<name>}:state     hash {v: version, d: blob}: written only by the lease's holder (Lua)
//	                            presence changes {"n", "pr": {u: user, o: hash before, w: hash after}};
//	                            relationships {"n", "rel": [notes]}
//	<prefix>:nodes              sorted set: node id → its last heartbeat (Redis clock, unix ms)
//	<prefix>:pres:u:<user>      hash: n:<node> → that node's contribution {n: connections, s: show, st: status, t: since};
//	                            ls → lastSeen (unix ms); EXPIRE 24h once no node field is left
//	<prefix>:pres:n:<node>      set: the users the node contributes to (what a dead node's cleaner removes)
//
// Presence (presence_redis.go): each node writes its contributions from one
// goroutine; one Lua script sets a field and publishes the user's hash
// before and after on the control channel, so that every node sees a
// user's changes in the order they were made and pushes each change to the
// watchers connected to it. Every Heartbeat a node refreshes its score and
// claims (in one script) the nodes whose score is older than DeadAfter; the
// claimer removes their fields, which turns their users offline on every
// node, then unlists them. A node that finds itself unlisted writes its
// contributions again.
//
// A publish is one Lua script: bump the offset (a new epoch when the meta
// hash is gone, and then a new stream), XADD with MAXLEN, EXPIRE, PUBLISH.
// So a subscriber that sees offset N+2 after N knows that N+1 exists, and
// fetches it from the stream before it hands N+2 on; when the stream no
// longer has it, the thread's listeners on this node are told to resync.
//
// While Redis cannot be reached a publish is fanned out to this node's
// listeners alone, at the offsets after the last one the node handed on,
// and the thread is remembered as diverged (at most maxDiverged threads).
// Once Redis answers, heal starts a new epoch for each (one script) and
// publishes "0 ! {}" on its channel: every node's listeners of the thread
// resync, and resume with recovered: false. A node that sees a thread's
// epoch change under pushes it already handed on (Redis lost its data, or
// a heal whose "!" it missed) resyncs them too: the old history is gone.
//
// The AccessStore (access_redis.go) keeps the Server API's live decisions in
// the {acc} keys, one script per write (rules and limit included), and
// every node's cache in step through the control channel; see
// docs/cluster-access.md.
//
// # Concurrency
//
// A partition's subscription connection is read by one goroutine, which
// hands the thread's pushes to the hub (Sink) in order. Lock order: a
// partition's subMu (it serializes that partition's SUBSCRIBE/UNSUBSCRIBE
// commands and is held across them; the reader never takes it), then its mu
// (small state: subscription counts, last positions, confirmation waiters;
// nothing is called under it). The hub is called with no lock of this
// package held, except a partition's local lock: a push fanned out locally
// during an outage gets its offset and is handed to the hub under it (as the
// memory broker's deliver lock), so that local pushes keep their order; mu
// and divMu (the diverged threads) are taken inside it, mu before divMu,
// and released before the hub is called. The control channel's reader
// calls the AccessStore (Redis reads, then its cache's own mutex, held
// briefly and calling nothing out) in the channel's order; the AccessStore
// has no lock of its own.
// Presence's mu only guards its pending sets; the presence
// service (Contribution, PresenceChanged, Noted) is called without it, the
// latter two on the control channel's reader.
package cluster
