// Package e2e runs ECB end to end: the real `ecb demo` (bridge, reference
// backend on SQLite, web app) in process on random ports, driven over HTTP and
// Server-Sent Events like a client would.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/cli"
)

// demo is a running `ecb demo`.
type demo struct {
	ECB     string // http://127.0.0.1:port
	Backend string
	Data    string
	stop    func()
	stderr  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	readyLine   = regexp.MustCompile(`ECB client API:\s+(http://\S+)`)
	backendLine = regexp.MustCompile(`reference backend:\s+(http://\S+)`)
)

// startDemo runs `ecb demo` on random ports with its data in a temp dir and
// stops it when the test ends. The keys are generated once per test process
// (RSA generation under -race takes seconds) and copied in; startFreshDemo
// lets the demo generate its own.
func startDemo(tb testing.TB, extra ...string) *demo {
	tb.Helper()
	return startDemoIn(tb, demoData(tb), extra...)
}

// demoData returns a fresh data directory holding the keys of this test
// process.
func demoData(tb testing.TB) string {
	tb.Helper()
	data := filepath.Join(tb.TempDir(), "data")
	keysOnce.Do(func() {
		keysDir, keysErr = os.MkdirTemp("", "ecb-e2e-keys")
		if keysErr == nil && cli.MainEnv(context.Background(), []string{"keys", "generate", "--out", keysDir}, cli.Env{Stdout: io.Discard, Stderr: os.Stderr}) != 0 {
			keysErr = fmt.Errorf("ecb keys generate failed")
		}
	})
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	if err := os.CopyFS(data, os.DirFS(keysDir)); err != nil {
		tb.Fatal(err)
	}
	return data
}

var (
	keysOnce sync.Once
	keysDir  string
	keysErr  error
)

func startFreshDemo(tb testing.TB, extra ...string) *demo {
	tb.Helper()
	return startDemoIn(tb, filepath.Join(tb.TempDir(), "data"), extra...)
}

func startDemoIn(tb testing.TB, data string, extra ...string) *demo {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"demo", "--listen", "127.0.0.1:0", "--backend-listen", "127.0.0.1:0", "--data", data}, extra...)
	go func() {
		done <- cli.MainEnv(ctx, args, cli.Env{Stdout: pw, Stderr: stderr})
		pw.Close()
	}()
	d := &demo{Data: data, stderr: stderr}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for d.ECB == "" || d.Backend == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				tb.Fatalf("ecb demo exited before it was ready:\n%s", stderr.String())
			}
			if m := readyLine.FindStringSubmatch(l); m != nil {
				d.ECB = m[1]
			}
			if m := backendLine.FindStringSubmatch(l); m != nil {
				d.Backend = m[1]
			}
		case <-timeout:
			tb.Fatalf("ecb demo not ready after 30s:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines { // keep draining stdout
		}
	}()
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					tb.Errorf("ecb demo exited with %d:\n%s", code, stderr.String())
				}
			case <-time.After(20 * time.Second):
				tb.Errorf("ecb demo did not stop within 20s")
			}
		})
	}
	tb.Cleanup(d.stop)
	return d
}

// response is a decoded envelope.
type response struct {
	Status int
	Header http.Header
	Data   json.RawMessage `json:"data"`
	Error  *struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		RetryAfter int    `json:"retryAfter"`
	} `json:"error"`
}

func (r *response) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// ok fails tb unless r is a success.
func (r *response) ok(tb testing.TB) {
	tb.Helper()
	if r.Error != nil || r.Status >= 300 {
		tb.Fatalf("status %d: %+v", r.Status, r.Error)
	}
}

// call sends a request with optional JSON body and headers ("Name: value").
func call(tb testing.TB, method, url string, body any, headers ...string) *response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &response{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("%s %s: status %d, body is not the envelope: %q", method, url, resp.StatusCode, raw)
	}
	if (out.Data == nil) == (out.Error == nil) {
		tb.Fatalf("%s %s: envelope must have exactly one of data and error: %q", method, url, raw)
	}
	return out
}

