// Package backend owns ECB's calls to the company backend: the signed REST
// contract of api/backend.yaml. Every call is signed (HMAC-SHA256 over timestamp
// and body), bounded in time and in concurrency, guarded by a circuit breaker,
// and its failure is mapped to one client error code (apierr). Its
// ECB-Request-Id is the request id in the call's context (package reqid).
// With a tracer provider (SetTracerProvider) each call is a client span,
// the child of the operation's span in its context, and carries the W3C
// traceparent header of that span.
//
// A Client is safe for concurrent use.
package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/calltime"
	"github.com/ecbridge/ecb/internal/reqid"
	"github.com/ecbridge/ecb/internal/tracing"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Config configures the client; zero values mean the documented defaults.
type Config struct {
	URL             string        `yaml:"url"`             // base URL of the contract, e.g. http://127.0.0.1:8081/ecb/v1
	Secret          string        `yaml:"secret"`          // the HMAC secret shared with the backend
	Timeout         time.Duration `yaml:"timeout"`         // per call (default 5s)
	MaxConcurrent   int           `yaml:"maxConcurrent"`   // calls in flight (default 64)
	MaxResponse     int64         `yaml:"maxResponse"`     // bytes (default 4 MiB)
	BreakerFailures int           `yaml:"breakerFailures"` // consecutive failures that open the circuit (default 5)
	BreakerCooldown time.Duration `yaml:"breakerCooldown"` // how long it stays open (default 10s)
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 64
	}
	if c.MaxResponse <= 0 {
		c.MaxResponse = 4 << 20
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = 10 * time.Second
	}
}

