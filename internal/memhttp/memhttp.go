// Package memhttp is test support: an http.RoundTripper that serves each
// request with an http.Handler in the calling goroutine, as a server would
// answer it over TCP. With no socket and no goroutine of its own it works
// inside a testing/synctest bubble, where the client's timeouts and the
// handler's timers run on the bubble's fake clock.
package memhttp

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
)

// Transport serves requests with Handler. The request's context reaches the
// handler, so timeouts and cancellations behave as over TCP: a request whose
// context ends while the handler runs fails with the context's error.
type Transport struct{ Handler http.Handler }

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	in := req.Clone(req.Context())
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.Handler.ServeHTTP(rec, in)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// Client returns an http.Client whose requests h serves.
func Client(h http.Handler) *http.Client { return &http.Client{Transport: Transport{Handler: h}} }
