// The structural checks of the requests, as the Go SDK makes them (its JSON
// decoding into typed structs, then sdk/ecbserver/validate.go): the body is a
// JSON object (or null), the known fields have their types (null counts as
// absent, unknown fields are allowed: a newer ECB may send more), and the
// required fields are present. Policy stays in the backend. Each returns a
// problem message, answered 400 invalid_argument, or undefined.

type Kind = "string" | "strings" | "int" | "bool" | "any" | { [field: string]: Kind };
type Spec = { [field: string]: Kind };

function typeProblem(value: unknown, kind: Kind, where: string): string | undefined {
  if (value === null || value === undefined || kind === "any") return undefined;
  if (kind === "string") return typeof value === "string" ? undefined : `${where} must be a string`;
  if (kind === "bool") return typeof value === "boolean" ? undefined : `${where} must be a boolean`;
  if (kind === "int") return Number.isInteger(value) ? undefined : `${where} must be an integer`;
  if (kind === "strings") {
    if (!Array.isArray(value)) return `${where} must be an array of strings`;
    return value.every((v) => typeof v === "string" || v === null) ? undefined : `${where} must be an array of strings`;
  }
  if (typeof value !== "object" || Array.isArray(value)) return `${where} must be an object`;
  return fieldsProblem(value as Record<string, unknown>, kind, where + ".");
}

function fieldsProblem(obj: Record<string, unknown>, spec: Spec, prefix: string): string | undefined {
  for (const [field, kind] of Object.entries(spec)) {
    const p = typeProblem(obj[field], kind, prefix + field);
    if (p) return p;
  }
  return undefined;
}

function check(spec: Spec, rules: (b: Record<string, any>) => string | undefined): (body: unknown) => string | undefined {
  return (body) => {
    if (body !== null && (typeof body !== "object" || Array.isArray(body))) return "malformed JSON body: not a JSON object";
    const b = (body ?? {}) as Record<string, any>;
    const p = fieldsProblem(b, spec, "");
    return p ? `malformed JSON body: ${p}` : rules(b);
  };
}

const has = (v: unknown) => typeof v === "string" && v !== "";
const requireUser = (b: Record<string, any>) => (has(b.userId) ? undefined : "userId is required");
const requireUserThread = (b: Record<string, any>) => requireUser(b) ?? (has(b.threadId) ? undefined : "threadId is required");
const participantsProblem = (list: unknown) => {
  if (!Array.isArray(list) || list.length === 0) return "participants must name at least one user";
  if (list.some((p) => !has(p))) return "participants must not contain an empty id";
  return undefined;
};

const propertyName = /^[A-Za-z0-9._-]{1,64}$/;
function contactProblem(b: Record<string, any>): string | undefined {
  const u = requireUser(b);
  if (u) return u;
  if (!has(b.contactId)) return "contactId is required";
  if (b.contactId === b.userId) return "contactId must not be userId";
  return undefined;
}