// Observer is told about every call; the server wires Prometheus to it.
type Observer interface {
	BackendCall(op string, outcome string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) BackendCall(string, string, time.Duration) {}

// Client calls the backend contract.
type Client struct {
	cfg     Config
	base    string
	secret  []byte
	http    *http.Client
	slots   chan struct{}
	breaker *breaker
	obs     Observer
	tracer  trace.Tracer // nil: tracing off
}

// SetTracerProvider makes every call a span of tp, with its traceparent
// sent to the backend; nil turns tracing off, the default. Call it before
// the client's first call.
func (c *Client) SetTracerProvider(tp trace.TracerProvider) {
	if tp == nil {
		c.tracer = nil
		return
	}
	c.tracer = tp.Tracer(tracing.Scope)
}

// New returns a client. httpClient may be nil (a default transport is used).
func New(cfg Config, httpClient *http.Client, obs Observer) (*Client, error) {
	cfg.setDefaults()
	if cfg.URL == "" {
		return nil, errors.New("backend: url is required")
	}
	if cfg.Secret == "" {
		return nil, errors.New("backend: secret is required")
	}
	if httpClient == nil {
		httpClient = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.MaxConcurrent,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if obs == nil {
		obs = nopObserver{}
	}
	return &Client{
		cfg:     cfg,
		base:    strings.TrimRight(cfg.URL, "/"),
		secret:  []byte(cfg.Secret),
		http:    httpClient,
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		breaker: &breaker{threshold: cfg.BreakerFailures, cooldown: cfg.BreakerCooldown},
		obs:     obs,
	}, nil
}

// ErrCircuitOpen is the cause of backend_unavailable while the breaker is open.
var ErrCircuitOpen = errors.New("backend: circuit open")

// Authenticate exchanges an access token for a userToken.
func (c *Client) Authenticate(ctx context.Context, req *ecbserver.AuthenticateRequest) (*ecbserver.AuthenticateResponse, error) {
	var resp ecbserver.AuthenticateResponse
	if err := c.call(ctx, ecbserver.PathAuthenticate, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.UserToken == "" || resp.User.ID == "" {
		return nil, garbage(ecbserver.PathAuthenticate, "userToken and user.id are required")
	}
	return &resp, nil
}

// GetContacts returns the users req.UserID may start threads with.
func (c *Client) GetContacts(ctx context.Context, req *ecbserver.GetContactsRequest) (*ecbserver.GetContactsResponse, error) {
	var resp ecbserver.GetContactsResponse
	if err := c.call(ctx, ecbserver.PathGetContacts, "", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// GetThreads returns the threads of req.UserID, each with its threadToken.
func (c *Client) GetThreads(ctx context.Context, req *ecbserver.GetThreadsRequest) (*ecbserver.GetThreadsResponse, error) {
	var resp ecbserver.GetThreadsResponse
	if err := c.call(ctx, ecbserver.PathGetThreads, "", req, &resp); err != nil {
		return nil, err
	}
	for _, t := range resp.Threads {
		if t.Thread.ID == "" || t.ThreadToken == "" {
			return nil, garbage(ecbserver.PathGetThreads, "every thread needs thread.id and threadToken")
		}
	}
	return &resp, nil
}

// CreateThread stores a new thread and its first message.
func (c *Client) CreateThread(ctx context.Context, req *ecbserver.CreateThreadRequest) (*ecbserver.CreateThreadResponse, error) {
	var resp ecbserver.CreateThreadResponse
	if err := c.call(ctx, ecbserver.PathCreateThread, req.Message.ClientMessageID, req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID == "" || resp.ThreadToken == "" || resp.Message.ID == "" {
		return nil, garbage(ecbserver.PathCreateThread, "thread.id, threadToken and message.id are required")
	}
	return &resp, nil
}

// GetThread returns a thread and a page of its messages.
func (c *Client) GetThread(ctx context.Context, req *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error) {
	var resp ecbserver.GetThreadResponse
	if err := c.call(ctx, ecbserver.PathGetThread, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID == "" || resp.ThreadToken == "" {
		return nil, garbage(ecbserver.PathGetThread, "thread.id and threadToken are required")
	}
	return &resp, nil
}

// AddThreadMessage stores a message; the answer's ThreadToken is "" when
// the backend did not re-issue one.
func (c *Client) AddThreadMessage(ctx context.Context, req *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	var resp ecbserver.AddThreadMessageResponse
	if err := c.call(ctx, ecbserver.PathAddThreadMessage, req.ClientMessageID, req, &resp); err != nil {
		return nil, err
	}
	// threadToken is optional since contract 1.5: the backend re-issues one
	// only when the author's nears its end.
	if resp.Message.ID == "" {
		return nil, garbage(ecbserver.PathAddThreadMessage, "message.id is required")
	}
	return &resp, nil
}

func garbage(path, why string) error {
	return apierr.Wrap(fmt.Errorf("backend %s: unusable response: %s", path, why), apierr.BackendError, "the backend answered an unusable response")
}

// call performs one signed POST and decodes the JSON answer into out.
func (c *Client) call(ctx context.Context, path, idempotencyKey string, in, out any) (err error) {
	start := time.Now()
	outcome := "ok"
	var span trace.Span // nil: tracing off
	status := 0         // of the answer, for the span
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, "backend "+strings.TrimPrefix(path, "/"), trace.WithSpanKind(trace.SpanKindClient))
	}
	defer func() {
		if err != nil {
			outcome = string(apierr.From(err).Code)
		}
		d := time.Since(start)
		c.obs.BackendCall(strings.TrimPrefix(path, "/"), outcome, d)
		calltime.Add(ctx, d) // the operation's backend share (package calltime)
		if span != nil {
			endSpan(span, path, status, err)
		}
	}()

	if err := c.breaker.allow(ctx); err != nil {
		if errors.Is(err, ErrCircuitOpen) {
			return apierr.Wrap(ErrCircuitOpen, apierr.BackendUnavailable, "the backend is unavailable")
		}
		return apierr.Wrap(fmt.Errorf("backend %s: waiting for the breaker's probe: %w", path, err), apierr.BackendUnavailable, "the request was cancelled")
	}
	release, err := c.acquire(ctx, path)
	if err != nil {
		c.breaker.release() // a probe that never went out proved nothing
		return err
	}
	defer release()

	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("backend %s: encode request: %w", path, err)
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.signedRequest(callCtx, path, body)
	if err != nil {
		return err
	}
	if idempotencyKey != "" {
		req.Header.Set(ecbserver.HeaderIdempotencyKey, idempotencyKey)
	}
	if span != nil {
		propagation.TraceContext{}.Inject(callCtx, propagation.HeaderCarrier(req.Header))
	}

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (a client went away): not the backend's fault.
			c.breaker.release()
			return apierr.Wrap(fmt.Errorf("backend %s: %w", path, ctx.Err()), apierr.BackendUnavailable, "the request was cancelled")
		}
		c.breaker.failure(time.Now())
		return apierr.Wrap(fmt.Errorf("backend %s: %w", path, err), apierr.BackendUnavailable, "the backend is unavailable")
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponse+1))
	if err != nil {
		c.breaker.failure(time.Now())
		return apierr.Wrap(fmt.Errorf("backend %s: read response: %w", path, err), apierr.BackendUnavailable, "the backend is unavailable")
	}
	if int64(len(raw)) > c.cfg.MaxResponse {
		c.breaker.success()
		return garbage(path, fmt.Sprintf("response larger than %d bytes", c.cfg.MaxResponse))
	}
	// 501 is the backend's healthy "I do not implement this optional call",
	// not a failure: mapError reports it and the breaker stays closed.
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		c.breaker.failure(time.Now())
		return apierr.Wrap(fmt.Errorf("backend %s: status %d: %s", path, resp.StatusCode, snippet(raw)), apierr.BackendUnavailable, "the backend failed")
	}
	c.breaker.success()
	if resp.StatusCode >= 300 {
		return mapError(path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return garbage(path, "invalid JSON: "+err.Error())
	}
	return nil
}

// acquire takes one of the backend.maxConcurrent call slots, waiting at most
// until ctx is done; release gives it back.
func (c *Client) acquire(ctx context.Context, path string) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, apierr.Wrap(fmt.Errorf("backend %s: waiting for a call slot: %w", path, ctx.Err()), apierr.BackendUnavailable, "the backend is busy")
	}
}

