package socketio

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/timerheap"
)

// EngineHandler receives the events of one Engine.IO connection. Its methods
// are called one at a time for a connection (never concurrently), in the
// order the client sent the messages; OnClose is called once, last.
type EngineHandler interface {
	// OnMessage is called for every message packet. data belongs to the
	// handler (it is not reused). It runs on the connection's reader and must
	// not block: a slow handler delays the next messages and the pongs.
	OnMessage(c *EngineConn, data []byte, binary bool)
	// OnClose is called once when the connection is closed, with one of the
	// Reason constants.
	OnClose(c *EngineConn, reason string)
}

// Engine is an Engine.IO protocol v4 server (WebSocket and HTTP long-polling
// with upgrade). It is an http.Handler for the path it is mounted at
// ("/engine.io/" by convention). The Socket.IO Server embeds one; an Engine
// can also be used on its own for raw Engine.IO messaging.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	accept func(c *EngineConn) EngineHandler

	openPolling []byte // the open packet JSON after the sid, per transport
	openWS      []byte

	mu     sync.RWMutex
	conns  map[string]*EngineConn
	closed bool

	count   atomic.Int64
	track   tracker
	writers writePool                    // the WebSocket writes (writer.go)
	timers  *timerheap.Heap[*EngineConn] // every connection's heartbeat or linger deadline
	epoch   time.Time                    // EngineConn.probedAt counts from it

	pollOnce sync.Once
	poll     *poller       // readiness reading (netpoll.go); under mu, nil until first used
	pollKeys atomic.Uint64 // the last EngineConn.pollKey given

	// refuseOrigin, when set (by a Server with Config.OriginRefusal),
	// answers a request from an Origin not accepted instead of the 403; it
	// reports false when it wrote nothing.
	refuseOrigin func(w http.ResponseWriter, r *http.Request) bool
}

// NewEngine returns an Engine. accept is called for every new Engine.IO
// connection, before the client can send anything; it returns the handler
// of the connection's events, or nil to refuse it (403 Forbidden).
func NewEngine(cfg Config, accept func(c *EngineConn) EngineHandler) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, log: cfg.Logger, accept: accept, conns: make(map[string]*EngineConn)}
	e.timers = timerheap.New((*EngineConn).onTimer)
	e.epoch = time.Now()
	tail := func(upgrades string) []byte {
		b := []byte(`","upgrades":` + upgrades + `,"pingInterval":`)
		b = strconv.AppendInt(b, cfg.PingInterval.Milliseconds(), 10)
		b = append(b, `,"pingTimeout":`...)
		b = strconv.AppendInt(b, cfg.PingTimeout.Milliseconds(), 10)
		b = append(b, `,"maxPayload":`...)
		b = strconv.AppendInt(b, int64(cfg.MaxPayload), 10)
		return append(b, '}')
	}
	e.openPolling = tail(`["websocket"]`)
	e.openWS = tail(`[]`)
	return e
}

// Len returns the number of open Engine.IO connections.
func (e *Engine) Len() int { return int(e.count.Load()) }

// Shutdown refuses new connections, closes every connection (reason
// "server shutting down") after what is queued for it (a polling connection
// waits for its next GET, at most min(pingInterval, 5s)), and waits until
// all of them have ended or ctx is done.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	conns := make([]*EngineConn, 0, len(e.conns))
	for _, c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, c := range conns {
		c.close(ReasonServerShutdown, closeGraceful)
	}
	e.mu.RLock()
	p := e.poll
	e.mu.RUnlock()
	if p != nil {
		p.stop() // every connection is closing: none needs its poller
	}
	if err := e.track.Wait(ctx); err != nil {
		return err // lingering connections still need their deadlines
	}
	e.timers.Close()
	return nil
}

func (e *Engine) lookup(sid string) *EngineConn {
	e.mu.RLock()
	c := e.conns[sid]
	e.mu.RUnlock()
	return c
}

func (e *Engine) register(c *EngineConn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.conns[c.id] = c
	e.count.Add(1)
	return true
}

func (e *Engine) unregister(c *EngineConn) {
	e.mu.Lock()
	if e.conns[c.id] == c {
		delete(e.conns, c.id)
		e.count.Add(-1)
	}
	e.mu.Unlock()
}

