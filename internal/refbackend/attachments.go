package refbackend

// Attachments (optional call getUploadUrl, contract 1.5): the files
// themselves live on disk under Config.FilesDir, one file per attachment
// named by its id; their metadata in the attachments table (migration 9).
//
// getUploadUrl reserves an id bound to the user, the thread, the name, the
// size and the media type, and answers a signed upload URL on this server,
// PUT {PublicURL}/files/{id}?exp=...&sig=..., valid Config.UploadTTL. The
// upload must carry exactly the reserved size and type; after its expiry, or
// once the file is there, the URL is refused. addThreadMessage attaches
// only the caller's own uploaded attachments of the same thread, each once.
// A message's attachments carry a download URL, GET
// {PublicURL}/files/{id}?exp=...&sig=..., signed afresh in every answer and
// valid Config.DownloadTTL. The signatures are HMAC-SHA256 of method, id and
// expiry with a key derived from Config.Secret.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Defaults of the attachment settings of Config.
const (
	DefaultUploadTTL      = 10 * time.Minute
	DefaultDownloadTTL    = time.Hour
	DefaultMaxUploadBytes = 10 << 20
)

var schemaV9 = execAll(
	`CREATE TABLE attachments (
		id           TEXT PRIMARY KEY,
		thread_id    TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
		uploader_id  TEXT NOT NULL,
		name         TEXT NOT NULL,
		size         INTEGER NOT NULL,
		content_type TEXT NOT NULL,
		created_at   INTEGER NOT NULL,
		uploaded     INTEGER NOT NULL DEFAULT 0,
		message_id   TEXT,
		position     INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX attachments_message ON attachments(message_id)`,
)

var attachmentIDPattern = regexp.MustCompile(`^att_[0-9a-f]{32}$`)

// filesKey is the HMAC key of the file URLs.
func filesKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("refbackend file URLs"))
	return m.Sum(nil)
}

