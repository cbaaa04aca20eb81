package serverapi

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/sse"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// The customer-support workgroups through the Server API: list, read,
// create or replace, remove. Changes act on the routing engine: this
// node's, in memory (a restart returns to the configuration,
// support.workgroups), or in cluster mode the owner node's, whose state is
// saved in Redis, so that every node serves them and they outlive the
// owner (docs/cluster-support.md).

// Limits of a workgroup's settings given through the API.
const (
	maxWorkgroupName    = 128 // as getWorkgroupStatus and support.ask accept
	maxDisplayName      = 256
	maxRequiredFields   = 32
	maxFieldName        = 128
	maxOfferTimeoutSecs = 86400
	maxMaxChats         = 1000
)

// The answers are the SDK's types (ecbserver.Workgroup and its parts), so
// that what ECB sends and what the SDK decodes cannot drift apart; the PUT
// body is the API's own: it must tell an omitted number from a zero.

// WorkgroupRequest is the body of PUT /workgroups/{name}: the settings;
// those omitted take the support.* defaults, as in the configuration.
type WorkgroupRequest struct {
	DisplayName         string                `json:"displayName,omitempty"`
	Strategy            string                `json:"strategy,omitempty"`
	OfferTimeoutSeconds *int                  `json:"offerTimeoutSeconds,omitempty"`
	MaxChats            *int                  `json:"maxChats,omitempty"`
	Open                *bool                 `json:"open,omitempty"`
	Hours               *support.HoursConfig  `json:"hours,omitempty"`
	RequiredFields      []string              `json:"requiredFields,omitempty"`
	Queues              []support.QueueConfig `json:"queues,omitempty"`
}

func workgroupOf(info support.WorkgroupInfo) ecbserver.Workgroup {
	w, st := info.Workgroup, info.Status
	out := ecbserver.Workgroup{Name: w.Name, DisplayName: w.DisplayName, Strategy: string(w.Strategy),
		OfferTimeoutSeconds: int((w.OfferTimeout + time.Second - 1) / time.Second), MaxChats: w.MaxChats,
		Open: w.Open, RequiredFields: slices.Clone(w.RequiredFields),
		Status: ecbserver.WorkgroupStatus{Open: st.Open, AgentsAvailable: st.AgentsAvailable, QueueLength: st.QueueLength,
			EstimatedWait: int((st.EstimatedWait + time.Second/2) / time.Second), OpensAt: utcPtr(st.OpensAt), ClosesAt: utcPtr(st.ClosesAt)}}
	if out.RequiredFields == nil {
		out.RequiredFields = []string{}
	}
	for _, q := range w.Queues {
		c := q.Config()
		out.Queues = append(out.Queues, ecbserver.WorkgroupQueue{Queue: c.Queue, Match: c.Match, Agents: c.Agents})
	}
	for _, q := range ops.QueueFiguresOf(st.Queues) {
		out.Status.Queues = append(out.Status.Queues, ecbserver.WorkgroupQueueStatus(q))
	}
	if w.Hours != nil {
		hc := ecbserver.WorkgroupHours(w.Hours.Config())
		out.Hours = &hc
	}
	return out
}

func utcPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// engine returns the support engine, or writes not_found.
func (a *API) engine(w http.ResponseWriter) ops.SupportEngine {
	e := a.ops.Support()
	if e == nil {
		sse.WriteError(w, apierr.New(apierr.NotFound, "customer support is not configured on this node"))
	}
	return e
}

// workgroupTarget returns the engine and the path's workgroup name, or
// writes the error (support not configured, a bad name).
func (a *API) workgroupTarget(w http.ResponseWriter, r *http.Request) (ops.SupportEngine, string, bool) {
	e := a.engine(w)
	if e == nil {
		return nil, "", false
	}
	name, ok := workgroupName(w, r)
	return e, name, ok
}

// workgroupName returns the path's workgroup name, or writes invalid_argument.
func workgroupName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if name == "" || len(name) > maxWorkgroupName || !validID(name) {
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "name must be 1 to %d bytes of printable UTF-8", maxWorkgroupName))
		return "", false
	}
	return name, true
}

