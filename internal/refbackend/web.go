package refbackend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// maxLoginBody bounds POST /login: two short strings.
const maxLoginBody = 16 << 10

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse is the answer of POST /login. The access token is what the
// web app hands ECB (getUserToken, or the Socket.IO handshake's auth).
type LoginResponse struct {
	AccessToken string    `json:"accessToken"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// PublicUser is one entry of GET /users.
type PublicUser struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"`
}

// UsersResponse is the answer of GET /users.
type UsersResponse struct {
	Users []PublicUser `json:"users"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, ecbserver.InvalidArgument("malformed JSON body"))
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, ecbserver.InvalidArgument("username and password are required"))
		return
	}
	resp, err := s.login(r.Context(), req.Username, req.Password)
	if err != nil {
		var e *ecbserver.Error
		if errors.As(err, &e) {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "refbackend: login refused",
				slog.String("username", req.Username), slog.String("remote", r.RemoteAddr))
			writeError(w, e)
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "refbackend: login failed", slog.Any("err", err))
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// login checks the password and opens a session. The access token is random
// and only its SHA-256 is stored, so a leaked database holds no usable token.
func (s *Server) login(ctx context.Context, username, password string) (*LoginResponse, error) {
	var ph passwordHash
	err := s.db.QueryRowContext(ctx, `SELECT password_hash, password_salt, password_iter FROM users WHERE id = ? AND visitor = 0`, username).
		Scan(&ph.Hash, &ph.Salt, &ph.Iter)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.dummy.matches(password) // same work as a wrong password, so timing does not reveal user names
		return nil, ecbserver.Unauthenticated("wrong username or password")
	case err != nil:
		return nil, fmt.Errorf("load user %q: %w", username, err)
	}
	if !ph.matches(password) {
		return nil, ecbserver.Unauthenticated("wrong username or password")
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	expires := now.Add(s.ttl)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin login: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Expired sessions are swept here rather than by a background goroutine:
	// logins are rare, and the sweep is one indexed delete.
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("sweep sessions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions(token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		tokenHash(token), username, now.UnixMilli(), expires.UnixMilli()); err != nil {
		return nil, fmt.Errorf("store session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit login: %w", err)
	}
	return &LoginResponse{AccessToken: token, ExpiresAt: time.UnixMilli(expires.UnixMilli()).UTC()}, nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.publicUsers(r.Context())
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "refbackend: list users", slog.Any("err", err))
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, UsersResponse{Users: users})
}

func (s *Server) publicUsers(ctx context.Context) ([]PublicUser, error) {
	// rowid order is creation order: the seed's order on the login screen.
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.name, COALESCE(GROUP_CONCAT(r.role, ','), '')
		FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
		WHERE u.visitor = 0 GROUP BY u.id ORDER BY u.rowid`)
	if err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	defer rows.Close()
	users := []PublicUser{}
	for rows.Next() {
		var u PublicUser
		var roles string
		if err := rows.Scan(&u.ID, &u.Name, &roles); err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		u.Roles = splitList(roles)
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query users: %w", err)
	}
	return users, nil
}

// cors answers the browser's CORS protocol for the allowed origins and hands
// everything else to next. A nil next serves preflight requests only.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		// The answer depends on Origin, so a cache must key on it even when the
		// origin is refused.
		w.Header().Add("Vary", "Origin")
		allowed := origin != "" && s.origins[origin]
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Max-Age", "600")
		}
		if r.Method == http.MethodOptions {
			if !allowed {
				writeError(w, ecbserver.Forbidden("origin not allowed"))
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, e *ecbserver.Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, ecbserver.ErrorResponse{Error: ecbserver.ErrorBody{Code: e.Code, Message: e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		out = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(out) // the client left; nothing to do
}
