//go:build !linux

package socketio

import (
	"errors"
	"syscall"
)

// Elsewhere than on Linux there is no readiness poller: every WebSocket
// has a reader goroutine blocked in Read (Config.BlockingReader's path).

const pollerSupported = false

type poller struct{}

func newPoller() (*poller, error) {
	return nil, errors.New("socketio: no readiness poller on this system")
}

func (p *poller) arm(*EngineConn, syscall.RawConn) bool { return false }
func (p *poller) disarm(*EngineConn) bool               { return false }
func (p *poller) stop()                                 {}
func (p *poller) run(e *Engine)                         { e.track.done() }
