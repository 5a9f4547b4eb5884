// wasm_mixer_proxy_responses_total: every answer the proxy port sends, by route
// and status code, including the ones to requests Node's parser refused.

import type { WasmHost } from '../host.js';

/** A counter function for (route, code); each label pair's counter is looked up once. */
export function responseCounter(host: WasmHost): (route: string, code: number) => void {
  const counters = new Map<string, () => void>();
  return (route, code) => {
    const key = `${route}\0${code}`;
    let f = counters.get(key);
    if (f === undefined) {
      f = host.metrics.counter('wasm_mixer_proxy_responses_total', 'Responses sent downstream by the proxy, by route and status code.', { route, code: String(code) });
      counters.set(key, f);
    }
    f();
  };
}
