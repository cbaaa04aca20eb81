package ops

// The offline nudge (issue 16 item 6, contract 1.6): every message this
// node stores (sendMessage, createThread's first message; not the Server
// API's system messages, which the backend publishes itself) is noted in
// a callbacks.Batcher, one batch per thread and audience per window. When
// a window ends, flushOffline finds the thread's members, keeps those with
// no live connection on any node (presence across the nodes: a connection
// that is read; an SSE stream kept only for its resume does not count),
// and posts one message.offline event with them and the users the batch's
// messages mentioned. The node that stored a message is the one that
// notes it: a retried sendMessage that the backend answered with the
// message it stored already publishes nothing (hub.Push.Repeated) and
// notes nothing, whichever node it reaches.
//
// The members are the ones the backend last returned to any node
// (presence.Service.Members: getThread, getThreads, createThread, the
// moderation and Server API member calls); when no node has seen them
// since it started, the backend's getThread is asked once, as the batch's
// first author. A whisper batch only goes to the agents' side of the live
// support chat of the thread (its agent, the thread's owner, the invited
// agents and the supervisors who joined, as s.supportChats holds the
// request: noted again at each join and leave, conference.go): ECB knows
// no other user's roles while they are offline, so a whisper in any other
// thread nudges nobody.

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// offlineShards is how many Poster queues the nudges share: the events of
// one thread stay in one queue, in order, and the queues bound what waits
// for a slow backend (offlineShards × the Poster's QueueSize).
const offlineShards = 8

// EnableOfflineNudge makes the messages this node stores nudge their
// thread's offline members (message.offline), batched as cfg says. It needs
// the Poster (SetCallbacks) first and does nothing without one. ctx is the
// hard stop of the batches' flushes; call ShutdownOffline before the
// Poster's Shutdown. Call it before the Service serves requests.
func (s *Service) EnableOfflineNudge(ctx context.Context, cfg callbacks.BatcherConfig) {
	if s.cbs == nil {
		return
	}
	s.offline = callbacks.NewBatcher(ctx, cfg, s.flushOffline)
}

// ShutdownOffline posts the open batches at once and waits for them (see
// callbacks.Batcher.Shutdown); the Poster then delivers them.
func (s *Service) ShutdownOffline(ctx context.Context) error {
	return s.offline.Shutdown(ctx)
}

// noteOffline notes a message stored in threadID for the offline nudge.
func (s *Service) noteOffline(threadID string, m ecbserver.Message) {
	if s.offline == nil || m.ID == "" {
		return
	}
	s.offline.Add(callbacks.OfflineNote{ThreadID: threadID, MessageID: m.ID, AuthorID: m.AuthorID,
		Mentions: m.Mentions, Whisper: m.Visibility != ""})
}

// offlineEventID is a batch's event id: from its last message, the same
// on every retry.
func offlineEventID(b callbacks.OfflineBatch) string { return "ev_off_" + b.LastMessageID() }

// offlineKey is the Poster queue of threadID's nudges.
func offlineKey(threadID string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(threadID))
	return "offline/" + strconv.Itoa(int(h.Sum32()%offlineShards))
}

// flushOffline turns a batch into a message.offline event (none when
// nobody is to be nudged). It runs on the Batcher's goroutine, with no lock
// held; the lookups are bounded by the window (at least a second).
func (s *Service) flushOffline(ctx context.Context, b callbacks.OfflineBatch) {
	ctx, cancel := context.WithTimeout(ctx, max(s.offline.Window(), time.Second))
	defer cancel()
	members, err := s.threadMembers(ctx, b)
	if err != nil {
		s.log.Warn("message.offline: the thread's members are unknown; batch dropped", "thread", b.ThreadID, "err", err)
		s.cbs.Failed(callbacks.TypeMessageOffline, "members_unknown")
		return
	}
	mentioned := b.Mentioned
	keep := func(string) bool { return true }
	if b.Whisper {
		agents := s.agentSide(ctx, b.ThreadID)
		keep = func(u string) bool { return slices.Contains(agents, u) }
		mentioned = slices.DeleteFunc(slices.Clone(mentioned), func(u string) bool { return !keep(u) })
	}
	author := b.SoleAuthor()
	candidates := make([]string, 0, len(members))
	for _, m := range members {
		if m != author && keep(m) && !slices.Contains(candidates, m) {
			candidates = append(candidates, m)
		}
	}
	userIDs := []string{}
	if len(candidates) > 0 {
		ps, err := s.live.presence.Get(ctx, candidates)
		if err != nil {
			s.log.Warn("message.offline: presence across the nodes cannot be read; batch dropped", "thread", b.ThreadID, "err", err)
			s.cbs.Failed(callbacks.TypeMessageOffline, "presence_unavailable")
			return
		}
		for _, p := range ps {
			if p.Show == presence.Offline {
				userIDs = append(userIDs, p.UserID)
			}
		}
		slices.Sort(userIDs)
	}
	if len(userIDs) == 0 && len(mentioned) == 0 {
		return // everyone is online: nothing to nudge
	}
	nudge := ecbserver.OfflineNudge{ThreadID: b.ThreadID, MessageID: b.LastMessageID(), MessageIDs: b.MessageIDs,
		Count: b.Count, UserIDs: userIDs, Mentioned: mentioned}
	if b.Whisper {
		nudge.Visibility = ecbserver.VisibilityAgents
	}
	data, err := json.Marshal(nudge)
	if err != nil {
		return
	}
	s.cbs.Post(offlineKey(b.ThreadID), callbacks.Event{ID: offlineEventID(b), Type: callbacks.TypeMessageOffline,
		ThreadID: b.ThreadID, Data: data})
}

// threadMembers returns the members of b's thread as some node noted them,
// else as the backend's getThread answers the batch's first author.
func (s *Service) threadMembers(ctx context.Context, b callbacks.OfflineBatch) ([]string, error) {
	if m := s.live.presence.Members(b.ThreadID); len(m) > 0 {
		return m, nil
	}
	if len(b.Authors) == 0 {
		return nil, nil
	}
	resp, err := s.backend.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: b.Authors[0], ThreadID: b.ThreadID, Limit: 1})
	if err != nil {
		return nil, err
	}
	s.noteThreads(resp.Thread)
	return resp.Thread.Members, nil
}

// agentSide returns the agents and supervisors of threadID's live support
// chat (none when it is not one).
func (s *Service) agentSide(ctx context.Context, threadID string) []string {
	if s.supportCluster != nil {
		s.supportCluster.awaitChats(ctx)
	}
	v, ok := s.supportChats.Load(threadID)
	if !ok {
		return nil
	}
	r := v.(support.Request)
	out := append([]string{r.AgentID, r.ThreadOwner}, r.Conference...)
	return slices.DeleteFunc(append(out, r.Supervisors...), func(u string) bool { return u == "" })
}
