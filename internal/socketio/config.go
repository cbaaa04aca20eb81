package socketio

import (
	"log/slog"
	"net/http"
	"time"
)

// Config holds the settings of a Server or an Engine. The zero value of every
// field means its documented default, filled in by NewServer and NewEngine.
type Config struct {
	// PingInterval is how often the server sends an Engine.IO ping. Default 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong before it closes
	// the connection with reason "ping timeout". Default 20s.
	PingTimeout time.Duration
	// MaxPayload is the largest message, in bytes, the server accepts from a
	// client: one WebSocket message, or the body of one polling POST. The
	// client learns it from the open packet. Default 1,000,000.
	MaxPayload int
	// ConnectTimeout closes an Engine.IO connection that has not joined any
	// Socket.IO namespace in that time. Default 45s. Server only.
	ConnectTimeout time.Duration
	// WriteQueueBytes bounds, per connection, the bytes queued for the client
	// and not yet written. A send that would pass it closes the connection as a
	// slow consumer (reason "slow consumer"). One message larger than the bound
	// is accepted when the queue is empty. Default 1 MiB.
	WriteQueueBytes int
	// WriteTimeout bounds one batched write to a WebSocket; a client that does
	// not read for that long is closed (reason "transport error"). Default 10s.
	WriteTimeout time.Duration
	// WriteDelay is how long a WebSocket connection that gets something to
	// write waits before the write, so that what is queued for it meanwhile
	// (a busy thread's next pushes) leaves in the same write(2): latency
	// traded for fewer system calls, like centrifuge's WriteDelay; every
	// write waits, acks included, so keep it small (milliseconds). Frames
	// queued while a connection waits for a writer or is being written
	// always leave together, with or without it. Default 0: no wait.
	WriteDelay time.Duration
	// KeepHeaders, when not nil, names the only request headers that a
	// connection keeps from its handshake request for its whole life
	// (EngineConn.Request and Handshake.Request, which middlewares read):
	// a browser's headers (cookies, user agent, accept lists) are often
	// 1–3 KB per connection. Nil keeps every header.
	KeepHeaders []string
	// BlockingReader, when true, gives every WebSocket a reader goroutine
	// of its own, blocked in Read while the client sends nothing (≈ 2.4 KB
	// of stack and goroutine per idle connection). When false (the
	// default), on Linux, a WebSocket idle between two messages has no
	// goroutine: the Engine's readiness poller (one epoll instance and one
	// goroutine) starts a reader when data arrives (see netpoll.go).
	// Elsewhere, and for a connection without a file descriptor (TLS
	// served by the process), reads block as with true.
	BlockingReader bool
	// UpgradeTimeout is how long a polling session may stay in the middle of
	// an upgrade (between the WebSocket probe and the "5" upgrade packet)
	// before the upgrade is abandoned. Default 10s.
	UpgradeTimeout time.Duration

	// AllowedOrigins lists the origins ("https://app.example.com") a browser
	// may connect from; "*" allows any. It drives both the Origin check (for
	// polling and WebSocket alike) and the CORS headers of polling responses.
	// When it is empty and CheckOrigin is nil, only requests without an Origin
	// header or from the same origin (Origin host equal to the Host header)
	// are accepted.
	AllowedOrigins []string
	// CheckOrigin, when set, decides instead of AllowedOrigins whether a
	// request with an Origin header is accepted. A refused request gets
	// 403 {"code":4,"message":"Forbidden"}, unless OriginRefusal is set.
	CheckOrigin func(r *http.Request) bool
	// OriginRefusal, when set, makes a Server answer a handshake from an
	// Origin it does not accept with the error it returns, the way
	// Server.Refuse does (a session that carries only a CONNECT_ERROR, which
	// socket.io-client shows as connect_error with err.data), instead of the
	// 403 that a client sees only as a transport error; the preflight of
	// such a handshake is answered too. Requests of an open session from an
	// Origin not accepted still get 403. Server only: an Engine alone
	// ignores it.
	OriginRefusal func(r *http.Request) error
	// AllowCredentials adds Access-Control-Allow-Credentials: true to the CORS
	// headers (cookies on cross-origin polling requests).
	AllowCredentials bool

	// Logger receives the connection-level log lines (slow consumers, protocol
	// errors at debug level). Default slog.Default().
	Logger *slog.Logger
	// SessionIDPrefix, when set, starts every Engine.IO session id
	// ("<prefix>.<random>"): a cluster node puts its tag there, so that any
	// node can tell which one holds a session (docs/cluster.md).
	SessionIDPrefix string

	// upgradeNoop bounds how long a GET that started during an upgrade waits
	// for the upgrade to finish before it gets a noop (see servePoll).
	// Default upgradeNoopDefault; tests set it.
	upgradeNoop time.Duration
}

// upgradeNoopDefault is the reference server's fast-upgrade cycle: during an
// upgrade it ends the pending poll with a noop every 100 ms.
const upgradeNoopDefault = 100 * time.Millisecond

// Defaults, as documented on Config.
const (
	DefaultPingInterval    = 25 * time.Second
	DefaultPingTimeout     = 20 * time.Second
	DefaultMaxPayload      = 1_000_000
	DefaultConnectTimeout  = 45 * time.Second
	DefaultWriteQueueBytes = 1 << 20
	DefaultWriteTimeout    = 10 * time.Second
	DefaultUpgradeTimeout  = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.WriteQueueBytes <= 0 {
		c.WriteQueueBytes = DefaultWriteQueueBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.upgradeNoop <= 0 {
		c.upgradeNoop = upgradeNoopDefault
	}
	return c
}
