package ecbserver

import (
	"context"
	"net/http"
	"net/url"
)

// MemberAdded is the answer of [ServerAPIClient.AddMember].
type MemberAdded struct {
	ThreadID string `json:"threadId"`
	UserID   string `json:"userId"`
	Told     int    `json:"told"` // the user's connections told, on the node that answered
}

// MemberRemoved is the answer of [ServerAPIClient.RemoveMember].
type MemberRemoved struct {
	ThreadID string `json:"threadId"`
	UserID   string `json:"userId"`
	Detached int    `json:"detached"` // the user's connections detached, on the node that answered
}

// ThreadAnnounced is the answer of [ServerAPIClient.AnnounceThread].
type ThreadAnnounced struct {
	ThreadID string   `json:"threadId"`
	Told     []string `json:"told"`    // online members, pushed the thread with their threadToken
	Offline  []string `json:"offline"` // members without a connection
	Refused  []string `json:"refused"` // online members your getThread refused
}

// ConversationClosed is the answer of [ServerAPIClient.CloseConversation].
type ConversationClosed struct {
	RequestID string `json:"requestId"`
	State     string `json:"state"` // closed (it had its chat) or cancelled (it was waiting)
}

// ConversationAgentAdded is the answer of [ServerAPIClient.AddConversationAgent].
type ConversationAgentAdded struct {
	RequestID string `json:"requestId"`
	Agent     string `json:"agent"`
}

// AddMember makes live that you added userID to threadID in your store: the
// thread's listeners get member joined, and the user's connections a thread
// push {change: "added"} with a threadToken signed for them. threadToken,
// when not empty, is that token (sign it with [TokenSigner.SignThreadToken]);
// when empty, ECB asks your getThread as the user for it ("conflict" when it
// refuses them).
func (c *ServerAPIClient) AddMember(ctx context.Context, threadID, userID, threadToken string) (*MemberAdded, error) {
	body := map[string]string{}
	if threadToken != "" {
		body["threadToken"] = threadToken
	}
	return serverCall[MemberAdded](ctx, c, http.MethodPost, memberPath(threadID, userID), body)
}

// RemoveMember makes live that you removed userID from threadID: every
// connection of the user stops listening at once and is told (thread
// {change: "removed"}); the other listeners get member removed. Refuse the
// user's getThread and addThreadMessage from then on: their threadToken
// still verifies.
func (c *ServerAPIClient) RemoveMember(ctx context.Context, threadID, userID string) (*MemberRemoved, error) {
	return serverCall[MemberRemoved](ctx, c, http.MethodDelete, memberPath(threadID, userID), nil)
}

func memberPath(threadID, userID string) string {
	return "/threads/" + url.PathEscape(threadID) + "/members/" + url.PathEscape(userID)
}

// AnnounceThread tells the online ones of members about threadID, a thread
// you created on your own: each gets thread {change: "created", thread,
// threadToken}, the threadToken from your getThread as them.
func (c *ServerAPIClient) AnnounceThread(ctx context.Context, threadID string, members []string) (*ThreadAnnounced, error) {
	body := struct {
		Members []string `json:"members"`
	}{members}
	return serverCall[ThreadAnnounced](ctx, c, http.MethodPost, "/threads/"+url.PathEscape(threadID)+"/announce", body)
}

// CloseConversation ends the live support request requestID: a chat is
// closed (agents freed, visitor and agents told, conversation.closed sent),
// a waiting request cancelled.
func (c *ServerAPIClient) CloseConversation(ctx context.Context, requestID string) (*ConversationClosed, error) {
	return serverCall[ConversationClosed](ctx, c, http.MethodPost, "/support/conversations/"+url.PathEscape(requestID)+"/close", struct{}{})
}

// AddConversationAgent adds agent to the live chat requestID, as
// support.invite does: they join the support thread and get an invitation.
func (c *ServerAPIClient) AddConversationAgent(ctx context.Context, requestID, agent string) (*ConversationAgentAdded, error) {
	body := struct {
		Agent string `json:"agent"`
	}{agent}
	return serverCall[ConversationAgentAdded](ctx, c, http.MethodPost, "/support/conversations/"+url.PathEscape(requestID)+"/agents", body)
}
