package ecbserver

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAddThreadMessageMentionsValidate(t *testing.T) {
	m := AddThreadMessageRequest{UserID: "u", ThreadID: "t", Body: "hi", Mentions: []string{"bob"}}
	if err := m.validate(); err != nil {
		t.Fatal(err)
	}
	m.Mentions = make([]string, MaxMentions)
	for i := range m.Mentions {
		m.Mentions[i] = strings.Repeat("u", i+1)
	}
	if err := m.validate(); err != nil {
		t.Fatalf("%d mentions refused: %v", MaxMentions, err)
	}
	m.Mentions = append(m.Mentions, "one-too-many")
	if m.validate() == nil {
		t.Fatalf("%d mentions accepted", len(m.Mentions))
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxMentionIDBytes+1)} {
		m.Mentions = []string{"bob", bad}
		if m.validate() == nil {
			t.Errorf("mention %q accepted", bad)
		}
	}
}

func TestMentionFieldsOnTheWire(t *testing.T) {
	yes := true
	b, err := json.Marshal(Thread{ID: "t", Members: []string{"a"}, Mentioned: &yes})
	if err != nil || !strings.Contains(string(b), `"mentioned":true`) {
		t.Fatalf("thread %s %v", b, err)
	}
	b, err = json.Marshal(Thread{ID: "t", Members: []string{"a"}})
	if err != nil || strings.Contains(string(b), "mentioned") {
		t.Fatalf("a thread without Mentioned: %s %v", b, err)
	}
	b, err = json.Marshal(Message{ID: "m", Mentions: []string{"bob"}})
	if err != nil || !strings.Contains(string(b), `"mentions":["bob"]`) {
		t.Fatalf("message %s %v", b, err)
	}
	b, err = json.Marshal(Message{ID: "m"})
	if err != nil || strings.Contains(string(b), "mentions") {
		t.Fatalf("a message without mentions: %s %v", b, err)
	}
}
