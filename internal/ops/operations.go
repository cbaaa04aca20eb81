package ops

import "slices"

// coreOperations and supportOperations are the names of every operation
// Call runs (a test checks the lists against the Op constants and Call).
var (
	coreOperations = []string{
		OpGetUserToken, OpGetContacts, OpGetThreads, OpCreateThread, OpGetThread, OpSendMessage, OpStopListening,
		OpSetPresence, OpGetPresence, OpTyping, OpMarkRead, OpAddParticipants, OpLeaveThread, OpResume,
		OpSearchUsers, OpAddContact, OpRemoveContact, OpSetProfile, OpDeleteProfileProperty,
		OpJoinThread, OpRemoveParticipant, OpUpdateThread, OpDeleteMessage, OpDeleteThread, OpSetAccess,
		OpGetUploadURL,
		OpEditMessage, OpReact, OpUnreact, OpSearchMessages,
	}
	supportOperations = []string{
		OpGetWorkgroupStatus, OpSupportAsk, OpSupportCancel, OpSupportClose, OpAgentSetAvailability,
		OpOfferAccept, OpOfferReject, OpSupportInvite, OpSupportLeave, OpSupportConversations,
		OpSupportMonitor, OpSupportJoin, OpSupportTransfer,
	}
)

// Operations returns the operations this Service offers, sorted: every
// one, the customer-support ones only when support is enabled.
func (s *Service) Operations() []string {
	out := slices.Clone(coreOperations)
	if s.support != nil {
		out = append(out, supportOperations...)
	}
	slices.Sort(out)
	return out
}
