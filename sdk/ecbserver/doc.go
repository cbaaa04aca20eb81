// Package ecbserver is the Go SDK for a backend that ECB (the Enterprise Chat
// Bridge) talks to.
//
// Your backend stays the system of record for users, threads and messages. ECB
// sits between it and the browser clients: it forwards every client operation to
// your backend over a small signed REST contract and pushes what happened to
// every connected client. This package gives you the three things you need to
// take part in that contract:
//
//   - The contract itself: the request and response types of the six calls
//     (authenticate, getContacts, getThreads, createThread, getThread,
//     addThreadMessage), of the optional ones (markRead, addParticipants and
//     leaveThread of contract 1.1, createSupportThread of 1.2, searchUsers,
//     addContact, removeContact, setProfile and deleteProfileProperty of 1.4,
//     getUploadUrl of 1.5; the mentions of 1.6 are fields of addThreadMessage,
//     of its message and of a thread)
//     and of the support callbacks (1.3), their paths, headers and error codes
//     ([ContractFullVersion] is the version this package implements). The normative description is the OpenAPI 3.1 file
//     api/backend.yaml in the ECB repository; docs/backend-contract.md
//     explains it with examples.
//
//   - The server side: implement [Backend] (one method per call), hand it to
//     [NewHandler] and mount the handler under the base URL you configure in
//     ECB. The handler checks each call's HMAC signature ([VerifyRequest])
//     before it reads the JSON, decodes and checks the request, calls your
//     method, and writes the response or the error. Return an [*Error] (built
//     with [NotFound], [Forbidden], [InvalidArgument], [Unauthenticated] or
//     [Conflict]) to answer a client error; any other error becomes a 500
//     "internal" answer whose details are logged, never sent. To serve the
//     optional calls, implement [ReadMarker], [ParticipantManager],
//     [SupportThreadCreator], [UserSearcher], [ContactManager],
//     [ProfileEditor], [PublicThreads], [Moderator], [Uploader], [MessageEditor],
//     [Reactor] or [MessageSearcher] as well; the
//     handler answers 501 not_implemented
//     for those you leave out. [NewCallbackHandler] receives the support
//     events ECB posts to callbacks.url.
//
//   - The tokens: ECB is sessionless. Every client request carries a JWT your
//     backend signed: a userToken (who the user is) and, for thread operations,
//     a threadToken (which thread, and the access bits the user has in it).
//     [TokenSigner] signs them with your private key (RS256, ES256 or EdDSA,
//     chosen from the key type); ECB verifies them with the public key only.
//     [LoadPrivateKeyPEM] reads the key.
//
// A minimal backend:
//
//	key, err := ecbserver.LoadPrivateKeyPEM("keys/private.pem") // from `ecb keys generate`
//	...
//	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: "ecb"})
//	...
//	h := ecbserver.NewHandler(secret, &myBackend{signer: signer}, ecbserver.HandlerOptions{})
//	http.Handle("/ecb/v1/", http.StripPrefix("/ecb/v1", h))
//
// # Signatures
//
// ECB signs every call with a secret it shares with your backend: the header
// ECB-Timestamp holds the unix time in seconds and ECB-Signature holds
// "v1=" followed by the lowercase hex HMAC-SHA256 of timestamp + "." + body.
// [Sign] computes it and [VerifyRequest] checks it in constant time, refusing a
// timestamp more than a few minutes away from the local clock, so a captured
// call cannot be replayed later.
//
// # Concurrency
//
// Every function and type in this package is safe for concurrent use. The
// handler calls your [Backend] methods concurrently, one goroutine per HTTP
// request, with the request's context: honour its cancellation, as ECB gives up
// on a slow backend after its configured timeout.
//
// # Idempotency
//
// A createThread or addThreadMessage can arrive twice when an answer was lost
// on the way: a client repeats its sendMessage, or ECB repeats a call. When
// the client gave a clientMessageId, ECB sends it in the Idempotency-Key
// header as well ([IdempotencyKey] reads it from the context): a backend must
// answer a repeated key with the message it stored the first time instead of
// storing a second one.
//
// # Acting on ECB: the Server API
//
// [ServerAPIClient] calls ECB's Server API (/server/v1, described by
// api/server.yaml) with one of the API keys configured in ECB
// (serverApi.keys): override a user's access to a thread, for a time or
// until removed ([ServerAPIClient.SetAccess]; a temporary ban is
// AccessNone with a TTL), publish a system message, announce that a thread
// was updated, closed or deleted, disconnect a user and revoke their older
// tokens, read connection counts, and list, create, change or remove the
// customer-support workgroups and their opening hours
// ([ServerAPIClient.PutWorkgroup]). ECB keeps these decisions in the memory
// of the node that got the call; docs/server-api.md explains what that means.
//
// This package imports nothing from ECB's internals; it is the one
// implementation of the signature scheme, used by ECB itself too.
package ecbserver
