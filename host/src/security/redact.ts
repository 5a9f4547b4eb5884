import type { HostLogger } from '../log/logger.js';

// Secrets never leave the process through the admin port, logs or error
// messages. This file holds the two tools for that:
//   * redactConfig: a copy of a config safe to show (GET /config on the admin port);
//   * SecretScrubber: masks known secret values (collected from the config) and
//     credential-shaped text (Bearer/Basic credentials, JWTs, cookies) in any
//     string, used on every log record the host writes.

const SECRET_KEY = /(secret|token|passw(or)?d|passphrase|api[-_]?keys?|credential|private[-_]?key|hmac|authorization|cookie|session|signing[-_]?key|^keys?$|bearer)/i;
export const REDACTED = '[redacted]';
/**
 * Under a secret-looking key (e.g. `api_keys`), fields with these names describe a
 * secret rather than hold it (a key's name, tenant, allowed paths): they stay readable
 * in logs. Everything else under such a key is treated as secret.
 */
const DESCRIPTIVE_KEY = /^(name|tenant|principal|description|paths?|methods?|routes?|hosts?|header|prefix|query|sources|forward|enabled|type|alg|kid|kty|use|crv|issuer|audiences?|claims?)$/i;

/**
 * JWK members that hold key material (RFC 7518 §6.2.2 EC and OKP `d`, §6.3.2 RSA `d` `p` `q`
 * `dp` `dq` `qi` `oth`, §6.4.1 symmetric `k`): secret whatever key the JWK sits under.
 */
const JWK_PRIVATE = new Set(['k', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth']);

/** A JSON Web Key (RFC 7517 §4: `kty` is required). */
function isJwk(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>).kty === 'string';
}

/** A JWK with its private and symmetric members replaced; the public ones (kty, kid, n, e, x, y, …) stay. */
function redactJwk(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(jwk)) out[k] = JWK_PRIVATE.has(k) && v !== undefined && v !== null ? REDACTED : v;
  return out;
}

/**
 * The object or array a string holds as JSON text (a `pluginConfig` or `local_jwks` given as a
 * string), else undefined: such text is redacted as the structure it encodes.
 */
function parseJsonText(s: string): object | undefined {
  const c = s.trimStart()[0];
  if (c !== '{' && c !== '[') return undefined;
  try {
    const v: unknown = JSON.parse(s);
    return v !== null && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A deep copy of `value` with secret-looking fields, JWK key material, environment values and URL credentials replaced. */
export function redactConfig(value: unknown, key = '', underSecret = false): unknown {
  if (isJwk(value)) return redactJwk(value);
  if (key !== '' && SECRET_KEY.test(key) && value !== null && typeof value === 'object') return redactSecretContainer(value);
  if ((key !== '' && SECRET_KEY.test(key)) || (underSecret && !DESCRIPTIVE_KEY.test(key))) {
    return value === undefined || value === null || value === '' || typeof value === 'boolean' ? value : REDACTED;
  }
  if (typeof value === 'string') {
    const parsed = parseJsonText(value);
    return parsed !== undefined ? JSON.stringify(redactConfig(parsed, key)) : redactUrl(value);
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // The environment of a VM is where secrets are usually passed: never shown.
      if (k === 'env' && v !== null && typeof v === 'object') out[k] = Object.fromEntries(Object.keys(v).map((n) => [n, REDACTED]));
      else out[k] = redactConfig(v, k);
    }
    return out;
  }
  return value;
}

/** An object or array under a secret-looking key: descriptive fields stay, the rest is redacted. */
function redactSecretContainer(value: object): unknown {
  if (isJwk(value)) return redactJwk(value);
  if (Array.isArray(value)) return value.map((v) => (v !== null && typeof v === 'object' ? redactSecretContainer(v) : typeof v === 'string' && v !== '' ? REDACTED : v));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (DESCRIPTIVE_KEY.test(k)) out[k] = v !== null && typeof v === 'object' && !['paths', 'methods', 'routes', 'hosts', 'sources', 'audiences', 'claims'].includes(k) ? redactSecretContainer(v) : v;
    else if (v !== null && typeof v === 'object') out[k] = redactSecretContainer(v);
    else out[k] = redactConfig(v, k, true);
  }
  return out;
}

function redactUrl(s: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return s;
  try {
    const u = new URL(s);
    if (u.username === '' && u.password === '' && u.search === '') return s;
    if (u.username !== '' || u.password !== '') {
      u.username = u.username ? 'redacted' : '';
      u.password = u.password ? 'redacted' : '';
    }
    if (u.search !== '') u.search = '?redacted';
    return u.toString();
  } catch {
    return s;
  }
}

/** Every string under a secret-looking key (and every env value) in the config, for the scrubber. */
export function collectSecrets(value: unknown, key = '', out: Set<string> = new Set(), underSecret = false): Set<string> {
  // Under a secret-looking key everything is secret except descriptive fields (DESCRIPTIVE_KEY).
  const secret = (key !== '' && SECRET_KEY.test(key)) || (underSecret && !DESCRIPTIVE_KEY.test(key));
  if (typeof value === 'string') {
    const parsed = parseJsonText(value);
    if (parsed !== undefined) collectSecrets(parsed, key, out, underSecret);
    if (secret && value.length >= 6) out.add(value);
    return out;
  }
  if (isJwk(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (JWK_PRIVATE.has(k)) collectAll(v, out);
    }
    return out;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectSecrets(v, secret ? key : '', out, secret);
    return out;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'env' && v !== null && typeof v === 'object') {
        for (const e of Object.values(v)) if (typeof e === 'string' && e.length >= 6) out.add(e);
      } else collectSecrets(v, k, out, secret);
    }
  }
  return out;
}

/** Every string of length >= 6 in a value (JWK key material such as `oth`). */
function collectAll(value: unknown, out: Set<string>): void {
  if (typeof value === 'string') {
    if (value.length >= 6) out.add(value);
  } else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) collectAll(v, out);
}

const CREDENTIAL_PATTERNS: Array<[RegExp, string]> = [
  [/\b(Bearer|Basic|Digest|Negotiate|ApiKey)\s+[A-Za-z0-9._~+/=-]{6,}/gi, `$1 ${REDACTED}`],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED], // a JWT
  [/\b(authorization|cookie|set-cookie|x-api-key|api[-_]?key|proxy-authorization)(["']?\s*[:=]\s*["']?)[^"',;\s}]{3,}/gi, `$1$2${REDACTED}`],
];

export class SecretScrubber {
  private secrets: string[] = [];

  constructor(config?: unknown) {
    if (config !== undefined) this.setConfig(config);
  }

  /** Learns the secret values of a (new) config. */
  setConfig(config: unknown): void {
    this.secrets = [...collectSecrets(config)].sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    for (const [re, rep] of CREDENTIAL_PATTERNS) out = out.replace(re, rep);
    return out;
  }
}

/** Wraps a logger so that messages and string fields are scrubbed before they reach its sink. */
export function scrubbingLogger(inner: HostLogger, scrubber: SecretScrubber): HostLogger {
  return {
    get level() {
      return inner.level;
    },
    log(level, source, message, extra) {
      if (level < inner.level) return;
      let ex = extra;
      if (extra !== undefined) {
        ex = {};
        for (const [k, v] of Object.entries(extra)) ex[k] = typeof v === 'string' ? scrubber.scrub(v) : v;
      }
      inner.log(level, source, scrubber.scrub(message), ex);
    },
  };
}
