package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/sse"
)

// This file lets any node serve any client without sticky sessions
// (docs/cluster.md, "No sticky sessions"): an Engine.IO session and an SSE
// stream live on the node that opened them, their ids start with that
// node's tag, and a node that gets a request for one it does not hold
// forwards the request unchanged to its owner (httputil.ReverseProxy, which
// also carries a WebSocket upgrade and streams SSE). When the owner is gone
// the request is served here, where the id is unknown: Engine.IO answers
// "Session ID unknown" (the client opens a new session and resumes), an SSE
// resume picks the stream up from its handoff or opens a new one.

// HeaderForwardedBy marks a request forwarded by another node:
// "<tag> <unix seconds> <mac>", the mac an HMAC-SHA256 of "<tag> <unix>"
// with backend.secret, which every node of a deployment shares. A request
// with a valid one is never forwarded again, and its handshake limit was
// applied by the node that forwarded it.
const HeaderForwardedBy = "ECB-Forwarded-By"

// HeaderHandedOver marks the 421 answer of a node that shuts down to a
// forwarded SSE resume: it has handed its streams over, and the node that
// forwarded the resume serves it itself (picking the stream up).
const HeaderHandedOver = "ECB-Handed-Over"

// errHandedOver is the proxy's error for such an answer.
var errHandedOver = errors.New("the owner handed its streams over")

// forwardSkew bounds the age of a forwarding mark.
const forwardSkew = time.Minute

// peerLocator finds the node that holds an id's tag (cluster.Node).
type peerLocator interface {
	Tag() string
	PeerURL(ctx context.Context, tag string) (string, error)
	PeerGone(tag string)
}

type forwarder struct {
	peers  peerLocator
	secret []byte
	proxy  *httputil.ReverseProxy
	// observe counts each forwarded request by result (forwarded, gone,
	// failed); nil: not counted.
	observe func(result string)
}

type forwardTarget struct {
	tag string
	url *url.URL
	// own is what this node had set on the answer before it gave way to
	// the owner's headers; a request served here after all gets it back.
	own http.Header
}

type forwardKey struct{}

func newForwarder(peers peerLocator, secret []byte, observe func(string)) *forwarder {
	f := &forwarder{peers: peers, secret: secret, observe: observe}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// No ResponseHeaderTimeout: a long-polling GET is held by its owner
		// for up to pingInterval.
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(forwardKey{}).(forwardTarget)
			pr.SetURL(t.url)
			pr.Out.Host = pr.In.Host // the owner checks Origin against the client's Host
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderForwardedBy, f.mark(time.Now()))
		},
		Transport:     transport,
		FlushInterval: -1, // polling answers and SSE events leave at once
		ErrorHandler:  f.failed,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusMisdirectedRequest && resp.Header.Get(HeaderHandedOver) != "" {
				return errHandedOver
			}
			return nil
		},
	}
	return f
}

// mark is this node's forwarding mark at now.
func (f *forwarder) mark(now time.Time) string {
	msg := f.peers.Tag() + " " + strconv.FormatInt(now.Unix(), 10)
	return msg + " " + f.mac(msg)
}

func (f *forwarder) mac(msg string) string {
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte("ecb-forward " + msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// fromPeer reports whether r was forwarded by another node of this
// deployment.
func (f *forwarder) fromPeer(r *http.Request) bool {
	if f == nil {
		return false
	}
	v := r.Header.Get(HeaderForwardedBy)
	if v == "" {
		return false
	}
	parts := strings.Split(v, " ")
	if len(parts) != 3 {
		return false
	}
	ts, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return false
	}
	if age := time.Since(time.Unix(ts, 0)); age > forwardSkew || age < -forwardSkew {
		return false
	}
	return hmac.Equal([]byte(parts[2]), []byte(f.mac(parts[0]+" "+parts[1])))
}

// ownerTag returns the node tag of the session or stream r names, "" when
// it names none (a handshake, a request of no stream).
func ownerTag(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/socket.io/") {
		return cluster.TagOf(r.URL.Query().Get("sid"))
	}
	if id := r.Header.Get(sse.HeaderStream); id != "" {
		return cluster.TagOf(id)
	}
	if p == "/v1/events" {
		last := r.Header.Get("Last-Event-ID")
		if last == "" {
			last = r.URL.Query().Get("lastEventId")
		}
		return cluster.TagOf(last)
	}
	for _, prefix := range []string{"/v1/events/", "/v1/streams/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			id, _, _ := strings.Cut(rest, "/")
			return cluster.TagOf(id)
		}
	}
	return ""
}

// wrap forwards the requests of sessions and streams held by another live
// node to it; next serves the others (ours, the owner gone, a handshake).
func (f *forwarder) wrap(next http.Handler) http.Handler {
	if f == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tag := ownerTag(r)
		if tag == "" || tag == f.peers.Tag() || f.fromPeer(r) {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := f.peers.PeerURL(r.Context(), tag)
		if err != nil {
			// Gone (or Redis cannot tell): here the id is unknown, and the
			// client is told so the protocol's way.
			if f.observe != nil {
				f.observe(forwardGone)
			}
			next.ServeHTTP(w, r)
			return
		}
		target, err := url.Parse(raw)
		if err != nil {
			f.peers.PeerGone(tag)
			next.ServeHTTP(w, r)
			return
		}
		// The owner's answer carries its own headers (security headers,
		// CORS, request id, ECB-Node): drop what this node set already.
		own := w.Header().Clone()
		clear(w.Header())
		if f.observe != nil {
			f.observe(forwardForwarded)
		}
		ctx := context.WithValue(r.Context(), forwardKey{}, forwardTarget{tag: tag, url: target, own: own})
		ctx = context.WithValue(ctx, fallbackKey{}, next)
		f.proxy.ServeHTTP(w, r.WithContext(ctx))
	})
}

type fallbackKey struct{}

const (
	forwardForwarded = "forwarded"
	forwardGone      = "owner_gone"
	forwardFailed    = "owner_failed"
)

// failed answers a request whose owner did not answer: the owner is taken
// for gone and the request is served here, where its id is unknown (no
// answer had been written yet).
func (f *forwarder) failed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	next := r.Context().Value(fallbackKey{}).(http.Handler)
	t := r.Context().Value(forwardKey{}).(forwardTarget)
	clear(w.Header())
	for k, v := range t.own {
		w.Header()[k] = v
	}
	if errors.Is(err, errHandedOver) {
		next.ServeHTTP(w, r)
		return
	}
	f.peers.PeerGone(t.tag)
	if f.observe != nil {
		f.observe(forwardFailed)
	}
	next.ServeHTTP(w, r)
}

// handedOver answers a forwarded SSE resume once this shutting-down node
// has handed its streams over (at most a few seconds): 421 with
// HeaderHandedOver, which the forwarding node takes as "serve it yourself".
func (s *Server) handedOver(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.sse.HandedOver():
	case <-r.Context().Done():
		return
	case <-time.After(5 * time.Second):
	}
	w.Header().Set(HeaderHandedOver, "1")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMisdirectedRequest)
	_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"this node is shutting down and handed its streams over"}}`))
}
