// wasm_mixer_proxy_responses_total: every answer the proxy port sends, by route
// and status code, including the ones to requests Node's parser refused.

import type { WasmHost } from '../host.js';

/** A counter function for (route, code); each label pair's counter is looked up once (by route, then code: no key string per request). */
export function responseCounter(host: WasmHost): (route: string, code: number) => void {
  const routes = new Map<string, Map<number, () => void>>();
  return (route, code) => {
    let byCode = routes.get(route);
    if (byCode === undefined) routes.set(route, (byCode = new Map()));
    let f = byCode.get(code);
    if (f === undefined) {
      f = host.metrics.counter('wasm_mixer_proxy_responses_total', 'Responses sent downstream by the proxy, by route and status code.', { route, code: String(code) });
      byCode.set(code, f);
    }
    f();
  };
}
