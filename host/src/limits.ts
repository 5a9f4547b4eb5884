// The bounds that keep one adapter module from freezing the event loop or
// growing host memory without limit, in one place (as proxy-wasm-cpp-host's
// limits.h). Each is documented in docs/operating.md "Limits": its default,
// its config field (when it has one) and what happens at it.

/** Bytes in a MiB. */
export const MIB = 1024 * 1024;

// --- guest work ("fuel", one unit is about one wasm instruction) ---------------

/**
 * Default work budget per callback (plugin `limits.fuelPerCallback`). Measured
 * (bench/results/isolation.json): 500M units is about 25-60 ms of dense compute and
 * 100-160 ms of an empty spin loop on a quiet machine, far above any sane proxy
 * callback: the longest a runaway callback can stall the event loop.
 */
export const DEFAULT_FUEL_PER_CALLBACK = 500_000_000;
/** Module initialisation, proxy_on_vm_start and proxy_on_configure get this many times the per-callback budget. */
export const START_FUEL_FACTOR = 10;
/** The most any budget can be (the fuel counter is an i32). */
export const MAX_FUEL = 2_000_000_000;

/**
 * Bulk memory operations (memory.fill/copy/init) pay this many units per byte. Measured on the
 * loaded 2-core CI machine, a memory.fill loop over 64 MiB under the default budget stalled the
 * loop 295 ms with 1 unit per byte (fresh pages fault in) and 65-190 ms with 2; 4 leaves margin.
 */
export const BULK_FUEL_PER_BYTE = 4;
/**
 * Bulk table operations (table.fill/copy/init) pay this many units per element: V8 takes about
 * 36 ns per funcref element (write barriers), so the default budget covers about 70 ms of them.
 */
export const TABLE_FUEL_PER_ELEMENT = 256;
/** Every host function call pays this much before it does anything. */
export const HOST_CALL_FUEL = 4_000;
/** Host functions pay 1 unit per byte they copy, decode or scan on the guest's behalf. */
export const HOST_BYTE_FUEL = 1;
/** Host charges are applied to the guest's fuel counter in batches of at least this many units (cheap hot path). */
export const HOST_CHARGE_BATCH = 100_000;

// --- memory and tables ------------------------------------------------------------

/** Default cap on linear memory, MiB (plugin `limits.maxMemoryMb`); memory.grow past it returns -1. */
export const DEFAULT_MAX_MEMORY_MB = 128;

/** Default cap on a module's table size, in elements (plugin `limits.maxTableElements`); table.grow past it returns -1. */
export const DEFAULT_MAX_TABLE_ELEMENTS = 100_000;
/** Config maximum for `limits.maxTableElements` (V8's own limit is 10,000,000). */
export const MAX_TABLE_ELEMENTS_LIMIT = 10_000_000;

// --- logging (proxy_log, WASI fd_write to stdout/stderr) ------------------------

/** One proxy_log message or one stdio line is cut at this many bytes (the rest is dropped and counted). */
export const MAX_LOG_MESSAGE_BYTES = 16 * 1024;
/** At most this many log lines per guest callback; further lines are dropped and counted. */
export const MAX_LOG_LINES_PER_CALLBACK = 100;
/** At most this many log bytes per guest callback. */
export const MAX_LOG_BYTES_PER_CALLBACK = 256 * 1024;
/** fd_write: at most this many iovecs per call (WASI's IOV_MAX is 1024). */
export const MAX_FD_WRITE_IOVECS = 1024;
/** fd_write: at most this many bytes are taken from one call; the rest is reported written and dropped. */
export const MAX_FD_WRITE_BYTES = 64 * 1024;

// --- timers -------------------------------------------------------------------

/** proxy_set_tick_period_milliseconds: shorter periods are raised to this. */
export const MIN_TICK_PERIOD_MS = 10;
/** Longer periods are lowered to this (Node's timer maximum, about 24.8 days). */
export const MAX_TICK_PERIOD_MS = 2 ** 31 - 1;

// --- host memory a module can cause, per VM (vm_id) --------------------------------

/** Shared data (proxy_set_shared_data): keys per vm_id. */
export const DEFAULT_SHARED_DATA_MAX_KEYS = 100_000;
/** Shared data: bytes of one value. */
export const DEFAULT_SHARED_DATA_MAX_VALUE_BYTES = 1 * MIB;
/** Shared data: total bytes (keys + values + SHARED_ENTRY_OVERHEAD per entry) per vm_id (plugin `limits.maxSharedDataMb`). */
export const DEFAULT_SHARED_DATA_MAX_BYTES = 32 * MIB;
/** What one shared-data entry or queue item costs the host besides its bytes (map entry, object, array slot). */
export const SHARED_ENTRY_OVERHEAD = 96;
/** Shared queues: items per queue; the oldest is dropped to make room. */
export const DEFAULT_QUEUE_MAX_ITEMS = 10_000;
/** Shared queues: bytes held by all queues a vm_id registered; the oldest items are dropped to make room. */
export const DEFAULT_QUEUE_MAX_BYTES = 16 * MIB;

/** HTTP call-outs: one response body (the transport aborts past it), and the longest timeout a guest may ask for. */
export const MAX_CALLOUT_RESPONSE_BYTES = 16 * MIB;
export const MAX_CALLOUT_TIMEOUT_MS = 60_000;
/** WASI random_get: bytes per call. */
export const RANDOM_GET_MAX = 64 * 1024;

/** HTTP call-outs in flight per VM. */
export const MAX_PENDING_CALLOUTS = 256;
/** HTTP call-outs: bytes in flight per VM (request bodies, and response bytes received so far); a call-out whose response would pass it is aborted. */
export const MAX_CALLOUT_BYTES = 32 * MIB;
/**
 * Proxy: a request body with a Content-Length up to this size (and no adapter reading bodies) is
 * collected and sent upstream in one piece with its head. A streamed body costs undici a stream,
 * listeners and promises per request, which outlive a scavenge (kilobytes promoted per request).
 */
export const UPSTREAM_WHOLE_BODY_BYTES = 16 * 1024;
/**
 * Proxy: response body bytes held per request while its response-header phase waits for the end
 * of the event-loop turn (proxy/batched-phases.ts); past this the upstream connection is paused
 * until the adapters have decided.
 */
export const EARLY_RESPONSE_BODY_BYTES = 64 * 1024;
/** gRPC call-outs: calls and streams open per VM (plugin/grpc-call.ts). */
export const MAX_GRPC_CALLOUTS = 1024;
/** gRPC call-outs: one message, each way (grpc-js refuses larger ones with RESOURCE_EXHAUSTED). */
export const MAX_GRPC_MESSAGE_BYTES = 4 * MIB;

// --- crash containment (plugin `restart`) ------------------------------------------

/** A module is crash-looping when, within restart.windowMs, it crashed more than maxRestarts times AND on more than this share of the requests it was given. */
export const CRASH_LOOP_RATIO = 0.5;
export const DEFAULT_MAX_RESTARTS = 10;
export const DEFAULT_RESTART_WINDOW_MS = 60_000;
export const DEFAULT_INITIAL_BACKOFF_MS = 100;
export const DEFAULT_MAX_BACKOFF_MS = 30_000;

// --- watchdog (top-level `watchdog`) ----------------------------------------------------

/** The event loop blocked longer than this is a hang: the watchdog kills the process (SIGKILL) after a critical log line. */
export const DEFAULT_WATCHDOG_HARD_LIMIT_MS = 10_000;
/** How often the main thread beats. */
export const WATCHDOG_HEARTBEAT_MS = 100;
