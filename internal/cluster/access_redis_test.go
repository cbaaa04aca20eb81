package cluster_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
)

// member is a cluster node with its AccessStore, and a connection of the
// user "sync" on its hub, by which a test learns that the node has read the
// control channel up to a point.
type member struct {
	c     *cluster.Node
	hub   *hub.Hub
	store *cluster.AccessStore
	sync  *conn
}

func newMember(tb testing.TB, cfg cluster.Config, acfg access.Config) *member {
	tb.Helper()
	n, err := cluster.Open(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := cluster.NewAccessStore(context.Background(), n, acfg)
	if err != nil {
		n.Close()
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: n.Broker, Controller: n.Controller, NodeID: n.ID()})
	n.Start(context.Background())
	tb.Cleanup(n.Close)
	waitReady(tb, n)
	m := &member{c: n, hub: h, store: s, sync: newConn()}
	h.Register(m.sync, "sync")
	return m
}

// caughtUp returns once every other member has read the control channel
// past what from wrote so far: a push to "sync" sent now travels after it
// (from itself applies its push at once, so from is not among all).
func caughtUp(tb testing.TB, from *member, all ...*member) {
	tb.Helper()
	want := make([]int, len(all))
	for i, m := range all {
		want[i] = len(m.sync.offsets()) + 1
	}
	if _, err := from.hub.SendToUser("sync", &hub.Push{Event: "sync", Data: []byte(`{}`)}, nil); err != nil {
		tb.Fatal(err)
	}
	for i, m := range all {
		m.sync.waitCount(tb, want[i])
	}
}

// Two stores on one prefix see each other's writes, on the node that writes
// at once, on the other before any command sent after the write.
func TestAccessStoresOnOnePrefixSeeEachOthersWrites(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newMember(t, cfg, access.Config{}), newMember(t, cfg, access.Config{})
	ctx := context.Background()

	o, err := a.store.SetAccess(ctx, "t1", "bob", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if acc, ok := a.store.Lookup("t1", "bob"); !ok || acc != 0 {
		t.Fatalf("the writer's cache: %d %v", acc, ok)
	}
	if err := a.store.SetThreadStatus(ctx, "t2", access.StatusClosed); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute)
	if _, err := a.store.Revoke(ctx, "carol", t0); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, a, b)
	got, ok := b.store.Override("t1", "bob")
	if !ok || got.Access != 0 || !got.ExpiresAt.Equal(o.ExpiresAt) {
		t.Fatalf("B sees override %+v %v, want %+v", got, ok, o)
	}
	if st := b.store.ThreadStatus("t2"); st != access.StatusClosed {
		t.Fatalf("B sees thread status %q", st)
	}
	if before, ok := b.store.RevokedBefore("carol"); !ok || !before.Equal(time.UnixMicro(t0.UnixMicro())) {
		t.Fatalf("B sees revocation %v %v, want %v", before, ok, t0)
	}

	// B changes them back; A follows.
	if deleted, err := b.store.DeleteAccess(ctx, "t1", "bob"); err != nil || !deleted {
		t.Fatalf("delete on B: %v %v", deleted, err)
	}
	if deleted, err := b.store.DeleteAccess(ctx, "t1", "bob"); err != nil || deleted {
		t.Fatalf("second delete: %v %v", deleted, err)
	}
	if err := b.store.SetThreadStatus(ctx, "t2", access.StatusOpen); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, b, a)
	if _, ok := a.store.Lookup("t1", "bob"); ok {
		t.Fatal("A still has the override B deleted")
	}
	if st := a.store.ThreadStatus("t2"); st != access.StatusOpen {
		t.Fatalf("A sees thread status %q after B reopened it", st)
	}
}

// The rules of access.Store hold across nodes: a revocation is never
// weakened, a deleted thread stays deleted, whichever node writes.
func TestAccessRulesHoldAcrossNodes(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newMember(t, cfg, access.Config{}), newMember(t, cfg, access.Config{})
	ctx := context.Background()
	t0 := time.Now().Add(-time.Second)
	if got, err := a.store.Revoke(ctx, "alice", t0); err != nil || !got.Equal(time.UnixMicro(t0.UnixMicro())) {
		t.Fatalf("revoke: %v %v", got, err)
	}
	if got, err := b.store.Revoke(ctx, "alice", t0.Add(-time.Hour)); err != nil || !got.Equal(time.UnixMicro(t0.UnixMicro())) {
		t.Fatalf("an earlier time on B answered %v %v, want the current %v", got, err, t0)
	}
	caughtUp(t, a, b) // B has read A's revocation (and wrote none)
	for _, m := range []*member{a, b} {
		if before, _ := m.store.RevokedBefore("alice"); !before.Equal(time.UnixMicro(t0.UnixMicro())) {
			t.Fatalf("the revocation was weakened to %v", before)
		}
	}
	later := t0.Add(500 * time.Millisecond)
	if got, err := b.store.Revoke(ctx, "alice", later); err != nil || !got.Equal(time.UnixMicro(later.UnixMicro())) {
		t.Fatalf("a later time: %v %v", got, err)
	}
	caughtUp(t, b, a)
	if before, _ := a.store.RevokedBefore("alice"); !before.Equal(time.UnixMicro(later.UnixMicro())) {
		t.Fatalf("A has %v, want the later %v", before, later)
	}

	if err := a.store.SetThreadStatus(ctx, "t", access.StatusDeleted); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{access.StatusClosed, access.StatusOpen} {
		if err := b.store.SetThreadStatus(ctx, "t", st); !errors.Is(err, access.ErrDeleted) {
			t.Fatalf("%q on a deleted thread from B: %v", st, err)
		}
	}
	caughtUp(t, a, b)
	if a.store.ThreadStatus("t") != access.StatusDeleted || b.store.ThreadStatus("t") != access.StatusDeleted {
		t.Fatal("the deleted thread came back")
	}
}

