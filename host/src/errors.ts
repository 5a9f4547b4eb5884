// Every error the host raises carries a stable `code` (documented in host/ERRORS.md)
// so that callers and operators can match on it instead of on message text.

export type HostErrorCode =
  | 'WASM_MALFORMED'
  | 'WASM_NOT_FOUND'
  | 'WASM_ABI_MISSING'
  | 'WASM_ABI_UNSUPPORTED'
  | 'WASM_IMPORT_UNKNOWN'
  | 'WASM_NO_ALLOCATOR'
  | 'WASM_SHA256_MISMATCH'
  | 'WASM_FETCH_FAILED'
  | 'VM_START_FAILED'
  | 'PLUGIN_CONFIGURE_FAILED'
  | 'VM_TRAP'
  | 'VM_FAILED'
  | 'CONFIG_INVALID'
  | 'CONFIG_READ_FAILED'
  | 'BUILD_FAILED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'BODY_LENGTH_CHANGED'
  | 'ADAPTER_TIMEOUT'
  // isolation, resilience and security (docs/operating.md)
  | 'WASM_METERING_UNSUPPORTED'
  | 'VM_BUDGET_EXCEEDED'
  | 'VM_MEMORY_LIMIT'
  | 'VM_TABLE_LIMIT'
  | 'VM_HOST_LIMIT'
  | 'EVENT_LOOP_BLOCKED'
  | 'CAPABILITY_DENIED'
  | 'RELOAD_FAILED'
  | 'ADMIN_FORBIDDEN'
  // out-of-process mode (docs/out-of-process.md)
  | 'REMOTE_UNAVAILABLE'
  | 'REMOTE_CONFIG_MISMATCH'
  | 'REMOTE_ERROR'
  | 'SERVER_START_FAILED'
  // multi-worker proxy (host/src/workers)
  | 'WORKER_START_FAILED'
  | 'LISTEN_FAILED'
  | 'USAGE';

export class HostError extends Error {
  readonly code: HostErrorCode;
  /** Extra machine-readable detail: the adapter, the file, the field. */
  readonly detail: Record<string, unknown>;
  constructor(code: HostErrorCode, message: string, detail: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HostError';
    this.code = code;
    this.detail = detail;
  }
}

export function isHostError(err: unknown, code?: HostErrorCode): err is HostError {
  return err instanceof HostError && (code === undefined || err.code === code);
}

/** A short, single-line description of any thrown value, safe to log. */
export function describeError(err: unknown): string {
  if (err instanceof HostError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
