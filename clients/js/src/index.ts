// @ecb/client: the typed client of ECB, the Enterprise Chat Bridge (client protocol 1).
export { EcbClient, newClientMessageId } from "./client.js";
export type {
  ConnectionEvent,
  ConnectionState,
  EcbClientEvents,
  EcbClientOptions,
  EcbEventName,
  ErrorEvent,
  MemberEvent,
  MessageDeletedEvent,
  MessageEditedEvent,
  ReactionEvent,
  MessageEvent,
  ReadEvent,
} from "./client.js";
export { EcbError, isEcbError, PROTOCOL_ERROR_CODES, CLIENT_ERROR_CODES } from "./errors.js";
export type { ClientErrorCode, EcbErrorCode, ErrorBody, ProtocolErrorCode } from "./errors.js";
export type * from "./types.js";
/** The version of ECB's client protocol this library speaks. */
export const PROTOCOL_VERSION = "1.5";