// An override's TTL is Redis's: the key expires at the override's deadline,
// and so does every node's cache.
func TestAccessOverrideExpiresInRedis(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newMember(t, cfg, access.Config{}), newMember(t, cfg, access.Config{})
	ctx := context.Background()
	o, err := a.store.SetAccess(ctx, "t", "bob", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rdb := a.c.Redis()
	key := cfg.Prefix + ":{acc}:o:1:t:bob"
	if at, err := rdb.PExpireTime(ctx, key).Result(); err != nil || at != time.Duration(o.ExpiresAt.UnixMilli())*time.Millisecond {
		t.Fatalf("PEXPIRETIME %v %v, want %d ms", at, err, o.ExpiresAt.UnixMilli())
	}
	// Without a TTL, no expiry; then a short one that runs out.
	if _, err := a.store.SetAccess(ctx, "t", "bob", auth.AccessRead, 0); err != nil {
		t.Fatal(err)
	}
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl != -1 {
		t.Fatalf("PTTL of an override without ttl: %v %v", ttl, err)
	}
	short, err := a.store.SetAccess(ctx, "t", "bob", 0, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, a, b)
	if _, ok := b.store.Lookup("t", "bob"); !ok {
		t.Fatal("B does not have the short override")
	}
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(ctx, key).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("Redis kept the override past its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if time.Now().Before(short.ExpiresAt) {
		t.Fatalf("Redis dropped the override before its deadline %v", short.ExpiresAt)
	}
	for _, m := range []*member{a, b} {
		if _, ok := m.store.Lookup("t", "bob"); ok {
			t.Fatal("a cache kept the override past its deadline")
		}
	}
	fresh := newMember(t, cfg, access.Config{})
	if _, ok := fresh.store.Lookup("t", "bob"); ok {
		t.Fatal("a node started later loaded an expired override")
	}
}

// What a node wrote survives it: a node started later (a restart) loads
// every override, thread state and revocation from Redis.
func TestAccessStoreSurvivesARestart(t *testing.T) {
	cfg := clusterConfig(t)
	a := newMember(t, cfg, access.Config{})
	ctx := context.Background()
	o, err := a.store.SetAccess(ctx, "t1", "bob", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.SetAccess(ctx, "t:with:colons", "u:x", auth.AccessRead|auth.AccessWrite, 0); err != nil {
		t.Fatal(err)
	}
	if err := a.store.SetThreadStatus(ctx, "t2", access.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if err := a.store.SetThreadStatus(ctx, "t3", access.StatusDeleted); err != nil {
		t.Fatal(err)
	}
	before, err := a.store.Revoke(ctx, "carol", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a.c.Close()

	restarted := newMember(t, cfg, access.Config{})
	s := restarted.store
	if got, ok := s.Override("t1", "bob"); !ok || got.Access != 0 || !got.ExpiresAt.Equal(o.ExpiresAt) {
		t.Fatalf("override after the restart: %+v %v, want %+v", got, ok, o)
	}
	if got, ok := s.Override("t:with:colons", "u:x"); !ok || got.Access != auth.AccessRead|auth.AccessWrite || !got.ExpiresAt.IsZero() {
		t.Fatalf("override without ttl after the restart: %+v %v", got, ok)
	}
	if _, ok := s.Override("t:with", "colons:u:x"); ok {
		t.Fatal("ids that run together name another override")
	}
	if s.ThreadStatus("t2") != access.StatusClosed || s.ThreadStatus("t3") != access.StatusDeleted {
		t.Fatalf("thread states after the restart: %q %q", s.ThreadStatus("t2"), s.ThreadStatus("t3"))
	}
	if got, ok := s.RevokedBefore("carol"); !ok || !got.Equal(before) {
		t.Fatalf("revocation after the restart: %v %v, want %v", got, ok, before)
	}
	if err := s.SetThreadStatus(ctx, "t3", access.StatusOpen); !errors.Is(err, access.ErrDeleted) {
		t.Fatalf("reopening a thread deleted before the restart: %v", err)
	}
}

// MaxEntries bounds the entries in Redis, for the whole cluster; expired
// ones do not count.
func TestAccessLimitIsTheClusters(t *testing.T) {
	cfg := clusterConfig(t)
	acfg := access.Config{MaxEntries: 3}
	a, b := newMember(t, cfg, acfg), newMember(t, cfg, acfg)
	ctx := context.Background()
	if _, err := a.store.SetAccess(ctx, "t", "u1", 0, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := a.store.SetThreadStatus(ctx, "t", access.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Revoke(ctx, "u2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.SetAccess(ctx, "t", "u3", 0, 0); !errors.Is(err, access.ErrFull) {
		t.Fatalf("a fourth entry on another node: %v", err)
	}
	if err := b.store.SetThreadStatus(ctx, "t9", access.StatusClosed); !errors.Is(err, access.ErrFull) {
		t.Fatalf("a fourth entry (thread state): %v", err)
	}
	if _, err := b.store.SetAccess(ctx, "t", "u1", auth.AccessRead, 300*time.Millisecond); err != nil {
		t.Fatalf("replacing an entry at the limit: %v", err)
	}
	if _, ok := b.store.Lookup("t", "u3"); ok {
		t.Fatal("a refused override reached the cache")
	}
	// Once the short override has expired, there is room again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.store.SetAccess(ctx, "t", "u3", 0, 0)
		if err == nil {
			break
		}
		if !errors.Is(err, access.ErrFull) || time.Now().After(deadline) {
			t.Fatalf("after the expiry: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxy forwards TCP to Redis until cut: then it closes every connection
// and refuses new ones, as a network partition between a node and Redis
// would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	tb.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		if !cut {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.pipe(c) })
	}
}

func (p *proxy) pipe(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// A node that loses Redis refuses writes with unavailable and keeps reading
// its cache; once Redis is back, it reloads what it missed before it is
// ready again.
func TestAccessStoreWithoutRedisAndAfterItsReturn(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.Timeout = 300 * time.Millisecond
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, opt.Addr)
	viaProxy := cfg
	viaProxy.RedisURL = "redis://" + p.ln.Addr().String() + "/" + strconv.Itoa(opt.DB)
	a, b := newMember(t, cfg, access.Config{}), newMember(t, viaProxy, access.Config{})
	ctx := context.Background()
	if _, err := a.store.SetAccess(ctx, "t0", "carol", auth.AccessRead, 0); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, a, b)

	p.setCut(true)
	if _, err := b.store.SetAccess(ctx, "t", "bob", 0, time.Hour); !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("a write without Redis: %v, want hub.ErrUnavailable", err)
	}
	if err := b.store.SetThreadStatus(ctx, "t", access.StatusClosed); !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("a thread state without Redis: %v", err)
	}
	if _, err := b.store.Revoke(ctx, "bob", time.Now()); !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("a revocation without Redis: %v", err)
	}
	if _, ok := b.store.Lookup("t", "bob"); ok {
		t.Fatal("a write that failed in Redis reached the cache")
	}
	if acc, ok := b.store.Lookup("t0", "carol"); !ok || acc != auth.AccessRead {
		t.Fatalf("the cache stopped answering without Redis: %d %v", acc, ok)
	}
	// Meanwhile A writes what B cannot hear of.
	if _, err := a.store.SetAccess(ctx, "t", "bob", 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.DeleteAccess(ctx, "t0", "carol"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.c.Ready(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("B stayed ready without Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := b.store.Lookup("t", "bob"); ok {
		t.Fatal("B heard of a change while cut off") // the test would prove nothing
	}

	p.setCut(false)
	waitReady(t, b.c)
	if _, ok := b.store.Lookup("t", "bob"); !ok {
		t.Fatal("B ready again without the override written while it was cut off")
	}
	if _, ok := b.store.Lookup("t0", "carol"); ok {
		t.Fatal("B ready again with an override deleted while it was cut off")
	}
}

// FuzzDecodeAccessEntry: a value read from Redis never panics the decoder,
// and what it accepts is an entry of a known kind.
func FuzzDecodeAccessEntry(f *testing.F) {
	for _, s := range []string{
		`{"k":"o","t":"t1","u":"bob","x":1767225600000}`,
		`{"k":"o","t":"t1","u":"bob","a":3}`,
		`{"k":"t","t":"t1","s":"closed","x":1767225600000}`,
		`{"k":"t","t":"t1","s":"open"}`,
		`{"k":"r","u":"bob","b":1767225600123456,"x":1767225600000}`,
		`{"k":"x"}`, `{"k":"oo"}`, `[]`, `{"k":1}`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e, err := cluster.DecodeAccessEntry(raw)
		if err != nil {
			return
		}
		switch e.Kind {
		case access.KindOverride, access.KindRevocation:
		case access.KindThread:
			if e.Status != access.StatusClosed && e.Status != access.StatusDeleted {
				t.Fatalf("accepted thread mark %q", e.Status)
			}
		default:
			t.Fatalf("accepted kind %q", e.Kind)
		}
	})
}
