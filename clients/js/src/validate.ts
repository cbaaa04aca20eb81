// Argument checks run before anything is sent: a malformed request is refused
// with invalid_argument at once, without a round trip. They check what the
// protocol fixes (types, required fields, clientMessageId ≤ 128 characters);
// the limits a deployment configures (message size, page size caps) stay with
// the server.
import { EcbError } from "./errors.js";
import type {
  AddParticipantsRequest,
  DeleteMessageRequest,
  EditMessageRequest,
  ReactRequest,
  SearchMessagesRequest,
  DeleteThreadRequest,
  JoinThreadRequest,
  RemoveParticipantRequest,
  SetAccessRequest,
  UpdateThreadRequest,
  CreateThreadRequest,
  GetPresenceRequest,
  LeaveThreadRequest,
  MarkReadRequest,
  ResumeRequest,
  SetPresenceRequest,
  TypingRequest,
  GetThreadRequest,
  GetUserTokenRequest,
  PageRequest,
  RefreshTokenRequest,
  SendMessageRequest,
  GetUploadUrlRequest,
  StopListeningRequest,
  GetWorkgroupStatusRequest,
  SupportAskRequest,
  SupportRequestRef,
  SetAvailabilityRequest,
  OfferRef,
  SupportConversationsRequest,
  SupportTransferRequest,
  SupportInviteRequest,
  SearchUsersRequest,
  ContactRequest,
  SetProfileRequest,
  DeleteProfilePropertyRequest,
} from "./types.js";

function bad(message: string): EcbError {
  return new EcbError("invalid_argument", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function requireObject(v: unknown, what: string): asserts v is Record<string, unknown> {
  if (!isObject(v)) throw bad(`${what} must be an object`);
}

function nonEmptyString(v: unknown, field: string): void {
  if (typeof v !== "string" || v.trim() === "") throw bad(`${field} must be a non-empty string`);
}

function optionalString(v: unknown, field: string): void {
  if (v !== undefined && typeof v !== "string") throw bad(`${field} must be a string`);
}

function optionalPositiveInt(v: unknown, field: string): void {
  if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 1)) {
    throw bad(`${field} must be a positive integer`);
  }
}

function clientMessageId(v: unknown, field: string): void {
  if (v === undefined) return;
  if (typeof v !== "string" || v === "") throw bad(`${field} must be a non-empty string`);
  if ([...v].length > 128) throw bad(`${field} exceeds 128 characters`);
}

function messageData(v: unknown, field: string): void {
  if (v !== undefined && !isObject(v)) throw bad(`${field} must be a JSON object`);
}

export function checkGetUserToken(req: GetUserTokenRequest): void {
  requireObject(req, "getUserToken's argument");
  nonEmptyString(req.accessToken, "accessToken");
}

export function checkRefreshToken(req: RefreshTokenRequest): void {
  requireObject(req, "refreshToken's argument");
  nonEmptyString(req.userToken, "userToken");
}

export function checkPage(req: PageRequest | undefined, op: string): void {
  if (req === undefined) return;
  requireObject(req, `${op}'s argument`);
  optionalPositiveInt(req.page, "page");
  optionalPositiveInt(req.pageSize, "pageSize");
}

export function checkCreateThread(req: CreateThreadRequest): void {
  requireObject(req, "createThread's argument");
  if (!Array.isArray(req.participants) || (req.participants.length === 0 && req.public !== true)) {
    throw bad("participants must be a non-empty array of user ids");
  }
  for (const p of req.participants) nonEmptyString(p, "each participant");
  optionalString(req.subject, "subject");
  if (req.public !== undefined && typeof req.public !== "boolean") throw bad("public must be a boolean");
  requireObject(req.message, "message");
  nonEmptyString(req.message.body, "message.body");
  clientMessageId(req.message.clientMessageId, "message.clientMessageId");
  messageData(req.message.data, "message.data");
}

export function checkGetThread(req: GetThreadRequest): void {
  requireObject(req, "getThread's argument");
  nonEmptyString(req.threadToken, "threadToken");
  if (req.threadId !== undefined) nonEmptyString(req.threadId, "threadId");
  if (req.before !== undefined) nonEmptyString(req.before, "before");
  optionalPositiveInt(req.limit, "limit");
}