export const validators = {
  authenticate: check({ accessToken: "string" }, (b) => (has(b.accessToken) ? undefined : "accessToken is required")),
  getContacts: check({ userId: "string" }, requireUser),
  getThreads: check({ userId: "string" }, requireUser),
  createThread: check(
    { userId: "string", participants: "strings", subject: "string", message: { body: "string", clientMessageId: "string", data: "any" }, public: "bool" },
    (b) =>
      requireUser(b) ??
      (b.public === true && (b.participants == null || (Array.isArray(b.participants) && b.participants.length === 0)) ? undefined : participantsProblem(b.participants)) ??
      (has(b.message?.body) ? undefined : "message.body is required"),
  ),
  getThread: check({ userId: "string", threadId: "string", before: "string", limit: "int" }, (b) => {
    const u = requireUser(b);
    if (u) return u;
    if (!has(b.threadId)) return "threadId is required";
    if (typeof b.limit === "number" && b.limit < 0) return "limit must not be negative";
    return undefined;
  }),
  addThreadMessage: check(
    {
      userId: "string",
      threadId: "string",
      body: "string",
      clientMessageId: "string",
      data: "any",
      visibility: "string",
      attachments: "strings",
      mentions: "strings",
    },
    (b) =>
      requireUser(b) ??
      (has(b.threadId) ? undefined : "threadId is required") ??
      (has(b.body) || (Array.isArray(b.attachments) && b.attachments.length > 0) ? undefined : "body is required") ??
      (b.attachments == null || (b.attachments.length <= 10 && b.attachments.every((a: string) => a.length >= 1 && a.length <= 128))
        ? undefined
        : "at most 10 attachment ids of 1 to 128 bytes") ??
      // Contract 1.6: mentions, as ECB checks them.
      (b.mentions == null || (b.mentions.length <= 20 && b.mentions.every((m: string) => m.length >= 1 && m.length <= 128))
        ? undefined
        : "at most 20 mentioned user ids of 1 to 128 bytes"),
  ),
  markRead: check(
    { userId: "string", threadId: "string", messageId: "string" },
    (b) => requireUser(b) ?? (has(b.threadId) ? undefined : "threadId is required") ?? (has(b.messageId) ? undefined : "messageId is required"),
  ),
  addParticipants: check(
    { userId: "string", threadId: "string", participants: "strings" },
    (b) => requireUser(b) ?? (has(b.threadId) ? undefined : "threadId is required") ?? participantsProblem(b.participants),
  ),
  leaveThread: check({ userId: "string", threadId: "string" }, (b) => requireUser(b) ?? (has(b.threadId) ? undefined : "threadId is required")),
  createSupportThread: check(
    {
      requestId: "string", workgroup: "string", visitorId: "string", visitorName: "string", anonymous: "bool",
      agentId: "string", question: "string", metadata: "any", operationId: "string",
    },
    (b) => {
      if (!has(b.requestId)) return "requestId is required";
      if (!has(b.workgroup)) return "workgroup is required";
      if (!has(b.visitorId)) return "visitorId is required";
      if (!has(b.agentId)) return "agentId is required";
      if (b.visitorId === b.agentId) return "visitorId and agentId must differ";
      return undefined;
    },
  ),
  searchUsers: check({ userId: "string", query: "string" }, (b) => {
    const u = requireUser(b);
    if (u) return u;
    if (!has(b.query)) return "query is required";
    if (Buffer.byteLength(b.query) > 256) return "query is too long";
    return undefined;
  }),
  addContact: check({ userId: "string", contactId: "string" }, contactProblem),
  removeContact: check({ userId: "string", contactId: "string" }, contactProblem),
  setProfile: check({ userId: "string", properties: "any" }, (b) => {
    const u = requireUser(b);
    if (u) return u;
    const props = b.properties;
    if (props === null || typeof props !== "object" || Array.isArray(props)) return "properties must name at least one property";
    const entries = Object.entries(props);
    if (entries.length === 0) return "properties must name at least one property";
    if (entries.length > 32) return "too many properties";
    for (const [k, v] of entries) {
      if (typeof v !== "string") return "malformed JSON body: properties." + k + " must be a string";
      if (!propertyName.test(k)) return "a property name must be 1 to 64 letters, digits, '.', '_' or '-'";
      if (Buffer.byteLength(v) > 1024) return "a property value exceeds 1024 bytes";
    }
    return undefined;
  }),
  deleteProfileProperty: check({ userId: "string", name: "string" }, (b) =>
    requireUser(b) ?? (typeof b.name === "string" && propertyName.test(b.name) ? undefined : "name must be 1 to 64 letters, digits, '.', '_' or '-'"),
  ),
  // Contract 1.4.
  joinThread: check({ userId: "string", threadId: "string" }, requireUserThread),
  getPublicThreads: check({ userId: "string" }, requireUser),
  removeParticipant: check(
    { userId: "string", threadId: "string", participantId: "string" },
    (b) => requireUserThread(b) ?? (has(b.participantId) ? undefined : "participantId is required"),
  ),
  updateThread: check({ userId: "string", threadId: "string", subject: "string", data: "any" }, (b) => {
    const p = requireUserThread(b);
    if (p) return p;
    if (b.subject == null && b.data === undefined) return "subject or data is required";
    if (b.data != null && (typeof b.data !== "object" || Array.isArray(b.data))) return "data must be a JSON object or null";
    return undefined;
  }),
  deleteMessage: check(
    { userId: "string", threadId: "string", messageId: "string" },
    (b) => requireUserThread(b) ?? (has(b.messageId) ? undefined : "messageId is required"),
  ),
  deleteThread: check({ userId: "string", threadId: "string" }, requireUserThread),
  // Contract 1.5.
  getUploadUrl: check(
    { userId: "string", threadId: "string", name: "string", size: "int", contentType: "string" },
    (b) =>
      requireUserThread(b) ??
      (has(b.name) && Buffer.byteLength(b.name) <= 255 ? undefined : "name must be 1 to 255 bytes") ??
      (Number.isInteger(b.size) && b.size >= 1 ? undefined : "size must be at least 1") ??
      (has(b.contentType) ? undefined : "contentType is required"),
  ),
} satisfies Record<string, (body: unknown) => string | undefined>;
