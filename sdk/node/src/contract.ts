// The contract's names: paths, headers, codes, access bits, and the request
// and response types, which are aliases of the types generated from
// api/backend.yaml (src/generated/backend.ts), so they cannot drift from it.
import type { components } from "./generated/backend.js";

/** info.version of api/backend.yaml: the backend contract this package implements. */
export const CONTRACT_FULL_VERSION = "1.6.0";
/** The major version ECB sends in ECB-Contract-Version. */
export const CONTRACT_VERSION = "1";

/** The operation paths, relative to the base URL configured in ECB (backend.url). */
export const Paths = {
  authenticate: "/authenticate",
  getContacts: "/getContacts",
  getThreads: "/getThreads",
  createThread: "/createThread",
  getThread: "/getThread",
  addThreadMessage: "/addThreadMessage",
  // Optional calls: contract 1.1 (markRead, addParticipants, leaveThread) and 1.2 (createSupportThread).
  markRead: "/markRead",
  addParticipants: "/addParticipants",
  leaveThread: "/leaveThread",
  createSupportThread: "/createSupportThread",
  // Optional calls of contract 1.4: people.
  searchUsers: "/searchUsers",
  addContact: "/addContact",
  removeContact: "/removeContact",
  setProfile: "/setProfile",
  deleteProfileProperty: "/deleteProfileProperty",
  // Contract 1.4: public threads and moderation.
  joinThread: "/joinThread",
  getPublicThreads: "/getPublicThreads",
  removeParticipant: "/removeParticipant",
  updateThread: "/updateThread",
  deleteMessage: "/deleteMessage",
  deleteThread: "/deleteThread",
  // Contract 1.5: attachments.
  getUploadUrl: "/getUploadUrl",
} as const;

/** Where the reference backend serves ECB's callbacks (any URL works). */
export const PATH_CALLBACKS = "/callbacks";

/** Headers ECB sets on every call (the same names as the Go SDK's Header* constants). */
export const Headers = {
  timestamp: "ECB-Timestamp",
  signature: "ECB-Signature",
  requestId: "ECB-Request-Id",
  contractVersion: "ECB-Contract-Version",
  idempotencyKey: "Idempotency-Key",
} as const;

/** Error codes a backend answers with (the closed list of api/backend.yaml). */
export const Codes = {
  invalidArgument: "invalid_argument",
  unauthenticated: "unauthenticated",
  forbidden: "forbidden",
  notFound: "not_found",
  conflict: "conflict",
  internal: "internal",
  badSignature: "bad_signature",
  payloadTooLarge: "payload_too_large",
  notImplemented: "not_implemented",
} as const;
export type ErrorCode = components["schemas"]["ErrorResponse"]["error"]["code"];

/** Access bits of a threadToken's acc claim. */
export const Access = { none: 0, read: 1, write: 2, admin: 4, owner: 8 } as const;

/** The visibility of a whisper (contract 1.3). */
export const VISIBILITY_AGENTS = "agents";

type S = components["schemas"];
export type User = S["User"];
export type Thread = S["Thread"];
export type Message = S["Message"];
export type SignedThread = S["SignedThread"];
export type NewMessage = S["NewMessage"];
export type ErrorResponse = S["ErrorResponse"];
export type AuthenticateRequest = S["AuthenticateRequest"];
export type AuthenticateResponse = S["AuthenticateResponse"];
export type GetContactsRequest = S["GetContactsRequest"];
export type GetContactsResponse = S["GetContactsResponse"];
export type GetThreadsRequest = S["GetThreadsRequest"];
export type GetThreadsResponse = S["GetThreadsResponse"];
export type CreateThreadRequest = S["CreateThreadRequest"];
export type CreateThreadResponse = S["CreateThreadResponse"];
export type GetThreadRequest = S["GetThreadRequest"];
export type GetThreadResponse = S["GetThreadResponse"];
export type AddThreadMessageRequest = S["AddThreadMessageRequest"];
export type AddThreadMessageResponse = S["AddThreadMessageResponse"];
export type MarkReadRequest = S["MarkReadRequest"];
export type MarkReadResponse = S["MarkReadResponse"];
export type AddParticipantsRequest = S["AddParticipantsRequest"];
export type AddParticipantsResponse = S["AddParticipantsResponse"];
export type LeaveThreadRequest = S["LeaveThreadRequest"];
export type LeaveThreadResponse = S["LeaveThreadResponse"];
export type CreateSupportThreadRequest = S["CreateSupportThreadRequest"];
export type CreateSupportThreadResponse = S["CreateSupportThreadResponse"];
export type JoinThreadRequest = S["JoinThreadRequest"];
export type JoinThreadResponse = S["JoinThreadResponse"];
export type GetPublicThreadsRequest = S["GetPublicThreadsRequest"];
export type GetPublicThreadsResponse = S["GetPublicThreadsResponse"];
export type RemoveParticipantRequest = S["RemoveParticipantRequest"];
export type RemoveParticipantResponse = S["RemoveParticipantResponse"];
export type UpdateThreadRequest = S["UpdateThreadRequest"];
export type UpdateThreadResponse = S["UpdateThreadResponse"];
export type DeleteMessageRequest = S["DeleteMessageRequest"];
export type DeleteMessageResponse = S["DeleteMessageResponse"];
export type DeleteThreadRequest = S["DeleteThreadRequest"];
export type DeleteThreadResponse = S["DeleteThreadResponse"];
export type GetUploadUrlRequest = S["GetUploadUrlRequest"];
export type GetUploadUrlResponse = S["GetUploadUrlResponse"];
export type Attachment = S["Attachment"];
export type CallbackEvent = S["CallbackEvent"];
export type Properties = S["Properties"];
export type SearchUsersRequest = S["SearchUsersRequest"];
export type SearchUsersResponse = S["SearchUsersResponse"];
export type ContactRequest = S["ContactRequest"];
export type ContactResponse = S["ContactResponse"];
export type SetProfileRequest = S["SetProfileRequest"];
export type DeleteProfilePropertyRequest = S["DeleteProfilePropertyRequest"];
export type ProfileResponse = S["ProfileResponse"];

export type { components, paths, operations, webhooks } from "./generated/backend.js";