export function checkSendMessage(req: SendMessageRequest): void {
  requireObject(req, "sendMessage's argument");
  nonEmptyString(req.threadToken, "threadToken");
  if (req.threadId !== undefined) nonEmptyString(req.threadId, "threadId");
  if (req.attachments !== undefined) {
    if (!Array.isArray(req.attachments) || req.attachments.length > 10) {
      throw bad("attachments must be an array of at most 10 attachment ids");
    }
    for (const a of req.attachments) nonEmptyString(a, "each attachment id");
  }
  if (req.attachments === undefined || req.attachments.length === 0 || req.body !== "") nonEmptyString(req.body, "body");
  clientMessageId(req.clientMessageId, "clientMessageId");
  messageData(req.data, "data");
  if (req.visibility !== undefined && req.visibility !== "agents") throw bad('visibility must be absent or "agents"');
  if (req.replyTo !== undefined) nonEmptyString(req.replyTo, "replyTo");
  if (req.mentions !== undefined) {
    if (!Array.isArray(req.mentions) || req.mentions.length > 20) {
      throw bad("mentions must be an array of at most 20 user ids");
    }
    for (const m of req.mentions) nonEmptyString(m, "each mentioned user id");
  }
}

export function checkEditMessage(req: EditMessageRequest): void {
  requireObject(req, "editMessage's argument");
  threadRef(req);
  nonEmptyString(req.messageId, "messageId");
  nonEmptyString(req.body, "body");
  if (req.data !== undefined && req.data !== null) messageData(req.data, "data");
}

export function checkReact(req: ReactRequest): void {
  requireObject(req, "react's argument");
  threadRef(req);
  nonEmptyString(req.messageId, "messageId");
  nonEmptyString(req.reaction, "reaction");
}

export function checkSearchMessages(req: SearchMessagesRequest): void {
  requireObject(req, "searchMessages's argument");
  nonEmptyString(req.query, "query");
  if (req.threadToken !== undefined) nonEmptyString(req.threadToken, "threadToken");
  if (req.cursor !== undefined && typeof req.cursor !== "string") throw bad("cursor must be a string");
  if (req.limit !== undefined && (!Number.isInteger(req.limit) || req.limit < 0)) throw bad("limit must be a whole number of at least 0");
}

export function checkGetUploadUrl(req: GetUploadUrlRequest): void {
  requireObject(req, "getUploadUrl's argument");
  nonEmptyString(req.threadToken, "threadToken");
  if (req.threadId !== undefined) nonEmptyString(req.threadId, "threadId");
  nonEmptyString(req.name, "name");
  if (typeof req.size !== "number" || !Number.isInteger(req.size) || req.size < 1) throw bad("size must be a positive integer");
  nonEmptyString(req.contentType, "contentType");
}

export function checkStopListening(req: StopListeningRequest): void {
  requireObject(req, "stopListening's argument");
  nonEmptyString(req.threadId, "threadId");
}

const SHOWS = new Set(["available", "away", "dnd", "xa", "chat"]);

export function checkSetPresence(req: SetPresenceRequest): void {
  requireObject(req, "setPresence's argument");
  if (typeof req.show !== "string" || !SHOWS.has(req.show)) {
    throw bad("show must be one of available, away, dnd, xa, chat");
  }
  optionalString(req.status, "status");
}

export function checkGetPresence(req: GetPresenceRequest): void {
  requireObject(req, "getPresence's argument");
  if (!Array.isArray(req.userIds) || req.userIds.length === 0) throw bad("userIds must be a non-empty array of user ids");
  for (const id of req.userIds) nonEmptyString(id, "each userId");
}

function threadRef(req: { threadToken?: unknown; threadId?: unknown }): void {
  nonEmptyString(req.threadToken, "threadToken");
  if (req.threadId !== undefined) nonEmptyString(req.threadId, "threadId");
}

export function checkTyping(req: TypingRequest): void {
  requireObject(req, "typing's argument");
  threadRef(req);
  if (req.state !== "start" && req.state !== "stop") throw bad("state must be start or stop");
}

export function checkMarkRead(req: MarkReadRequest): void {
  requireObject(req, "markRead's argument");
  threadRef(req);
  nonEmptyString(req.messageId, "messageId");
}

export function checkAddParticipants(req: AddParticipantsRequest): void {
  requireObject(req, "addParticipants's argument");
  threadRef(req);
  if (!Array.isArray(req.participants) || req.participants.length === 0) {
    throw bad("participants must be a non-empty array of user ids");
  }
  for (const p of req.participants) nonEmptyString(p, "each participant");
}

export function checkLeaveThread(req: LeaveThreadRequest): void {
  requireObject(req, "leaveThread's argument");
  threadRef(req);
}

export function checkResume(req: ResumeRequest): void {
  requireObject(req, "resume's argument");
  if (!Array.isArray(req.threads) || req.threads.length === 0) throw bad("threads must be a non-empty array");
  for (const t of req.threads) {
    requireObject(t, "each thread");
    nonEmptyString(t.threadToken, "threadToken");
    if (typeof t.epoch !== "string") throw bad("epoch must be a string");
    if (typeof t.offset !== "number" || !Number.isInteger(t.offset) || t.offset < 0) {
      throw bad("offset must be a non-negative integer");
    }
  }
}

// ---- customer support ----

export function checkWorkgroup(req: GetWorkgroupStatusRequest | SupportConversationsRequest, op: string): void {
  requireObject(req, `${op}'s argument`);
  nonEmptyString(req.workgroup, "workgroup");
}

