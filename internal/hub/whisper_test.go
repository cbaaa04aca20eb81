package hub_test

import (
	"slices"
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
)

// agentConn is a testConn whose user may see whispers (hub.AgentsAudience).
type agentConn struct{ *testConn }

func (agentConn) SeesAgentsOnly() bool { return true }

// deniedConn implements AgentsAudience but says no.
type deniedConn struct{ *testConn }

func (deniedConn) SeesAgentsOnly() bool { return false }

// A whisper reaches the agents' connections only, live, through Resume,
// Broadcast and SendToUser, and Since never returns it.
func TestAgentsOnlyPushesNeverReachOthers(t *testing.T) {
	h := hub.New(hub.Config{})
	visitor, denied := newConn(100), deniedConn{newConn(100)}
	agent := agentConn{newConn(100)}
	h.Register(visitor, "visitor")
	h.Register(denied, "visitor")
	h.Register(agent, "agent")
	for _, c := range []hub.Conn{visitor, denied, agent} {
		attach(t, h, "t", c)
	}
	publishAudience(t, h, "t", nil, false) // 1
	publishAudience(t, h, "t", nil, true)  // 2: a whisper
	publishAudience(t, h, "t", nil, false) // 3
	if got := visitor.offsets(); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("visitor got %v", got)
	}
	if got := denied.offsets(); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("denied got %v", got)
	}
	if got := agent.offsets(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("agent got %v", got)
	}

	// Recovery: a reconnected visitor resumes from offset 1 and gets 3 only;
	// an agent gets 2 and 3.
	v2, a2 := newConn(100), agentConn{newConn(100)}
	h.Register(v2, "visitor")
	h.Register(a2, "agent")
	from := hub.Position{Epoch: position(t, h, "t").Epoch, Offset: 1}
	missed, ok, _ := resume(t, h, "t", v2, from)
	if !ok || missed != 1 || !slices.Equal(v2.offsets(), []uint64{3}) {
		t.Fatalf("visitor resume: missed %d ok %v got %v", missed, ok, v2.offsets())
	}
	missed, ok, _ = resume(t, h, "t", a2, from)
	if !ok || missed != 2 || !slices.Equal(a2.offsets(), []uint64{2, 3}) {
		t.Fatalf("agent resume: missed %d ok %v got %v", missed, ok, a2.offsets())
	}
	pushes, ok := since(t, h, "t", from)
	if !ok || len(pushes) != 1 || pushes[0].Offset != 3 {
		t.Fatalf("Since gave %d pushes", len(pushes))
	}

	// Pushes outside the history obey the marker too.
	if err := h.Broadcast("t", &hub.Push{Event: "typing", ThreadID: "t", AgentsOnly: true}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.SendToUser("visitor", &hub.Push{Event: "x", AgentsOnly: true}, nil); n != 0 {
		t.Fatalf("SendToUser delivered a whisper to %d visitor connections", n)
	}
	for _, c := range []*testConn{visitor, denied.testConn, v2} {
		c.mu.Lock()
		for _, p := range c.got {
			if p.AgentsOnly {
				t.Fatalf("a non-agent connection got an AgentsOnly push %+v", p)
			}
		}
		c.mu.Unlock()
	}
	if got := len(agent.got); got != 4 {
		t.Fatalf("agent got %d pushes, want 4 (3 + the broadcast)", got)
	}
}
