package refbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// VisitorTokenTTL is the lifetime of an anonymous visitor's userToken from
// POST /visitor: a support chat, not a working day.
const VisitorTokenTTL = 15 * time.Minute

// maxVisitorName bounds the display name a visitor chooses.
const maxVisitorName = 64

// VisitorRequest is the body of POST /visitor; both fields are optional.
type VisitorRequest struct {
	Name   string `json:"name,omitempty"`
	Origin string `json:"origin,omitempty"` // the page's origin; one of the allowed origins
}

// VisitorResponse is the answer of POST /visitor: an anonymous userToken the
// page hands ECB directly (no getUserToken), bound to the allowed origins.
type VisitorResponse struct {
	UserToken string     `json:"userToken"`
	ExpiresAt time.Time  `json:"expiresAt"`
	User      PublicUser `json:"user"`
}

// schemaV5 marks the anonymous visitors the backend knows (they become users
// rows when their first support thread is created, so that thread members
// and message authors stay foreign keys): they cannot log in and are not
// listed by GET /users.
var schemaV5 = execAll(
	`ALTER TABLE users ADD COLUMN visitor INTEGER NOT NULL DEFAULT 0`,
)

// handleVisitor mints an anonymous userToken for a new random visitor id.
// A browser's Origin header, and the origin named in the body, must be one of
// the allowed origins; the token is valid from exactly those (the one asked,
// or all of them).
func (s *Server) handleVisitor(w http.ResponseWriter, r *http.Request) {
	var req VisitorRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, ecbserver.InvalidArgument("malformed JSON body"))
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !s.origins[o] {
		writeError(w, ecbserver.Forbidden("origin not allowed"))
		return
	}
	origins := s.allowedOrigins()
	if req.Origin != "" {
		if !s.origins[req.Origin] {
			writeError(w, ecbserver.Forbidden("origin not allowed"))
			return
		}
		origins = []string{req.Origin}
	}
	if len(origins) == 0 {
		writeError(w, ecbserver.Forbidden("this backend allows no origin for visitors"))
		return
	}
	name := strings.TrimSpace(req.Name)
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxVisitorName {
		writeError(w, ecbserver.InvalidArgument("name must be valid UTF-8 of at most "+strconv.Itoa(maxVisitorName)+" characters"))
		return
	}
	if name == "" {
		name = "Visitor"
	}
	id := randomID("anon")
	now := s.now()
	tok, err := s.signer.SignAnonymousToken(ecbserver.AnonParams{ID: id, Name: name, Origins: origins, TTL: VisitorTokenTTL})
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "refbackend: visitor token", slog.Any("err", err))
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, VisitorResponse{
		UserToken: tok,
		ExpiresAt: now.Add(VisitorTokenTTL).Truncate(time.Second).UTC(),
		User:      PublicUser{ID: id, Name: name},
	})
}

// allowedOrigins returns the allowed origins, sorted.
func (s *Server) allowedOrigins() []string {
	out := make([]string, 0, len(s.origins))
	for o := range s.origins {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// ensureVisitor makes the anonymous visitor id a users row (visitor = 1, no
// usable password) named name. An id that belongs to a real user is refused:
// an anonymous token never acts as a known user.
func (b *ecbBackend) ensureVisitor(ctx context.Context, q querier, id, name string) error {
	if name == "" {
		name = "Visitor"
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO users(id, name, password_hash, password_salt, password_iter, visitor)
		VALUES (?, ?, x'', x'', 0, 1) ON CONFLICT(id) DO NOTHING`, id, name); err != nil {
		return fmt.Errorf("store visitor %s: %w", id, err)
	}
	var visitor int
	if err := q.QueryRowContext(ctx, `SELECT visitor FROM users WHERE id = ?`, id).Scan(&visitor); err != nil {
		return fmt.Errorf("look up visitor %s: %w", id, err)
	}
	if visitor == 0 {
		return ecbserver.Forbidden("the anonymous visitor " + strconv.Quote(id) + " is a known user's id")
	}
	return nil
}
