package ecbserver

import "errors"

// Mentions (contract 1.6): AddThreadMessageRequest.Mentions names users the
// author mentions; the backend keeps the members among them and answers the
// kept list in Message.Mentions; Thread.Mentioned tells a user that a
// message after their read mark mentions them.

// Limits that ECB enforces on mentions before it calls the backend.
const (
	MaxMentions       = 20  // mentions of one message, at most
	MaxMentionIDBytes = 128 // a mentioned user id
)

func validateMentionIDs(ids []string) error {
	if len(ids) > MaxMentions {
		return errors.New("too many mentions")
	}
	for _, id := range ids {
		if id == "" || len(id) > MaxMentionIDBytes {
			return errors.New("a mentioned user id must be 1 to 128 bytes")
		}
	}
	return nil
}
