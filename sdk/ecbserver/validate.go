package ecbserver

import "errors"

// The structural checks of the requests: what api/backend.yaml marks required.
// Policy (may this user write here, is the body too long) stays in the backend.

func (r *AuthenticateRequest) validate() error {
	if r.AccessToken == "" {
		return errors.New("accessToken is required")
	}
	return nil
}

func (r *GetContactsRequest) validate() error { return requireUser(r.UserID) }

func (r *GetThreadsRequest) validate() error { return requireUser(r.UserID) }

func (r *CreateThreadRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if len(r.Participants) == 0 && !r.Public {
		return errors.New("participants must name at least one user")
	}
	for _, p := range r.Participants {
		if p == "" {
			return errors.New("participants must not contain an empty id")
		}
	}
	if r.Message.Body == "" {
		return errors.New("message.body is required")
	}
	return nil
}

func (r *GetThreadRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.ThreadID == "" {
		return errors.New("threadId is required")
	}
	if r.Limit < 0 {
		return errors.New("limit must not be negative")
	}
	return nil
}

func (r *AddThreadMessageRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.ThreadID == "" {
		return errors.New("threadId is required")
	}
	if r.Body == "" && len(r.Attachments) == 0 {
		return errors.New("body is required")
	}
	if err := validateMentionIDs(r.Mentions); err != nil {
		return err
	}
	return validateAttachmentIDs(r.Attachments)
}

func (r *MarkReadRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.ThreadID == "" {
		return errors.New("threadId is required")
	}
	if r.MessageID == "" {
		return errors.New("messageId is required")
	}
	return nil
}

func (r *AddParticipantsRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.ThreadID == "" {
		return errors.New("threadId is required")
	}
	if len(r.Participants) == 0 {
		return errors.New("participants must name at least one user")
	}
	for _, p := range r.Participants {
		if p == "" {
			return errors.New("participants must not contain an empty id")
		}
	}
	return nil
}

func (r *LeaveThreadRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.ThreadID == "" {
		return errors.New("threadId is required")
	}
	return nil
}

func requireUser(id string) error {
	if id == "" {
		return errors.New("userId is required")
	}
	return nil
}

// normalize makes nil slices encode as [] instead of null: a Go backend that
// returns "no contacts" as a nil slice still answers what the contract says.

func (r *GetContactsResponse) normalize() {
	if r.Contacts == nil {
		r.Contacts = []User{}
	}
}

func (r *GetThreadsResponse) normalize() {
	if r.Threads == nil {
		r.Threads = []SignedThread{}
	}
	for i := range r.Threads {
		r.Threads[i].Thread.normalize()
	}
}

func (r *CreateThreadResponse) normalize() { r.Thread.normalize() }

func (r *GetThreadResponse) normalize() {
	r.Thread.normalize()
	if r.Messages == nil {
		r.Messages = []Message{}
	}
}

func (r *AddParticipantsResponse) normalize() {
	r.Thread.normalize()
	if r.Added == nil {
		r.Added = []string{}
	}
}

func (r *LeaveThreadResponse) normalize() { r.Thread.normalize() }

func (t *Thread) normalize() {
	if t.Members == nil {
		t.Members = []string{}
	}
}