export function checkSupportAsk(req: SupportAskRequest): void {
  requireObject(req, "supportAsk's argument");
  nonEmptyString(req.workgroup, "workgroup");
  // An empty question is the workgroup's call (requiredFields), not the protocol's.
  if (typeof req.question !== "string") throw bad("question must be a string");
  messageData(req.metadata, "metadata");
  optionalString(req.operationId, "operationId");
}

export function checkRequestRef(req: SupportRequestRef, op: string): void {
  requireObject(req, `${op}'s argument`);
  nonEmptyString(req.requestId, "requestId");
}

export function checkSetAvailability(req: SetAvailabilityRequest): void {
  requireObject(req, "setAvailability's argument");
  if (typeof req.available !== "boolean") throw bad("available must be true or false");
  if (req.maxChats !== undefined && (typeof req.maxChats !== "number" || !Number.isInteger(req.maxChats) || req.maxChats < 0)) {
    throw bad("maxChats must be a non-negative integer");
  }
}

export function checkOfferRef(req: OfferRef, op: string): void {
  requireObject(req, `${op}'s argument`);
  nonEmptyString(req.offerId, "offerId");
}

export function checkSupportTransfer(req: SupportTransferRequest): void {
  requireObject(req, "supportTransfer's argument");
  nonEmptyString(req.requestId, "requestId");
  if (req.toAgent !== undefined) nonEmptyString(req.toAgent, "toAgent");
}

export function checkSupportInvite(req: SupportInviteRequest): void {
  requireObject(req, "supportInvite's argument");
  nonEmptyString(req.requestId, "requestId");
  nonEmptyString(req.agent, "agent");
}

const propertyName = /^[A-Za-z0-9._-]{1,64}$/;
const utf8 = new TextEncoder();

export function checkSearchUsers(req: SearchUsersRequest): void {
  requireObject(req, "searchUsers's argument");
  nonEmptyString(req.query, "query");
  if (utf8.encode(req.query.trim()).length > 256) throw bad("query must be at most 256 bytes");
  optionalPositiveInt(req.page, "page");
  optionalPositiveInt(req.pageSize, "pageSize");
}

export function checkContact(req: ContactRequest, op: string): void {
  requireObject(req, `${op}'s argument`);
  nonEmptyString(req.userId, "userId");
}

export function checkSetProfile(req: SetProfileRequest): void {
  requireObject(req, "setProfile's argument");
  requireObject(req.properties, "properties");
  const entries = Object.entries(req.properties);
  if (entries.length === 0 || entries.length > 32) throw bad("properties must name 1 to 32 properties");
  for (const [k, v] of entries) {
    if (!propertyName.test(k)) throw bad("a property name must be 1 to 64 letters, digits, '.', '_' or '-'");
    if (typeof v !== "string") throw bad(`property ${k} must be a string`);
  }
}

export function checkDeleteProfileProperty(req: DeleteProfilePropertyRequest): void {
  requireObject(req, "deleteProfileProperty's argument");
  if (typeof req.name !== "string" || !propertyName.test(req.name)) {
    throw bad("name must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
}
export function checkJoinThread(req: JoinThreadRequest): void {
  requireObject(req, "joinThread's argument");
  nonEmptyString(req.threadId, "threadId");
}

export function checkRemoveParticipant(req: RemoveParticipantRequest): void {
  requireObject(req, "removeParticipant's argument");
  threadRef(req);
  nonEmptyString(req.userId, "userId");
}

export function checkUpdateThread(req: UpdateThreadRequest): void {
  requireObject(req, "updateThread's argument");
  threadRef(req);
  optionalString(req.subject, "subject");
  if (req.subject === undefined && req.data === undefined) throw bad("subject or data is required");
  if (req.data !== undefined && req.data !== null && (typeof req.data !== "object" || Array.isArray(req.data))) {
    throw bad("data must be an object or null");
  }
}

export function checkDeleteMessage(req: DeleteMessageRequest): void {
  requireObject(req, "deleteMessage's argument");
  threadRef(req);
  nonEmptyString(req.messageId, "messageId");
}

export function checkDeleteThread(req: DeleteThreadRequest): void {
  requireObject(req, "deleteThread's argument");
  threadRef(req);
}

export function checkSetAccess(req: SetAccessRequest): void {
  requireObject(req, "setAccess's argument");
  threadRef(req);
  nonEmptyString(req.userId, "userId");
  if (typeof req.acc !== "number" || !Number.isInteger(req.acc) || req.acc < 0 || req.acc > 15) throw bad("acc must be a whole number within 0..15");
  if (req.ttlSeconds !== undefined && (typeof req.ttlSeconds !== "number" || !Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 0)) {
    throw bad("ttlSeconds must be a whole number of seconds, 0 or more");
  }
}
