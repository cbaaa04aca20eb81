package limits_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/limits"
	"github.com/ecbridge/ecb/internal/ops"
)

var _ ops.Limiter = (*limits.Limiter)(nil)

func TestKeyedBucketRefillsAndSaysWhen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := limits.NewKeyed[string](2, 4, 0) // 2/s, burst 4
		now := time.Now()
		for i := range 4 {
			if ok, _ := k.Allow("a", now); !ok {
				t.Fatalf("burst token %d refused", i)
			}
		}
		ok, retry := k.Allow("a", now)
		if ok || retry != 500*time.Millisecond {
			t.Fatalf("5th: ok %v retry %v, want false 500ms", ok, retry)
		}
		if ok, _ := k.Allow("b", now); !ok {
			t.Fatal("another key shares the bucket")
		}
		// A refused call takes nothing: after the retry-after, one passes.
		if ok, _ := k.Allow("a", now.Add(retry)); !ok {
			t.Fatal("refused after its retry-after")
		}
		// Idle buckets are dropped once full again.
		k.Sweep(now.Add(time.Second))
		if k.Len() != 2 {
			t.Fatalf("swept too early: %d", k.Len())
		}
		k.Sweep(now.Add(3 * time.Second))
		if k.Len() != 0 {
			t.Fatalf("idle buckets kept: %d", k.Len())
		}
	})
}

func TestKeyedOffAndBounded(t *testing.T) {
	off := limits.NewKeyed[string](-1, -1, 0)
	for range 1000 {
		if ok, _ := off.Allow("a", time.Now()); !ok {
			t.Fatal("a limit turned off refused")
		}
	}
	now := time.Now()
	b := limits.NewKeyed[string](1, 1, 2)
	b.Allow("a", now)
	b.Allow("b", now)
	if ok, _ := b.Allow("c", now); ok {
		t.Fatal("a third key beyond maxKeys was admitted")
	}
	if ok, _ := b.Allow("c", now.Add(time.Second)); !ok {
		t.Fatal("after the others went idle, a new key was refused")
	}
}

type counts struct {
	total int
	user  map[string]int
}

func (c counts) Connections() int             { return c.total }
func (c counts) UserConnections(u string) int { return c.user[u] }

func TestLimiter(t *testing.T) {
	cfg := limits.Config{OpsPerSecondPerUser: 1, OpsBurstPerUser: 3, OpsPerSecondPerConnection: 1, OpsBurstPerConnection: 2, ConnectionsPerUser: 2, MaxConnections: 10}
	cfg.SetDefaults()
	l := limits.New(cfg, counts{total: 9, user: map[string]int{"full": 2}})
	c1, c2 := &struct{ hub.Conn }{}, &struct{ hub.Conn }{}
	var codes []apierr.Code
	for _, c := range []hub.Conn{c1, c1, c1, c2, c2, nil} {
		codes = append(codes, code(l.AllowOp("alice", c)))
	}
	// c1: 2 then its own limit; c2: 1 more of alice's 3, then alice's limit.
	want := []apierr.Code{"", "", apierr.RateLimited, "", apierr.RateLimited, apierr.RateLimited}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	if err := l.AllowOp("bob", nil); err != nil {
		t.Fatalf("bob limited by alice: %v", err)
	}
	e := apierr.From(l.AllowOp("alice", nil))
	if e.RetryAfter < time.Second || e.Body().RetryAfter < 1 {
		t.Fatalf("retryAfter %v", e.RetryAfter)
	}
	if err := l.AdmitConnection("alice"); err != nil {
		t.Fatal(err)
	}
	if code(l.AdmitConnection("full")) != apierr.RateLimited {
		t.Fatal("a user at the connection cap was admitted")
	}
	nodeFull := limits.New(cfg, counts{total: 10})
	if code(nodeFull.AdmitConnection("alice")) != apierr.Unavailable || !nodeFull.Full() {
		t.Fatal("a full node admitted a connection")
	}
}

func code(err error) apierr.Code {
	if err == nil {
		return ""
	}
	return apierr.From(err).Code
}

