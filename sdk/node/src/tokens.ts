// TokenSigner: the userTokens, threadTokens and anonymous tokens ECB verifies
// (docs/tokens.md), signed with jose, claim for claim as the Go SDK's
// ecbserver.TokenSigner signs them: header {alg, typ: "JWT", kid?}; payload
// iss?, sub, aud [audience], exp, iat, jti, then the contract's claims, each
// once, in its exact name, dates as integer seconds.
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { SignJWT, type JWTPayload } from "jose";
import { Access } from "./contract.js";

export const DEFAULT_USER_TTL_SECONDS = 3600;
export const DEFAULT_THREAD_TTL_SECONDS = 3600;
/** Short: an anonymous visitor has no account to revoke; the token is the only limit. */
export const DEFAULT_ANON_TTL_SECONDS = 15 * 60;
const MIN_RSA_BITS = 2048;

export type Algorithm = "RS256" | "ES256" | "EdDSA";

/** A key TokenSigner cannot use: not RSA ≥ 2048 bits, EC P-256 or Ed25519 (Go: ErrUnsupportedKey). */
export class UnsupportedKeyError extends Error {
  constructor(message: string) {
    super(`@ecb/server: unsupported signing key: ${message}`);
    this.name = "UnsupportedKeyError";
  }
}

/**
 * Parses a PEM private key: PKCS #8 ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE
 * KEY") or SEC 1 ("EC PRIVATE KEY"), as openssl and `ecb keys generate`
 * write them. Encrypted keys are refused.
 */
export function parsePrivateKeyPEM(pem: string | Buffer): KeyObject {
  const text = pem.toString();
  if (text.includes("ENCRYPTED PRIVATE KEY") || /Proc-Type:\s*4,ENCRYPTED/.test(text)) {
    throw new Error("@ecb/server: encrypted private keys are not supported; decrypt it with openssl pkey first");
  }
  const m = text.match(/-----BEGIN (PRIVATE KEY|RSA PRIVATE KEY|EC PRIVATE KEY)-----[\s\S]+?-----END \1-----/);
  if (!m) throw new Error("@ecb/server: no private key PEM block found");
  try {
    return createPrivateKey({ key: m[0], format: "pem" });
  } catch (err) {
    throw new Error(`@ecb/server: parse ${m[1]}: ${(err as Error).message}`);
  }
}

/** Reads parsePrivateKeyPEM's input from a file (the private.pem of `ecb keys generate`). */
export function loadPrivateKeyPEM(path: string): KeyObject {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new Error(`@ecb/server: read private key: ${(err as Error).message}`);
  }
  try {
    return parsePrivateKeyPEM(data);
  } catch (err) {
    throw new Error(`${(err as Error).message} (file ${path})`);
  }
}

function algorithmFor(key: KeyObject): Algorithm {
  if (key.type !== "private") throw new UnsupportedKeyError(`a ${key.type} key; a private key is needed`);
  switch (key.asymmetricKeyType) {
    case "rsa": {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new UnsupportedKeyError(`RSA key of ${bits} bits, want at least ${MIN_RSA_BITS}`);
      return "RS256";
    }
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve !== "prime256v1") throw new UnsupportedKeyError(`ECDSA curve ${curve}, want P-256 (ES256)`);
      return "ES256";
    }
    case "ed25519":
      return "EdDSA";
    default:
      throw new UnsupportedKeyError(String(key.asymmetricKeyType));
  }
}

export interface SignerOptions {
  /** The aud claim; required: the audience ECB is configured with (auth.audience). */
  audience: string;
  /** The iss claim; absent leaves it out. */
  issuer?: string;
  /** The kid header (JWKS key rotation); absent leaves it out. */
  keyId?: string;
  /** Lifetime of a userToken; default 3600. */
  userTtlSeconds?: number;
  /** Lifetime of a threadToken; default 3600. */
  threadTtlSeconds?: number;
  /** The clock (tests fix it); default () => new Date(). */
  now?: () => Date;
}

export interface UserTokenParams {
  /** sub; required. */
  id: string;
  /** name, the display name; required. */
  name: string;
  /** roles: "agent", "supervisor", "bot". */
  roles?: string[];
  /** The support workgroups of an agent or supervisor. */
  workgroups?: string[];
}

export interface ThreadTokenParams {
  /** sub; required. */
  threadId: string;
  /** uid, the user the token is for; required. */
  userId: string;
  /** acc: a sum of the Access bits, 0..15; 0 means no access. */
  access: number;
  /** members: the thread's member ids, optional. */
  members?: string[];
}

export interface AnonParams {
  /** sub; absent means a random "anon-..." id. */
  id?: string;
  /** name; absent means "Visitor". */
  name?: string;
  /** The Origin values ECB accepts the token from (scheme://host[:port]); at least one. */
  origins: string[];
  /** Lifetime; default DEFAULT_ANON_TTL_SECONDS. */
  ttlSeconds?: number;
}

