package socketio

import (
	"encoding/json"
	"errors"
)

// Errors returned by the sending methods of Socket and EngineConn.
var (
	// ErrClosed: the socket or connection is closed (or closing).
	ErrClosed = errors.New("socketio: connection closed")
	// ErrSlowConsumer: the per-connection write queue is full; the connection
	// has been closed.
	ErrSlowConsumer = errors.New("socketio: slow consumer")
	// ErrReservedEvent: the event name is one the client library reserves
	// ("connect", "connect_error", "disconnect", "disconnecting",
	// "newListener", "removeListener").
	ErrReservedEvent = errors.New("socketio: reserved event name")
	// ErrBinaryEncoded: EncodeEvent was given Binary arguments; pre-encoded
	// packets are text only (use Socket.Emit for binary).
	ErrBinaryEncoded = errors.New("socketio: binary arguments cannot be pre-encoded")
	// ErrAckTwice: an Ack was called a second time.
	ErrAckTwice = errors.New("socketio: ack already sent")
	// ErrServerClosed: the server is shut down.
	ErrServerClosed = errors.New("socketio: server closed")
)

// ConnectError is the error a namespace middleware returns to refuse a
// connection with a message and optional data. The client receives a
// CONNECT_ERROR packet {"message": Message, "data": Data} and its
// socket.io-client emits connect_error with an Error whose message is Message
// and whose data is Data. Any other error refuses with {"message": err.Error()}.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// connectErrorPayload builds the CONNECT_ERROR JSON for err.
func connectErrorPayload(err error) []byte {
	var ce *ConnectError
	if errors.As(err, &ce) {
		type withData struct {
			Message string `json:"message"`
			Data    any    `json:"data,omitempty"`
		}
		b, merr := json.Marshal(withData{Message: ce.Message, Data: ce.Data})
		if merr == nil {
			return b
		}
		err = errors.New(ce.Message)
	}
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{err.Error()})
	return b
}

// Engine.IO error codes, as the reference server sends them in its JSON error
// bodies {"code":N,"message":"..."}.
const (
	eioErrUnknownTransport = 0
	eioErrUnknownSID       = 1
	eioErrBadHandshake     = 2
	eioErrBadRequest       = 3
	eioErrForbidden        = 4
	eioErrUnsupportedProto = 5
)

var eioErrMessages = [...]string{
	eioErrUnknownTransport: "Transport unknown",
	eioErrUnknownSID:       "Session ID unknown",
	eioErrBadHandshake:     "Bad handshake method",
	eioErrBadRequest:       "Bad request",
	eioErrForbidden:        "Forbidden",
	eioErrUnsupportedProto: "Unsupported protocol version",
}

// Close reasons, passed to EngineHandler.OnClose and Socket.OnDisconnect.
const (
	ReasonTransportClose   = "transport close"             // the client closed the connection, or it went away
	ReasonTransportError   = "transport error"             // an I/O error, a write timeout, an overlapping poll, an oversized message
	ReasonPingTimeout      = "ping timeout"                // no pong within PingTimeout
	ReasonParseError       = "parse error"                 // the client sent a malformed or out-of-place packet
	ReasonForcedClose      = "forced close"                // the server closed the Engine.IO connection (EngineConn.Close)
	ReasonServerShutdown   = "server shutting down"        // Shutdown
	ReasonSlowConsumer     = "slow consumer"               // the write queue passed WriteQueueBytes
	ReasonServerDisconnect = "server namespace disconnect" // Socket.Disconnect
	ReasonClientDisconnect = "client namespace disconnect" // the client sent DISCONNECT
	ReasonConnectTimeout   = "forced server close"         // no namespace joined within ConnectTimeout
)
