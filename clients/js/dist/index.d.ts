export { EcbClient, newClientMessageId } from "./client.js";
export type { ConnectionEvent, ConnectionState, EcbClientEvents, EcbClientOptions, EcbEventName, ErrorEvent, MessageEvent, } from "./client.js";
export { EcbError, isEcbError, PROTOCOL_ERROR_CODES, CLIENT_ERROR_CODES } from "./errors.js";
export type { ClientErrorCode, EcbErrorCode, ErrorBody, ProtocolErrorCode } from "./errors.js";
export type * from "./types.js";
/** The version of ECB's client protocol this library speaks. */
export declare const PROTOCOL_VERSION = 1;