func decodeData[T any](tb testing.TB, r *response) T {
	tb.Helper()
	var v T
	if r.Error != nil {
		tb.Fatalf("expected data, got error %s: %s (status %d)", r.Error.Code, r.Error.Message, r.Status)
	}
	if err := json.Unmarshal(r.Data, &v); err != nil {
		tb.Fatalf("decode data: %v: %s", err, r.Data)
	}
	return v
}

// login runs seed steps 0 and 1: the backend's /login, then ECB's getUserToken.
func (d *demo) login(tb testing.TB, user string) string {
	tb.Helper()
	raw, _ := json.Marshal(map[string]string{"username": user, "password": user})
	resp, err := http.Post(d.Backend+"/login", "application/json", bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var lr struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&lr); err != nil || lr.AccessToken == "" {
		tb.Fatalf("backend /login for %s: status %d, %v", user, resp.StatusCode, err)
	}
	r := call(tb, "POST", d.ECB+"/v1/token", map[string]string{"accessToken": lr.AccessToken})
	out := decodeData[struct {
		UserToken string `json:"userToken"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	}](tb, r)
	if out.User.ID != user || out.UserToken == "" {
		tb.Fatalf("getUserToken for %s answered user %q", user, out.User.ID)
	}
	return out.UserToken
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID, Event string
	Data      json.RawMessage
}

// sseStream reads GET /v1/events.
type sseStream struct {
	events chan sseEvent
	resp   *http.Response
	cancel context.CancelFunc
	ID     string // the streamId of the ready event
	Ready  struct {
		StreamID  string `json:"streamId"`
		Resumed   bool   `json:"resumed"`
		Recovered *bool  `json:"recovered"` // absent for a new stream
	}
	LastID string
}

func openStream(tb testing.TB, base, token string, headers ...string) *sseStream {
	tb.Helper()
	s, status, body := tryOpenStream(tb, base, token, headers...)
	if s == nil {
		tb.Fatalf("GET /v1/events: status %d: %s", status, body)
	}
	return s
}

// resumeStream reopens a stream with Last-Event-ID lastID the way EventSource
// reconnects. A resume while the old response is still attached (ECB has not
// read its EOF yet) takes the stream over: it is never refused.
func resumeStream(tb testing.TB, base, token, lastID string) *sseStream {
	tb.Helper()
	return openStream(tb, base, token, "Last-Event-ID: "+lastID)
}

// tryOpenStream is openStream that returns a refusal (nil, status, body)
// instead of failing the test.
func tryOpenStream(tb testing.TB, base, token string, headers ...string) (*sseStream, int, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(raw)
	}
	s := &sseStream{events: make(chan sseEvent, 256), resp: resp, cancel: cancel}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != nil {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = json.RawMessage(line[6:])
			}
		}
	}()
	tb.Cleanup(s.Close)
	ready := s.next(tb, 10*time.Second)
	if ready.Event != "ready" {
		tb.Fatalf("first event is %q, want ready", ready.Event)
	}
	if err := json.Unmarshal(ready.Data, &s.Ready); err != nil {
		tb.Fatal(err)
	}
	s.ID = s.Ready.StreamID
	return s, http.StatusOK, ""
}

// next returns the next event that is not a heartbeat, failing after wait.
func (s *sseStream) next(tb testing.TB, wait time.Duration) sseEvent {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			tb.Fatal("event stream ended")
		}
		if ev.ID != "" {
			s.LastID = ev.ID
		}
		return ev
	case <-time.After(wait):
		tb.Fatalf("no event within %s", wait)
	}
	return sseEvent{}
}

// expectNone checks that no event arrives within wait.
func (s *sseStream) expectNone(tb testing.TB, wait time.Duration) {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			tb.Fatalf("unexpected event %s: %s", ev.Event, ev.Data)
		}
	case <-time.After(wait):
	}
}

func (s *sseStream) Close() {
	s.cancel()
	s.resp.Body.Close()
}
