package ops

// Mentions (issue 16 item 5, protocol 1.5, contract 1.6): sendMessage may
// name users it mentions. ECB checks the list (at most
// ecbserver.MaxMentions ids of 1 to ecbserver.MaxMentionIDBytes bytes,
// repeats collapsed) before the backend is asked, forwards it, and the
// backend keeps the members among them (it drops the others, it does not
// refuse the message). Every kept user but the author gets a mention push
// on all their connections on every node, whether they listen to the
// thread or not; for a whisper only their agents' connections. A mention
// push belongs to no thread's history: a user who missed it sees the
// thread's mentioned flag in getThreads.

import (
	"encoding/json"
	"slices"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// MentionPush is the payload of a mention push.
type MentionPush struct {
	ThreadID string            `json:"threadId"`
	Message  ecbserver.Message `json:"message"`
}

// checkMentions validates sendMessage's mentions and returns them with
// repeats collapsed, in the author's order.
func checkMentions(ids []string) ([]string, error) {
	if len(ids) > ecbserver.MaxMentions {
		return nil, apierr.New(apierr.InvalidArgument, "a message mentions at most %d users", ecbserver.MaxMentions)
	}
	var out []string
	for _, id := range ids {
		if id == "" || len(id) > ecbserver.MaxMentionIDBytes {
			return nil, apierr.New(apierr.InvalidArgument, "a mentioned user id must be 1 to %d bytes", ecbserver.MaxMentionIDBytes)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// pushMentions sends a mention push of m, as stored and published, to every
// user the backend kept in m.Mentions but its author.
func (s *Service) pushMentions(threadID string, m ecbserver.Message) {
	if len(m.Mentions) == 0 {
		return
	}
	data, err := json.Marshal(MentionPush{ThreadID: threadID, Message: m})
	if err != nil {
		s.log.Warn("mention push not encoded", "thread", threadID, "err", err)
		return
	}
	users := slices.DeleteFunc(slices.Clone(m.Mentions), func(u string) bool { return u == m.AuthorID })
	s.pushToUsers(users, &hub.Push{Event: EventMention, Data: data, AgentsOnly: m.Visibility != ""}, nil)
}