func TestDefaultsAndValidate(t *testing.T) {
	var c limits.Config
	c.SetDefaults()
	if c.OpsPerSecondPerUser != 20 || c.MaxConnections != 50000 || c.HandshakeBurstPerIP != 40 {
		t.Fatalf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.OpsPerSecondPerUser = -1
	if err := c.Validate(); err == nil {
		t.Fatal("rate off with burst on accepted")
	}
	c.OpsBurstPerUser = -1
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClientIP(t *testing.T) {
	proxies, err := limits.ParseProxies([]string{"10.0.0.0/8", "::1", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		remote, xff string
		proxies     []netip.Prefix
		want        string
	}{
		{"1.2.3.4:5", "9.9.9.9", nil, "1.2.3.4"},
		{"1.2.3.4:5", "9.9.9.9", proxies, "1.2.3.4"},                     // not a trusted peer: XFF ignored
		{"10.1.1.1:5", "6.6.6.6, 9.9.9.9", proxies, "9.9.9.9"},           // rightmost untrusted
		{"10.1.1.1:5", "6.6.6.6, 9.9.9.9, 10.2.2.2", proxies, "9.9.9.9"}, // skip trusted hops
		{"10.1.1.1:5", "", proxies, "10.1.1.1"},
		{"10.1.1.1:5", "garbage, 10.3.3.3", proxies, "10.3.3.3"},
		{"[::1]:5", "2001:db8::1", proxies, "2001:db8::1"},
		{"[::ffff:1.2.3.4]:5", "", nil, "1.2.3.4"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := limits.ClientIP(r, tc.proxies).String(); got != tc.want {
			t.Errorf("%s XFF %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if _, err := limits.ParseProxies([]string{"example.com"}); err == nil {
		t.Error("a host name accepted as a proxy")
	}
	a := netip.MustParseAddr("2001:db8:1:2:3:4:5:6")
	b := netip.MustParseAddr("2001:db8:1:2:ffff::1")
	if limits.IPKey(a) != limits.IPKey(b) || limits.IPKey(a) != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 keys %s %s", limits.IPKey(a), limits.IPKey(b))
	}
}

func TestHandshakesPerIP(t *testing.T) {
	cfg := limits.Config{HandshakesPerSecondPerIP: 1, HandshakeBurstPerIP: 2}
	cfg.SetDefaults()
	h := limits.NewHandshakes(cfg, nil)
	req := func(ip string) *http.Request {
		r := httptest.NewRequest("GET", "/socket.io/?EIO=4", nil)
		r.RemoteAddr = ip + ":1234"
		return r
	}
	for range 2 {
		if h.Allow(req("1.1.1.1")) != nil {
			t.Fatal("burst refused")
		}
	}
	if code(h.Allow(req("1.1.1.1"))) != apierr.RateLimited {
		t.Fatal("third handshake allowed")
	}
	if h.Allow(req("2.2.2.2")) != nil {
		t.Fatal("another IP refused")
	}
}

// Tokens are conserved under concurrency: at one instant (no refill) a
// bucket of burst 10 grants exactly min(asks, 10) however many goroutines
// ask at once, and the bound of 50 keys holds exactly: a key refused while
// the buckets are full stays refused (nothing is idle long enough to sweep).
func TestConcurrentAllow(t *testing.T) {
	const keys, burst, maxKeys = 80, 10, 50
	now := time.Now()
	k := limits.NewKeyed[int](1, burst, maxKeys)
	key := func(i, j int) int { return j * (i + 1) % keys }
	var asks [keys]int
	for i := range 8 {
		for j := range 500 {
			asks[key(i, j)]++
		}
	}
	var mu sync.Mutex
	granted := map[int]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 500 {
				if ok, _ := k.Allow(key(i, j), now); ok {
					mu.Lock()
					granted[key(i, j)]++
					mu.Unlock()
				}
				if j%100 == 0 {
					k.Sweep(now)
				}
			}
		})
	}
	wg.Wait()
	if k.Len() != maxKeys || len(granted) != maxKeys {
		t.Fatalf("%d buckets, %d keys granted anything; want exactly %d", k.Len(), len(granted), maxKeys)
	}
	for kk, n := range granted {
		if want := min(asks[kk], burst); n != want {
			t.Errorf("key %d: %d of %d asks granted, want %d", kk, n, asks[kk], want)
		}
	}
}
