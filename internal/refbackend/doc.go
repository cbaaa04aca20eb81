// Package refbackend is the reference backend: a small company backend, the
// system of record of users, contacts, threads and messages, that ECB talks to.
// It powers `ecb demo` and the end-to-end tests, and it shows an integrator
// what a backend has to do.
//
// It is written the way an integrator would write it: it uses only the public
// SDK (sdk/ecbserver) and its own code, never ECB's internals.
//
// # Storage
//
// One SQLite file (github.com/ncruces/go-sqlite3: SQLite translated from
// WebAssembly to Go, no cgo, FTS5 registered on every connection; chosen for
// its build time, docs/decisions.md "SQLite driver") in WAL mode with a busy
// timeout, so concurrent readers never block and writers wait for each other
// instead of failing. Write transactions start with BEGIN IMMEDIATE, so two
// writers never deadlock upgrading a read lock. The schema is created by
// numbered migrations recorded in schema_migrations and applied by Open; the
// demo users are seeded by a migration too, so they are created on first start
// only and a restart never duplicates them. The driver sits behind build tags
// (driver_*.go): sqlite_modernc and sqlite_mattn compile in the other
// candidates, sqlite_none none at all, for bench/sqlite only.
//
// # HTTP surface (Server.Handler)
//
//	POST /login      {"username","password"} → {"accessToken","expiresAt"}
//	                 Step 0 of the seed, outside ECB: the web app's own login.
//	                 The access token is opaque and random, stored hashed in
//	                 the sessions table, valid Config.AccessTokenTTL (12h).
//	                 A wrong password is 401 with the error body.
//	GET  /users      {"users":[{"id","name","roles"?}]}: the public user list
//	                 for the demo's login screen.
//	POST /ecb/v1/... The ECB contract (api/backend.yaml) through the SDK's
//	                 handler: every call is signature-checked with
//	                 Config.Secret.
//
// /login and /users answer CORS requests from Config.AllowedOrigins (exact
// match), because the demo web app is served by ECB on another port.
//
// # Data and rules
//
// Seeded users (password = user name): alice, bob and carol are each other's
// contacts; agent1 and agent2 have role agent in workgroup support; super has
// role supervisor in support; helpbot has role bot (migration 6), a user an
// agent may add to a support thread.
//
// A thread member has an access code (read 1, write 2, admin 4, owner 8):
// members get 3, the creator 3|8. getThread needs the read bit,
// addThreadMessage the write bit; a non-member gets 403, an unknown thread
// 404. createThread needs known participants; a user without a staff role
// (agent, supervisor) may only start threads with their contacts.
//
// It implements the optional calls of contract 1.1 too (ecbserver.ReadMarker
// and ecbserver.ParticipantManager):
//
//   - markRead: each member has a read mark, the sequence number of the last
//     message they read (migration 3). It only moves forward; writing a
//     message moves the author's mark to it. It needs the read bit (403), a
//     known thread and a message of that thread (404). getThreads gives each
//     thread the caller's unread count: messages after the mark written by
//     someone else.
//   - addParticipants: the caller needs the admin or owner bit (403); the
//     new members must be known users (400) and, for a caller without a
//     staff role, their contacts (403), as for createThread. Members are
//     skipped, a banned user (access 0) is refused (403), a thread has at
//     most 101 members (409). New members get access 3 and a read mark at
//     the thread's last message: the history is there, but not unread.
//   - leaveThread: any member may leave (the owner too); the membership row
//     goes, with the access code and the read mark. A banned user may not
//     "leave", which would lift the ban (403).
//
// And the people calls of contract 1.4 (ecbserver.UserSearcher,
// ecbserver.ContactManager, ecbserver.ProfileEditor):
//
//   - searchUsers: registered users (never anonymous visitors) whose id or
//     name contains the query, case-insensitively (LIKE wildcards are plain
//     characters), those starting with it first, at most 200, the caller
//     left out.
//   - addContact, removeContact: any registered user may add any other; a
//     contact is mutual (two contacts rows); both are idempotent; an unknown
//     user or a visitor is 404.
//   - setProfile, deleteProfileProperty: name/value properties per user
//     (migration 7), at most 32 per user (400); getContacts, searchUsers and
//     the contact answers carry them.
//
// Messages have a global integer sequence that orders them. getThread pages
// backwards from an opaque cursor (limit 50 by default, at most 200), each page
// oldest first. A clientMessageId (or the Idempotency-Key header) makes
// addThreadMessage and createThread idempotent per author: a retry returns what
// was stored the first time; the same key with a different body is 409.
//
// # Concurrency
//
// A Server is safe for concurrent use; it starts no goroutine. Close closes
// the database; call it after the HTTP server that uses Handler has stopped.
package refbackend
