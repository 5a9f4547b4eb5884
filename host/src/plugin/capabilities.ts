// Capability grants (plugin `capabilities`): ABI functions outside the groups an
// adapter was granted are linked to stubs that return INTERNAL_FAILURE and log
// once per function and VM generation. HTTP and gRPC call-outs are governed
// separately by the plugin's `clusters` grant; their refusals are logged here too.

import { LogLevel, Status } from '../abi/constants.js';
import { CAPABILITY_GROUPS, type Capability } from '../abi/names.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';

export { CAPABILITY_GROUPS, CAPABILITIES, type Capability } from '../abi/names.js';

/** Counts every refused call and logs the first of each kind (per VM generation). */
export class Denials {
  private readonly logged = new Set<string>();

  constructor(
    private readonly adapter: string,
    private readonly metrics: MetricsRegistry,
    private readonly logger: HostLogger,
  ) {}

  /** A new VM generation logs its denials again. */
  reset(): void {
    this.logged.clear();
  }

  /** True the first time `key` is seen in this generation (for one-time warnings). */
  first(key: string): boolean {
    if (this.logged.has(key)) return false;
    this.logged.add(key);
    return true;
  }

  /** Logs (once per function and VM generation) and counts a call outside the adapter's grant. */
  denied(capability: string, fn: string, detail = ''): void {
    this.metrics.counter('wasm_mixer_capability_denied_total', 'ABI calls refused because the adapter was not granted the capability.', { adapter: this.adapter, capability })();
    if (!this.first(fn + detail)) return;
    const name = this.adapter;
    const what = capability === 'http_call' || capability === 'grpc_call'
      ? `called ${fn} to cluster "${detail}", which is not in its clusters grant; add it to plugins[].clusters for ${name} if intended`
      : `called ${fn}, but capability "${capability}" is not granted; add "${capability}" to plugins[].capabilities for ${name} if intended`;
    this.logger.log(LogLevel.Warn, name, `adapter ${what} (further denials are counted in wasm_mixer_capability_denied_total)`, { code: 'CAPABILITY_DENIED', capability });
  }
}

/** Replaces the imports of capability groups not granted by stubs that refuse and log. `granted` undefined grants all. */
export function restrictImports(imports: WebAssembly.Imports, granted: readonly Capability[] | undefined, denials: Denials): WebAssembly.Imports {
  if (granted === undefined) return imports;
  const env = imports.env as Record<string, unknown>;
  for (const cap of Object.keys(CAPABILITY_GROUPS) as Capability[]) {
    if (granted.includes(cap)) continue;
    for (const fn of CAPABILITY_GROUPS[cap]) {
      env[fn] = () => {
        denials.denied(cap, fn);
        return Status.InternalFailure;
      };
    }
  }
  return imports;
}
