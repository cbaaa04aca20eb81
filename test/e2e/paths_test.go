package e2e

import (
	"io"
	"net/http"
	"testing"
)

// TestPathsThatAreNotUTF8: paths with bytes that are not UTF-8 (%c0, %ff, a
// truncated sequence) name nothing: 4xx on every route of the demo, never
// a 500.
func TestPathsThatAreNotUTF8(t *testing.T) {
	d := startDemo(t)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/%c0", 404},
		{"/%ff/x", 404},
		{"/app%e2%82.js", 404},
		{"/v1/%c0", 404},
		{"/v1/threads/%c0/messages", 404},
		{"/socket.io/%c0", 400},
	} {
		resp, err := http.Get(d.ECB + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}
