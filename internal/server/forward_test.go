package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/cluster"
)

type fakePeers struct{ tag string }

func (p fakePeers) Tag() string { return p.tag }
func (fakePeers) PeerURL(context.Context, string) (string, error) {
	return "", cluster.ErrPeerGone
}
func (fakePeers) PeerGone(string) {}

// The forwarding mark: a node's own mark is accepted, a mark made with
// another secret, a stale one, and anything malformed are not.
func TestForwardingMark(t *testing.T) {
	f := newForwarder(fakePeers{tag: cluster.NodeTag("node1")}, []byte("the shared backend secret"), nil)
	other := newForwarder(fakePeers{tag: cluster.NodeTag("node1")}, []byte("another secret"), nil)
	req := func(mark string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling&sid=x", nil)
		if mark != "" {
			r.Header.Set(HeaderForwardedBy, mark)
		}
		return r
	}
	now := time.Now()
	if !f.fromPeer(req(f.mark(now))) {
		t.Fatal("a fresh mark of this deployment was refused")
	}
	for name, mark := range map[string]string{
		"none":          "",
		"other secret":  other.mark(now),
		"stale":         f.mark(now.Add(-2 * forwardSkew)),
		"future":        f.mark(now.Add(2 * forwardSkew)),
		"garbage":       "x y z",
		"two fields":    "a 1",
		"bad timestamp": strings.Replace(f.mark(now), " ", " x", 1),
	} {
		if f.fromPeer(req(mark)) {
			t.Errorf("%s: mark %q accepted", name, mark)
		}
	}
	var nilForwarder *forwarder
	if nilForwarder.fromPeer(req(f.mark(now))) {
		t.Error("a node alone (no forwarder) took a request for a peer's")
	}
}

// ownerTag finds the holding node's tag wherever a request names a session
// or stream, and none elsewhere.
func TestOwnerTag(t *testing.T) {
	tag := cluster.NodeTag("node2")
	id := tag + ".AbCdEf0123456789abcd"
	for _, c := range []struct {
		method, target string
		header         [2]string
		want           string
	}{
		{"GET", "/socket.io/?EIO=4&transport=polling&sid=" + id, [2]string{}, tag},
		{"POST", "/socket.io/?EIO=4&transport=polling&sid=" + id, [2]string{}, tag},
		{"GET", "/socket.io/?EIO=4&transport=websocket&sid=" + id, [2]string{}, tag},
		{"GET", "/socket.io/?EIO=4&transport=polling", [2]string{}, ""},
		{"GET", "/socket.io/?EIO=4&transport=polling&sid=nodotinit", [2]string{}, ""},
		{"GET", "/v1/events", [2]string{"Last-Event-ID", id + ":7"}, tag},
		{"GET", "/v1/events?lastEventId=" + id + ":7", [2]string{}, tag},
		{"GET", "/v1/events", [2]string{}, ""},
		{"GET", "/v1/threads/t1", [2]string{"ECB-Stream", id}, tag},
		{"DELETE", "/v1/streams/" + id + "/threads/t1", [2]string{}, tag},
		{"DELETE", "/v1/events/" + id, [2]string{}, tag},
		{"GET", "/v1/contacts", [2]string{}, ""},
		{"GET", "/v1/events", [2]string{"Last-Event-ID", "short.x:1"}, ""},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.header[0] != "" {
			r.Header.Set(c.header[0], c.header[1])
		}
		if got := ownerTag(r); got != c.want {
			t.Errorf("%s %s %v: tag %q, want %q", c.method, c.target, c.header, got, c.want)
		}
	}
}

// FuzzForwardingMark: whatever a client puts in ECB-Forwarded-By, it is
// never taken for a peer's without the secret, and nothing panics.
func FuzzForwardingMark(f *testing.F) {
	fw := newForwarder(fakePeers{tag: cluster.NodeTag("node1")}, []byte("the shared backend secret"), nil)
	f.Add("")
	f.Add("abcdefgh 1700000000 x")
	f.Add(fw.mark(time.Unix(1700000000, 0)))
	f.Add("  ")
	f.Fuzz(func(t *testing.T, mark string) {
		r := httptest.NewRequest(http.MethodGet, "/socket.io/?sid=x", nil)
		r.Header.Set(HeaderForwardedBy, mark)
		if fw.fromPeer(r) && mark != fw.mark(time.Now()) {
			// Only a mark this deployment made (now, or within the skew) passes.
			parts := strings.Split(mark, " ")
			if len(parts) != 3 || parts[2] != fw.mac(parts[0]+" "+parts[1]) {
				t.Fatalf("mark %q accepted without the secret", mark)
			}
		}
	})
}

type deadPeer struct {
	fakePeers
	gone []string
}

func (p *deadPeer) PeerURL(context.Context, string) (string, error) { return "http://127.0.0.1:1", nil }
func (p *deadPeer) PeerGone(tag string)                             { p.gone = append(p.gone, tag) }

// An owner that does not answer: the request is served here, with the
// headers this node set before it tried (security headers, request id), and
// the owner is taken for gone.
func TestForwardToADeadOwnerIsServedHere(t *testing.T) {
	peers := &deadPeer{fakePeers: fakePeers{tag: cluster.NodeTag("node1")}}
	f := newForwarder(peers, []byte("secret"), nil)
	local := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":1,"message":"Session ID unknown"}`))
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		f.wrap(local).ServeHTTP(w, r)
	})
	other := cluster.NodeTag("node2")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling&sid="+other+".x", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Session ID unknown") {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("the node's own headers were lost: %v", rec.Header())
	}
	if len(peers.gone) != 1 || peers.gone[0] != other {
		t.Fatalf("owner not taken for gone: %v", peers.gone)
	}
}
