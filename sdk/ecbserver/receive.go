package ecbserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// signedReceiver is what NewHandler and NewCallbackHandler share: they take
// a POST whose body is signed by the other side with the shared secret.
type signedReceiver struct {
	secret  []byte
	maxBody int64
	window  time.Duration
	log     *slog.Logger
	now     func() time.Time // time.Now; a field so tests can move the clock
}

// newSignedReceiver fills in the defaults; who names the constructor in the
// error logged for an empty secret.
func newSignedReceiver(secret []byte, maxBody int64, window time.Duration, log *slog.Logger, who string) signedReceiver {
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if log == nil {
		log = slog.Default()
	}
	if len(secret) == 0 {
		// Not a panic: a misconfigured backend should still start and answer
		// (with 401), but the operator must see why every call fails.
		log.Error("ecbserver: " + who + " has an empty secret; every call will be refused")
	}
	return signedReceiver{secret: secret, maxBody: maxBody, window: window, log: log, now: time.Now}
}

// readSigned checks the method (POST, else 405), reads the body (at most
// maxBody, else 413) and verifies its signature (else 401 bad_signature)
// before anything parses it. On a refusal it writes the answer, logs a bad
// signature with attrs, and returns false.
func (s signedReceiver) readSigned(w http.ResponseWriter, r *http.Request, attrs ...slog.Attr) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeInvalidArgument,
			Message: "method " + r.Method + " not allowed; use POST"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, &Error{Code: CodePayloadTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", s.maxBody)})
			return nil, false
		}
		// The client went away or sent a broken chunked body: nothing useful
		// can be answered, but answer something for the logs of proxies.
		writeError(w, InvalidArgument("cannot read request body"))
		return nil, false
	}
	if err := VerifyRequest(s.secret, r, body, s.now(), s.window); err != nil {
		attrs = append(attrs, slog.String("remote", r.RemoteAddr), slog.Any("err", err))
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "ecbserver: refused signature", attrs...)
		writeError(w, &Error{Code: CodeBadSignature, Message: signatureMessage(err)})
		return nil, false
	}
	return body, true
}