// signedRequest builds the signed POST of body to path, bound by ctx (which
// carries the caller's request id).
func (c *Client) signedRequest(ctx context.Context, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("backend %s: build request: %w", path, err)
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ecbserver.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(ecbserver.HeaderSignature, ecbserver.Sign(c.secret, now, body))
	req.Header.Set(ecbserver.HeaderRequestID, requestID(ctx))
	req.Header.Set(ecbserver.HeaderContractVersion, ecbserver.ContractVersion)
	return req, nil
}

// mapError turns a 3xx/4xx answer, or a 501, into the client error of the
// same meaning. A backend's message is passed on: it was written for the user.
func mapError(path string, status int, raw []byte) error {
	var eb ecbserver.ErrorResponse
	_ = json.Unmarshal(raw, &eb)
	if status == http.StatusNotImplemented || eb.Error.Code == ecbserver.CodeNotImplemented {
		// An optional call (contract 1.1) this backend lacks. apierr has no
		// not_implemented (adding one is a protocol change): the client sees
		// not_found, with a message that says what is missing.
		op := strings.TrimPrefix(path, "/")
		return apierr.Wrap(fmt.Errorf("backend %s: status %d: not implemented: %s", path, status, snippet([]byte(eb.Error.Message))),
			apierr.NotFound, "the backend does not support "+op)
	}
	if eb.Error.Code == ecbserver.CodeBadSignature {
		// ECB and the backend disagree on the secret or the clock: an
		// operator's problem, never the user's token.
		return apierr.Wrap(fmt.Errorf("backend %s refused ECB's signature (check backend.secret and the clocks): %s", path, eb.Error.Message),
			apierr.BackendError, "the backend refused ECB's credentials")
	}
	code := map[string]apierr.Code{
		ecbserver.CodeInvalidArgument: apierr.InvalidArgument,
		ecbserver.CodeUnauthenticated: apierr.Unauthenticated,
		ecbserver.CodeForbidden:       apierr.Forbidden,
		ecbserver.CodeNotFound:        apierr.NotFound,
		ecbserver.CodeConflict:        apierr.Conflict,
		ecbserver.CodePayloadTooLarge: apierr.PayloadTooLarge,
	}[eb.Error.Code]
	if code == "" {
		code = map[int]apierr.Code{
			http.StatusBadRequest:            apierr.InvalidArgument,
			http.StatusUnauthorized:          apierr.Unauthenticated,
			http.StatusForbidden:             apierr.Forbidden,
			http.StatusNotFound:              apierr.NotFound,
			http.StatusConflict:              apierr.Conflict,
			http.StatusRequestEntityTooLarge: apierr.PayloadTooLarge,
		}[status]
	}
	if code == "" {
		return garbage(path, fmt.Sprintf("unexpected status %d", status))
	}
	msg := eb.Error.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	return apierr.Wrap(fmt.Errorf("backend %s: status %d", path, status), code, msg)
}

func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// requestID is the ECB-Request-Id of a call: the id of the client request
// (or Socket.IO operation) it serves, the one on ECB's log lines, so that
// the two logs can be joined; a fresh one for a call that serves none.
func requestID(ctx context.Context) string {
	if id := reqid.From(ctx); id != "" {
		return id
	}
	return reqid.New()
}

// endSpan records a call's outcome on its span and ends it.
func endSpan(span trace.Span, path string, status int, err error) {
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrCall.String(strings.TrimPrefix(path, "/")), attribute.String("http.request.method", http.MethodPost))
		if status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		if err != nil {
			code := string(apierr.From(err).Code)
			span.SetAttributes(tracing.AttrErrorCode.String(code))
			span.SetStatus(codes.Error, code)
		}
	}
	span.End()
}

// Healthy reports false while the circuit breaker is open.
func (c *Client) Healthy() bool { return !c.breaker.open(time.Now()) }
