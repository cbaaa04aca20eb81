package refbackend

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// DefaultAccessTokenTTL is how long an access token from POST /login is valid
// when Config.AccessTokenTTL is zero: a working day.
const DefaultAccessTokenTTL = 12 * time.Hour

// Config configures a Server. Path, Secret and Signer are required; the zero
// value of every other field means its documented default.
type Config struct {
	// Path is the SQLite database file; it is created when missing.
	Path string
	// Secret is the HMAC secret shared with ECB (ECB's backend.secret).
	Secret []byte
	// Signer signs the userTokens and threadTokens with the backend's private
	// key; ECB holds the public key.
	Signer *ecbserver.TokenSigner
	// AllowedOrigins are the browser origins (scheme://host[:port], compared
	// exactly) that may call /login and /users: the demo web app's origin.
	AllowedOrigins []string
	// AccessTokenTTL is the lifetime of an access token; zero means
	// DefaultAccessTokenTTL.
	AccessTokenTTL time.Duration
	// Logger receives failed logins and internal errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// PasswordIterations is the PBKDF2 work factor used when the demo users
	// are created; zero means DefaultPasswordIterations. Tests lower it.
	PasswordIterations int
	// PublicURL is this server's base URL as browsers reach it
	// (http://127.0.0.1:8081): the file URLs of attachments start with it.
	// Empty: getUploadUrl answers 501 (no attachments).
	PublicURL string
	// FilesDir holds the uploaded files; empty means "files" beside Path.
	FilesDir string
	// UploadTTL and DownloadTTL are the lifetimes of the signed file URLs;
	// zero means DefaultUploadTTL and DefaultDownloadTTL.
	UploadTTL, DownloadTTL time.Duration
	// MaxUploadBytes caps a file; zero means DefaultMaxUploadBytes.
	MaxUploadBytes int64
}

// Server is the reference backend. Build it with Open.
type Server struct {
	db      *sql.DB
	signer  *ecbserver.TokenSigner
	log     *slog.Logger
	ttl     time.Duration
	origins map[string]bool
	handler http.Handler
	// dummy is checked against when a login names an unknown user, so that
	// the answer takes as long as for a known user with a wrong password.
	dummy passwordHash
	now   func() time.Time // time.Now; a field so tests can move the clock

	// Attachments (attachments.go).
	publicURL              string
	filesDir               string
	filesKey               []byte
	uploadTTL, downloadTTL time.Duration
	maxUpload              int64
}

// Open opens (or creates) the database at cfg.Path, applies the migrations
// the file does not have yet (seeding the demo users on first start) and
// returns a Server ready to serve.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	switch {
	case cfg.Path == "":
		return nil, errors.New("refbackend: Config.Path is required")
	case len(cfg.Secret) == 0:
		return nil, errors.New("refbackend: Config.Secret is required")
	case cfg.Signer == nil:
		return nil, errors.New("refbackend: Config.Signer is required")
	case cfg.AccessTokenTTL < 0 || cfg.PasswordIterations < 0:
		return nil, errors.New("refbackend: AccessTokenTTL and PasswordIterations must not be negative")
	}
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.PasswordIterations == 0 {
		cfg.PasswordIterations = DefaultPasswordIterations
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dummy, err := hashPassword("not a password", cfg.PasswordIterations)
	if err != nil {
		return nil, fmt.Errorf("refbackend: %w", err)
	}

	db, err := openDB(ctx, cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("refbackend: %w", err)
	}
	s := &Server{
		db:      db,
		signer:  cfg.Signer,
		log:     cfg.Logger,
		ttl:     cfg.AccessTokenTTL,
		origins: make(map[string]bool, len(cfg.AllowedOrigins)),
		dummy:   dummy,
		now:     time.Now,
	}
	for _, o := range cfg.AllowedOrigins {
		s.origins[o] = true
	}
	s.publicURL = strings.TrimRight(cfg.PublicURL, "/")
	s.filesDir = cfg.FilesDir
	if s.filesDir == "" {
		s.filesDir = filepath.Join(filepath.Dir(cfg.Path), "files")
	}
	s.filesKey = filesKey(cfg.Secret)
	s.uploadTTL, s.downloadTTL, s.maxUpload = cmp.Or(cfg.UploadTTL, DefaultUploadTTL), cmp.Or(cfg.DownloadTTL, DefaultDownloadTTL),
		cmp.Or(cfg.MaxUploadBytes, DefaultMaxUploadBytes)
	if s.publicURL != "" {
		if err := os.MkdirAll(s.filesDir, 0o700); err != nil {
			return nil, fmt.Errorf("refbackend: files: %w", err)
		}
	}
	if err := migrate(ctx, db, migrations(cfg.PasswordIterations), s.now()); err != nil {
		db.Close()
		return nil, fmt.Errorf("refbackend: %s: %w", cfg.Path, err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /login", s.cors(http.HandlerFunc(s.handleLogin)))
	mux.Handle("GET /users", s.cors(http.HandlerFunc(s.handleUsers)))
	mux.Handle("OPTIONS /login", s.cors(nil))
	mux.Handle("OPTIONS /users", s.cors(nil))
	mux.Handle("POST /visitor", s.cors(http.HandlerFunc(s.handleVisitor)))
	mux.Handle("OPTIONS /visitor", s.cors(nil))
	mux.Handle("PUT /files/{id}", s.cors(http.HandlerFunc(s.handleFile)))
	mux.Handle("GET /files/{id}", http.HandlerFunc(s.handleFile))
	mux.Handle("OPTIONS /files/{id}", s.cors(nil))
	mux.Handle("GET /callbacks", http.HandlerFunc(s.handleCallbacks))
	mux.Handle("GET /offline", http.HandlerFunc(s.handleNudges))
	mux.Handle(ContractPrefix+ecbserver.PathCallbacks, ecbserver.NewCallbackHandler(cfg.Secret, s.storeCallback,
		ecbserver.CallbackHandlerOptions{Logger: cfg.Logger}))
	mux.Handle(ContractPrefix+"/", http.StripPrefix(ContractPrefix,
		ecbserver.NewHandler(cfg.Secret, &ecbBackend{s}, ecbserver.HandlerOptions{Logger: cfg.Logger})))
	s.handler = mux
	return s, nil
}

// migrations are the schema's numbered steps, oldest first.
func migrations(passwordIterations int) []migration {
	return []migration{
		{1, "schema", schemaV1},
		{2, "seed demo users", seedDemo(passwordIterations)},
		{3, "read marks", schemaV3},
		{4, "whispers and callbacks", schemaV4},
		{5, "anonymous visitors", schemaV5},
		{6, "the demo's bot user", seedBotUsers(passwordIterations)},
		{7, "profile properties", schemaV7},
		{8, "public threads, thread data, deleted messages, the Lobby", schemaV8},
		{9, "attachments", schemaV9},
		{10, "edits, reactions, replies, message search", schemaV10},
		{11, "mentions", schemaV11},
		{12, "offline nudges", schemaV12},
	}
}

// ContractPrefix is where Handler serves the ECB contract: ECB's backend URL
// is the server's address followed by it, e.g. http://127.0.0.1:8081/ecb/v1.
const ContractPrefix = "/ecb/v1"

// Handler returns the HTTP handler of the backend: /login, /users, /visitor, GET
// /callbacks, GET /offline, the ECB contract under ContractPrefix and ECB's callbacks at
// ContractPrefix + ecbserver.PathCallbacks.
func (s *Server) Handler() http.Handler { return s.handler }

// Close closes the database. Stop serving Handler first.
func (s *Server) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("refbackend: close database: %w", err)
	}
	return nil
}
