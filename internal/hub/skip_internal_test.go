package hub

import "testing"

type nopConn struct{}

func (nopConn) Deliver(*Push) bool { return true }
func (nopConn) Close(Reason)       {}

// A push's Skip names a connection by its cluster-wide id; the hub keeps
// only the number and reads the id back to it, for this node's ids only.
func TestLocalSeqReadsOnlyThisNodesIDs(t *testing.T) {
	h := New(Config{NodeID: "n1"})
	c := nopConn{}
	h.Register(c, "u")
	id := h.ConnID(c)
	if id == "" || h.localSeq(id) == 0 {
		t.Fatalf("ConnID %q does not read back to its seq", id)
	}
	if st := h.conns[c]; h.localSeq(id) != st.seq {
		t.Fatalf("localSeq(%q) = %d, want %d", id, h.localSeq(id), st.seq)
	}
	for _, other := range []string{"", "n1", "n1.", "n10.1", "n2.1", "n1.1.1", "n1x1", "n1.!"} {
		if got := h.localSeq(other); got != 0 {
			t.Errorf("localSeq(%q) = %d, want 0", other, got)
		}
	}
}