func (a *API) listWorkgroups(w http.ResponseWriter, _ *http.Request) {
	e := a.engine(w)
	if e == nil {
		return
	}
	out := struct {
		Workgroups []ecbserver.Workgroup `json:"workgroups"`
	}{Workgroups: []ecbserver.Workgroup{}}
	for _, info := range e.WorkgroupInfos() {
		out.Workgroups = append(out.Workgroups, workgroupOf(info))
	}
	sse.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getWorkgroup(w http.ResponseWriter, r *http.Request) {
	e, name, ok := a.workgroupTarget(w, r)
	if !ok {
		return
	}
	info, err := e.Workgroup(name)
	if err != nil {
		sse.WriteError(w, ops.SupportError(err))
		return
	}
	sse.WriteJSON(w, http.StatusOK, workgroupOf(info))
}

func (a *API) putWorkgroup(w http.ResponseWriter, r *http.Request) {
	e, name, ok := a.workgroupTarget(w, r)
	if !ok {
		return
	}
	var req WorkgroupRequest
	if err := a.decode(w, r, &req, true); err != nil {
		sse.WriteError(w, err)
		return
	}
	wg, err := ParseWorkgroup(a.support, name, req)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	created, err := e.PutWorkgroup(wg)
	if err != nil {
		var se *support.Error
		if errors.As(err, &se) { // a change of queues that would strand a waiting request: conflict
			sse.WriteError(w, ops.SupportError(err))
			return
		}
		sse.WriteError(w, apierr.Wrap(err, apierr.InvalidArgument, err.Error()))
		return
	}
	info, err := e.Workgroup(name)
	if err != nil { // removed meanwhile by another call
		sse.WriteError(w, ops.SupportError(err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	sse.WriteJSON(w, status, workgroupOf(info))
}

// ParseWorkgroup checks the body of PUT /workgroups/{name} and returns the
// workgroup it describes, the defaults of cfg applied. Its errors are
// invalid_argument naming the field and never echo long input.
func ParseWorkgroup(cfg support.Config, name string, req WorkgroupRequest) (support.Workgroup, error) {
	bad := func(format string, args ...any) (support.Workgroup, error) {
		return support.Workgroup{}, apierr.New(apierr.InvalidArgument, format, args...)
	}
	switch {
	case len(req.DisplayName) > maxDisplayName || !printable(req.DisplayName):
		return bad("displayName must be at most %d bytes of printable UTF-8", maxDisplayName)
	case req.Strategy != "" && !support.Strategy(req.Strategy).Valid():
		return bad("strategy must be %s or %s", support.RoundRobin, support.LeastBusy)
	case req.OfferTimeoutSeconds != nil && (*req.OfferTimeoutSeconds < 1 || *req.OfferTimeoutSeconds > maxOfferTimeoutSecs):
		return bad("offerTimeoutSeconds must be within 1..%d", maxOfferTimeoutSecs)
	case req.MaxChats != nil && (*req.MaxChats < 1 || *req.MaxChats > maxMaxChats):
		return bad("maxChats must be within 1..%d", maxMaxChats)
	case len(req.RequiredFields) > maxRequiredFields:
		return bad("requiredFields: at most %d fields", maxRequiredFields)
	}
	for i, f := range req.RequiredFields {
		if f == "" || len(f) > maxFieldName || !printable(f) {
			return bad("requiredFields[%d] must be 1 to %d bytes of printable UTF-8 (a metadata key, or \"question\")", i, maxFieldName)
		}
		if slices.Contains(req.RequiredFields[:i], f) {
			return bad("requiredFields[%d] repeats %q", i, f)
		}
	}
	wc := support.WorkgroupConfig{Name: name, DisplayName: req.DisplayName, Strategy: req.Strategy,
		Open: req.Open, RequiredFields: req.RequiredFields, Hours: req.Hours, Queues: req.Queues}
	if req.OfferTimeoutSeconds != nil {
		wc.OfferTimeout = time.Duration(*req.OfferTimeoutSeconds) * time.Second
	}
	if req.MaxChats != nil {
		wc.MaxChats = *req.MaxChats
	}
	wg, err := cfg.ResolveWorkgroup(wc, "hours")
	if err != nil {
		// Hours errors name their keys (hours.weekly.mon[0]: ...); one line.
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		if len(msg) > 1000 {
			msg = msg[:1000] + "…"
		}
		return support.Workgroup{}, apierr.Wrap(err, apierr.InvalidArgument, msg)
	}
	return wg, nil
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

func (a *API) deleteWorkgroup(w http.ResponseWriter, r *http.Request) {
	e, name, ok := a.workgroupTarget(w, r)
	if !ok {
		return
	}
	if err := e.RemoveWorkgroup(name); err != nil {
		sse.WriteError(w, ops.SupportError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// listConversations answers the live chats of a workgroup (pending or in
// progress), oldest first, as supervisors see them (support.conversations).
func (a *API) listConversations(w http.ResponseWriter, r *http.Request) {
	e, name, ok := a.workgroupTarget(w, r)
	if !ok {
		return
	}
	rs, err := e.Conversations(name)
	if err != nil {
		sse.WriteError(w, ops.SupportError(err))
		return
	}
	out := ops.ConversationsResult{Conversations: make([]ops.Conversation, 0, len(rs))}
	for _, req := range rs {
		out.Conversations = append(out.Conversations, ops.ConversationOf(req))
	}
	sse.WriteJSON(w, http.StatusOK, out)
}