func (s *Server) fileSig(method, id string, exp int64) string {
	m := hmac.New(sha256.New, s.filesKey)
	fmt.Fprintf(m, "%s\n%s\n%d", method, id, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// fileURL is the signed URL of method on attachment id, valid until exp.
func (s *Server) fileURL(method, id string, exp time.Time) string {
	e := exp.Unix()
	return s.publicURL + "/files/" + id + "?exp=" + strconv.FormatInt(e, 10) + "&sig=" + s.fileSig(method, id, e)
}

// checkFileURL verifies the signature and the expiry of a file request.
func (s *Server) checkFileURL(r *http.Request, method, id string) *ecbserver.Error {
	exp, err := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	if err != nil {
		return ecbserver.Forbidden("the file URL is not signed")
	}
	want := s.fileSig(method, id, exp)
	if !hmac.Equal([]byte(want), []byte(r.URL.Query().Get("sig"))) {
		return ecbserver.Forbidden("the file URL's signature is wrong")
	}
	if s.now().Unix() >= exp {
		return ecbserver.Forbidden("the file URL has expired")
	}
	return nil
}

func (b *ecbBackend) GetUploadURL(ctx context.Context, req *ecbserver.GetUploadURLRequest) (*ecbserver.GetUploadURLResponse, error) {
	s := b.s
	if s.publicURL == "" {
		return nil, ecbserver.NotImplemented("this backend has no public URL for files")
	}
	if req.Size > s.maxUpload {
		return nil, ecbserver.InvalidArgument(fmt.Sprintf("files are at most %d bytes here", s.maxUpload))
	}
	if _, err := b.loadThread(ctx, s.db, req.ThreadID); err != nil {
		return nil, err
	}
	acc, member, err := accessOf(ctx, s.db, req.ThreadID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !member || acc&ecbserver.AccessWrite == 0 {
		return nil, ecbserver.Forbidden("you may not write in this thread")
	}
	id := "att_" + randomHex(16)
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO attachments (id, thread_id, uploader_id, name, size, content_type, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, id, req.ThreadID, req.UserID, req.Name, req.Size, req.ContentType, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("get upload URL: %w", err)
	}
	exp := now.Add(s.uploadTTL).Truncate(time.Second)
	return &ecbserver.GetUploadURLResponse{AttachmentID: id, UploadURL: s.fileURL(http.MethodPut, id, exp), Method: http.MethodPut,
		Headers: map[string]string{"Content-Type": req.ContentType}, ExpiresAt: exp}, nil
}

// attachTo attaches the attachments ids of userID to message msgID of
// threadID, in order, inside tx.
func attachTo(ctx context.Context, tx *sql.Tx, threadID, userID, msgID string, ids []string) error {
	for i, id := range ids {
		var (
			thread, uploader string
			uploaded         bool
			message          sql.NullString
		)
		err := tx.QueryRowContext(ctx, `SELECT thread_id, uploader_id, uploaded, message_id FROM attachments WHERE id = ?`, id).
			Scan(&thread, &uploader, &uploaded, &message)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ecbserver.InvalidArgument("no attachment " + strconv.Quote(id))
		case err != nil:
			return fmt.Errorf("attachment %s: %w", id, err)
		case thread != threadID:
			return ecbserver.InvalidArgument("attachment " + strconv.Quote(id) + " belongs to another thread")
		case uploader != userID:
			return ecbserver.InvalidArgument("attachment " + strconv.Quote(id) + " was uploaded by another user")
		case !uploaded:
			return ecbserver.InvalidArgument("attachment " + strconv.Quote(id) + " has not been uploaded")
		case message.Valid:
			return ecbserver.InvalidArgument("attachment " + strconv.Quote(id) + " is already attached")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE attachments SET message_id = ?, position = ? WHERE id = ?`, msgID, i, id); err != nil {
			return fmt.Errorf("attach %s: %w", id, err)
		}
	}
	return nil
}

// withAttachments fills in the attachments of msgs, with fresh download URLs.
func (s *Server) withAttachments(ctx context.Context, q querier, msgs []ecbserver.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(msgs))
	args := make([]any, 0, len(msgs))
	for i, m := range msgs {
		if m.Deleted {
			continue
		}
		idx[m.ID] = i
		args = append(args, m.ID)
	}
	if len(args) == 0 {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id, message_id, name, size, content_type FROM attachments WHERE message_id IN (?`+
		strings.Repeat(",?", len(args)-1)+`) ORDER BY message_id, position`, args...)
	if err != nil {
		return fmt.Errorf("attachments: %w", err)
	}
	defer rows.Close()
	exp := s.now().Add(s.downloadTTL).Truncate(time.Second)
	for rows.Next() {
		var a ecbserver.Attachment
		var msgID string
		if err := rows.Scan(&a.ID, &msgID, &a.Name, &a.Size, &a.ContentType); err != nil {
			return fmt.Errorf("attachments: %w", err)
		}
		a.URL = s.fileURL(http.MethodGet, a.ID, exp)
		i := idx[msgID]
		msgs[i].Attachments = append(msgs[i].Attachments, a)
	}
	return rows.Err()
}

// handleFile serves PUT (the upload) and GET (the download) of
// /files/{id}, each with its own signed URL.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !attachmentIDPattern.MatchString(id) {
		writeError(w, ecbserver.NotFound("no such file"))
		return
	}
	if e := s.checkFileURL(r, r.Method, id); e != nil {
		writeError(w, e)
		return
	}
	var (
		size        int64
		contentType string
		uploaded    bool
		name        string
	)
	err := s.db.QueryRowContext(r.Context(), `SELECT size, content_type, uploaded, name FROM attachments WHERE id = ?`, id).
		Scan(&size, &contentType, &uploaded, &name)
	if errors.Is(err, sql.ErrNoRows) {
		writeError(w, ecbserver.NotFound("no such file"))
		return
	}
	if err != nil {
		s.log.Error("file", "id", id, "err", err)
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "internal error"})
		return
	}
	path := filepath.Join(s.filesDir, id)
	if r.Method == http.MethodGet {
		if !uploaded {
			writeError(w, ecbserver.NotFound("no such file"))
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		// A file is never a page of this origin: no scripts, whatever it holds.
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
		h.Set("Cache-Control", "private, max-age=3600")
		disp := "attachment"
		if strings.HasPrefix(contentType, "image/") {
			disp = "inline"
		}
		h.Set("Content-Disposition", disp+"; filename*=UTF-8''"+url.PathEscape(name))
		http.ServeFile(w, r, path)
		return
	}
	if uploaded {
		writeError(w, ecbserver.Conflict("the file was already uploaded"))
		return
	}
	if r.Header.Get("Content-Type") != contentType {
		writeError(w, ecbserver.InvalidArgument("Content-Type must be "+contentType+", as asked"))
		return
	}
	if r.ContentLength >= 0 && r.ContentLength != size {
		writeError(w, ecbserver.InvalidArgument(fmt.Sprintf("the file must be %d bytes, as asked", size)))
		return
	}
	if err := s.storeFile(r, id, path, size); err != nil {
		var e *ecbserver.Error
		if errors.As(err, &e) {
			writeError(w, e)
			return
		}
		s.log.Error("upload", "id", id, "err", err)
		writeError(w, &ecbserver.Error{Code: ecbserver.CodeInternal, Message: "the upload failed, try again"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// storeFile writes the upload's body (exactly size bytes) to path through a
// temporary file and marks the attachment uploaded.
func (s *Server) storeFile(r *http.Request, id, path string, size int64) error {
	tmp, err := os.CreateTemp(s.filesDir, id+".*.part")
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	n, err := io.Copy(tmp, io.LimitReader(r.Body, size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	if n != size {
		return ecbserver.InvalidArgument(fmt.Sprintf("the file must be %d bytes, as asked", size))
	}
	res, err := s.db.ExecContext(r.Context(), `UPDATE attachments SET uploaded = 1 WHERE id = ? AND uploaded = 0`, id)
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return ecbserver.Conflict("the file was already uploaded")
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (it panics instead) since Go 1.24
	return hex.EncodeToString(b)
}