// What a browser sends in Origin: scheme://host[:port], nothing else (Go's checkOrigin).
const ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@\s]+$/;
function checkOrigin(o: string): void {
  let ok = typeof o === "string" && ORIGIN.test(o);
  if (ok) {
    try {
      new URL(o);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new Error(`@ecb/server: signAnonymousToken: origin ${JSON.stringify(o)} is not of the form scheme://host[:port]`);
}

const nonNegative = (v: number | undefined) => v === undefined || (Number.isFinite(v) && v >= 0);
const nonEmpty = (l: string[] | undefined) => (l && l.length > 0 ? l : undefined);

/**
 * Signs the tokens ECB verifies. The algorithm follows from the key: RS256
 * for RSA (≥ 2048 bits), ES256 for EC P-256, EdDSA for Ed25519.
 */
export class TokenSigner {
  readonly algorithm: Algorithm;
  readonly #key: KeyObject;
  readonly #opts: Required<Pick<SignerOptions, "audience" | "userTtlSeconds" | "threadTtlSeconds" | "now">> & SignerOptions;

  /** key: a private KeyObject, or PEM text (see parsePrivateKeyPEM). */
  constructor(key: KeyObject | string | Buffer, opts: SignerOptions) {
    const k = typeof key === "string" || Buffer.isBuffer(key) ? parsePrivateKeyPEM(key) : key;
    if (!k || typeof k !== "object") throw new UnsupportedKeyError("no key");
    this.algorithm = algorithmFor(k);
    if (!opts?.audience) throw new Error("@ecb/server: SignerOptions.audience is required; use the audience ECB is configured with");
    if (!nonNegative(opts.userTtlSeconds) || !nonNegative(opts.threadTtlSeconds)) {
      throw new Error("@ecb/server: SignerOptions TTLs must not be negative");
    }
    this.#key = k;
    this.#opts = {
      ...opts,
      userTtlSeconds: opts.userTtlSeconds || DEFAULT_USER_TTL_SECONDS,
      threadTtlSeconds: opts.threadTtlSeconds || DEFAULT_THREAD_TTL_SECONDS,
      now: opts.now ?? (() => new Date()),
    };
  }

  /** The public half of the key: what ECB is given (auth.publicKeyFile). */
  get publicKey(): KeyObject {
    return createPublicKey(this.#key);
  }

  /** The public key as PEM (SPKI), for auth.publicKeyFile. */
  publicKeyPEM(): string {
    return this.publicKey.export({ type: "spki", format: "pem" }).toString();
  }

  /** A userToken (typ "user") for u, valid userTtlSeconds. */
  async signUserToken(u: UserTokenParams): Promise<string> {
    if (!u?.id || !u?.name) throw new Error("@ecb/server: signUserToken: id and name are required");
    return this.#sign(u.id, this.#opts.userTtlSeconds, {
      typ: "user",
      name: u.name,
      roles: nonEmpty(u.roles),
      workgroups: nonEmpty(u.workgroups),
    });
  }

  /** A threadToken (typ "thread") for p, valid threadTtlSeconds. */
  async signThreadToken(p: ThreadTokenParams): Promise<string> {
    if (!p?.threadId || !p?.userId) throw new Error("@ecb/server: signThreadToken: threadId and userId are required");
    const all = Access.read | Access.write | Access.admin | Access.owner;
    if (!Number.isInteger(p.access) || p.access < 0 || p.access > all) {
      throw new Error(`@ecb/server: signThreadToken: access ${p.access} is not a sum of the Access bits`);
    }
    return this.#sign(p.threadId, this.#opts.threadTtlSeconds, {
      typ: "thread",
      uid: p.userId,
      acc: p.access,
      members: nonEmpty(p.members),
    });
  }

  /**
   * A userToken for an anonymous website visitor: anon true, origins where ECB
   * accepts it from. ECB lets such a user use the support operations only.
   */
  async signAnonymousToken(p: AnonParams): Promise<string> {
    if (!p?.origins || p.origins.length === 0) throw new Error("@ecb/server: signAnonymousToken: at least one origin is required");
    for (const o of p.origins) checkOrigin(o);
    if (!nonNegative(p.ttlSeconds)) throw new Error("@ecb/server: signAnonymousToken: ttlSeconds must not be negative");
    const id = p.id || "anon-" + randomBytes(12).toString("hex");
    return this.#sign(id, p.ttlSeconds || DEFAULT_ANON_TTL_SECONDS, {
      typ: "user",
      name: p.name || "Visitor",
      anon: true,
      origins: p.origins,
    });
  }

  async #sign(sub: string, ttl: number, claims: Record<string, unknown>): Promise<string> {
    const now = Math.floor(this.#opts.now().getTime() / 1000);
    // A unique jti tells two tokens of the same user apart.
    const payload: Record<string, unknown> = {};
    if (this.#opts.issuer) payload.iss = this.#opts.issuer;
    Object.assign(payload, { sub, aud: [this.#opts.audience], exp: now + Math.ceil(ttl), iat: now, jti: randomBytes(16).toString("hex") });
    for (const [k, v] of Object.entries(claims)) if (v !== undefined) payload[k] = v;
    const header: { alg: Algorithm; typ: string; kid?: string } = { alg: this.algorithm, typ: "JWT" };
    if (this.#opts.keyId) header.kid = this.#opts.keyId;
    try {
      return await new SignJWT(payload as JWTPayload).setProtectedHeader(header).sign(this.#key);
    } catch (err) {
      throw new Error(`@ecb/server: sign ${this.algorithm} token: ${(err as Error).message}`);
    }
  }
}
