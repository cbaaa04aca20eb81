package ops

import (
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/support"
)

// EnableSupportOn is EnableSupport with the routing engine on clk, so that
// the tests move offer timeouts and grace periods themselves.
func (s *Service) EnableSupportOn(wgs []support.Workgroup, grace time.Duration, clk support.Clock) error {
	return s.enableSupport(wgs, support.Options{Grace: grace, Clock: clk})
}

// PushToUsers is pushToUsers, which the operations call with the lists the
// backend answered.
func (s *Service) PushToUsers(userIDs []string, p *hub.Push, skip hub.Conn) {
	s.pushToUsers(userIDs, p, skip)
}