// ServeHTTP serves the Engine.IO handshake, polling requests and WebSocket
// connections.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !e.originAllowed(r, origin) {
			if e.refuseOrigin == nil || !e.refuseOrigin(w, r) {
				writeEIOError(w, eioErrForbidden)
			}
			return
		}
		e.setCORS(w.Header(), r, origin)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	q := r.URL.Query()
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeEIOError(w, eioErrUnknownTransport)
		return
	}
	if q.Get("EIO") != "4" {
		writeEIOError(w, eioErrUnsupportedProto)
		return
	}
	if sid := q.Get("sid"); sid != "" {
		c := e.lookup(sid)
		if c == nil {
			writeEIOError(w, eioErrUnknownSID)
			return
		}
		if transport == "websocket" {
			c.serveUpgrade(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet:
			c.servePoll(w, r)
		case http.MethodPost:
			c.servePost(w, r)
		default:
			writeEIOError(w, eioErrBadRequest)
		}
		return
	}
	if r.Method != http.MethodGet {
		writeEIOError(w, eioErrBadHandshake)
		return
	}
	e.mu.RLock()
	closed := e.closed
	e.mu.RUnlock()
	if closed {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	if transport == "websocket" {
		e.handshakeWebSocket(w, r)
		return
	}
	e.handshakePolling(w, r)
}

// newConn creates a connection for the handshake request r and asks accept
// for its handler.
func (e *Engine) newConn(r *http.Request, transport uint8) *EngineConn {
	id := newID()
	if e.cfg.SessionIDPrefix != "" {
		id = e.cfg.SessionIDPrefix + "." + id
	}
	c := &EngineConn{e: e, id: id, hreq: keepRequest(r, e.cfg.KeepHeaders), transport: transport, pollKey: e.pollKeys.Add(1)}
	if transport == transportPolling {
		c.poll = &pollState{}
	}
	c.handler = e.accept(c)
	if c.handler == nil {
		return nil
	}
	return c
}

func (e *Engine) handshakePolling(w http.ResponseWriter, r *http.Request) {
	c := e.newConn(r, transportPolling)
	if c == nil {
		writeEIOError(w, eioErrForbidden)
		return
	}
	if !e.register(c) {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	c.startHeartbeat()
	body := make([]byte, 0, 16+len(c.id)+len(e.openPolling))
	body = append(body, `0{"sid":"`...)
	body = append(body, c.id...)
	body = append(body, e.openPolling...)
	writePollingBody(w, body)
}

// openPacket is the open packet payload (after the "0") of c.
func (e *Engine) openPacket(c *EngineConn, tail []byte) []byte {
	b := make([]byte, 0, 9+len(c.id)+len(tail))
	b = append(b, `{"sid":"`...)
	b = append(b, c.id...)
	return append(b, tail...)
}

// idBytes is the random bytes of a session or socket id (20 characters).
const idBytes = 15

// newID returns a random 20-character URL-safe identifier.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// handshakeRequest is what a connection keeps of its handshake request for
// the handshake hooks of later namespaces and for Request: the request line,
// Host, RemoteAddr, TLS state and the headers (with Config.KeepHeaders, only
// those). The strings are those of the request as read; the *http.Request
// and its URL are built on demand, so that an idle connection keeps a few
// words instead of a request, a URL and their strings (issue 14).
type handshakeRequest struct {
	requestURI, host, remoteAddr string // no method: a handshake is a GET
	header                       http.Header
	tls                          *tls.ConnectionState
	protoMajor, protoMinor       uint8
}

// keepRequest takes from r what a handshake hook may read (method, URL,
// headers, remote address, TLS state), without its body or context; with
// keep not nil, only the headers it names (canonical or not).
func keepRequest(r *http.Request, keep []string) handshakeRequest {
	h := r.Header
	if keep != nil {
		h = nil
		for _, k := range keep {
			if v := r.Header.Values(k); len(v) > 0 {
				if h == nil {
					h = make(http.Header, len(keep))
				}
				h[http.CanonicalHeaderKey(k)] = slices.Clone(v) // not the array shared by every header of r
			}
		}
	}
	// A copy: r.RequestURI is a slice of the whole request line, which
	// would otherwise be kept for the connection's life with it.
	uri := strings.Clone(r.RequestURI)
	if uri == "" { // a request made in process (tests) rather than read
		uri = r.URL.RequestURI()
	}
	return handshakeRequest{requestURI: uri, host: r.Host, remoteAddr: r.RemoteAddr, header: h, tls: r.TLS,
		protoMajor: uint8(r.ProtoMajor), protoMinor: uint8(r.ProtoMinor)}
}

// request builds the *http.Request of the handshake: a new one per call.
func (k *handshakeRequest) request() *http.Request {
	u, err := url.ParseRequestURI(k.requestURI)
	if err != nil {
		u = &url.URL{} // it parsed once already, as the request was read
	}
	header := k.header
	if header == nil {
		header = http.Header{}
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/" + strconv.Itoa(int(k.protoMajor)) + "." + strconv.Itoa(int(k.protoMinor)),
		ProtoMajor: int(k.protoMajor),
		ProtoMinor: int(k.protoMinor),
		Header:     header,
		Body:       http.NoBody,
		Host:       k.host,
		RemoteAddr: k.remoteAddr,
		RequestURI: k.requestURI,
		TLS:        k.tls,
	}
}

// writeEIOError writes the reference server's JSON error body with 400, or
// 403 for Forbidden.
func writeEIOError(w http.ResponseWriter, code int) {
	status := http.StatusBadRequest
	if code == eioErrForbidden {
		status = http.StatusForbidden
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"code":` + strconv.Itoa(code) + `,"message":"` + eioErrMessages[code] + `"}`))
}

func writePollingBody(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
