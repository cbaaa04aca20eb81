package ecbserver_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func TestDiscoverURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://chat.example.com":        "https://chat.example.com/v1/discover",
		"https://chat.example.com/":       "https://chat.example.com/v1/discover",
		"http://127.0.0.1:8080/chat/":     "http://127.0.0.1:8080/chat/v1/discover",
		"https://example.com/a%20b":       "https://example.com/a%20b/v1/discover",
		"ftp://x":                         "",
		"/relative":                       "",
		"https://u:p@example.com":         "",
		"https://example.com/?next=/evil": "",
	} {
		got, err := ecbserver.DiscoverURL(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("DiscoverURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSignAnonymousSession(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ecbserver.NewTokenSigner(priv, ecbserver.SignerOptions{Audience: "ecb"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.SignAnonymousSession("https://chat.example.com", ecbserver.AnonParams{Origins: []string{"https://shop.example.com"}})
	if err != nil || sess.UserToken == "" || sess.DiscoverURL != "https://chat.example.com/v1/discover" {
		t.Fatalf("%+v %v", sess, err)
	}
	if _, err := s.SignAnonymousSession("chat.example.com", ecbserver.AnonParams{Origins: []string{"https://shop.example.com"}}); err == nil {
		t.Fatal("a URL without a scheme was accepted")
	}
	if _, err := s.SignAnonymousSession("https://chat.example.com", ecbserver.AnonParams{}); err == nil {
		t.Fatal("no origins was accepted")
	}
}
