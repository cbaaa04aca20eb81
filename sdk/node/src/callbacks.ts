// createCallbackHandler: ECB's signed support-event callbacks, checked as the
// Go SDK's NewCallbackHandler checks them (sdk/ecbserver/callbacks.go).
import type { IncomingMessage, ServerResponse } from "node:http";
import { Codes, type CallbackEvent } from "./contract.js";
import { EcbError, invalidArgument } from "./errors.js";
import { type ReceiverOptions, newReceiver, readSigned, writeError } from "./receive.js";
import type { Secret } from "./signature.js";

/** The event types of contract 1.3, and 1.6's message.offline (ignore the ones you do not know: later versions add some). */
export const CallbackTypes = {
  supportRequested: "support.requested",
  offerAccepted: "offer.accepted",
  offerRejected: "offer.rejected",
  offerRevoked: "offer.revoked",
  participantJoined: "participant.joined",
  participantLeft: "participant.left",
  messageCreated: "message.created",
  conversationTransferred: "conversation.transferred",
  conversationClosed: "conversation.closed",
  /** The offline nudge (contract 1.6, any thread): `data` is an `OfflineNudge`. */
  messageOffline: "message.offline",
} as const;

export interface CallbackHandlerOptions extends ReceiverOptions {
  /** The shared secret (ECB's backend.secret). */
  secret: Secret;
}

/**
 * Returns the handler of ECB's callbacks: POST only (405), bodies up to
 * maxBodyBytes (413), a valid signature (401 bad_signature), a JSON event with
 * an id and a type (400 invalid_argument); then it awaits handle and answers
 * 204. An EcbError from handle is answered with its status; anything else
 * with 500, which makes ECB retry the event later. ECB retries until a 2xx,
 * so handle may see an event (same id) twice: store it keyed by its id.
 */
export function createCallbackHandler(
  handle: (event: CallbackEvent, req: IncomingMessage) => unknown | Promise<unknown>,
  options: CallbackHandlerOptions,
): (req: IncomingMessage, res: ServerResponse, next?: unknown) => Promise<void> {
  const r = newReceiver(options.secret, options, "createCallbackHandler");
  return async function ecbCallbacks(req, res) {
    try {
      await receive(req, res);
    } catch (err) {
      // Never a rejected promise (see createHandler).
      r.log.error("@ecb/server: callback handler failed", { err: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) writeError(res, new EcbError(Codes.internal, "internal error"));
      else res.destroy();
    }
  };

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readSigned(r, req, res);
    if (!body) return;
    let ev: CallbackEvent;
    try {
      ev = JSON.parse(body.toString("utf8"));
    } catch (err) {
      writeError(res, invalidArgument(`body is not a callback event: ${(err as Error).message}`));
      return;
    }
    if (!ev || typeof ev !== "object" || Array.isArray(ev)) {
      writeError(res, invalidArgument("body is not a callback event: not a JSON object"));
      return;
    }
    if (typeof ev.id !== "string" || ev.id === "" || typeof ev.type !== "string" || ev.type === "") {
      writeError(res, invalidArgument("a callback event needs an id and a type"));
      return;
    }
    try {
      await handle(ev, req);
    } catch (err) {
      if (err instanceof EcbError) {
        writeError(res, err);
        return;
      }
      r.log.error("@ecb/server: callback handling failed", { event: ev.id, type: ev.type, err: err instanceof Error ? err.message : String(err) });
      writeError(res, new EcbError(Codes.internal, "internal error"));
      return;
    }
    res.writeHead(204).end();
  }
}
