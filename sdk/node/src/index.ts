// @ecb/server: the Node.js/TypeScript backend SDK of ECB (backend contract
// 1.6.0), the counterpart of the Go SDK sdk/ecbserver: request signatures
// with the replay window, token signing, the contract's typed handler and
// the callbacks receiver. The request and response types are generated from
// api/backend.yaml (src/generated/backend.ts).
export * from "./contract.js";
export * from "./errors.js";
export * from "./signature.js";
export * from "./tokens.js";
export { createHandler } from "./handler.js";
export type { Backend, RequiredBackend, OptionalBackend, CallContext, HandlerOptions, EcbRequestHandler } from "./handler.js";
export { createCallbackHandler, CallbackTypes } from "./callbacks.js";
export type { CallbackHandlerOptions } from "./callbacks.js";
export { DEFAULT_MAX_BODY_BYTES, consoleLogger, verifyRequest, signatureMiddleware } from "./receive.js";
export type { Logger, ReceiverOptions } from "./receive.js";
export { ServerApiClient, ServerApiError } from "./serverapi.js";
export type { ServerApiClientOptions, ServerApiData, ServerApiBody } from "./serverapi.js";
