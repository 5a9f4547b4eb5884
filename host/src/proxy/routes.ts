// The proxy's routing table (config `routes`): the first route whose path prefix
// and host pattern match a request wins.

import type { MixerConfig, RouteConfig } from '../config/schema.js';

export interface Route {
  readonly config: RouteConfig;
  readonly url: URL;
  /** The upstream URL's parts, read once (URL getters build a new string on every call). */
  readonly target: { readonly protocol: string; readonly hostname: string; readonly port: string; readonly host: string; readonly origin: string };
  /** The upstream URL's path without its trailing slash ('' for '/'): prepended to each request's path. */
  readonly basePath: string;
  readonly prefix: string;
  readonly hosts: string[] | null;
}

export class RouteTable {
  private routes: Route[] = [];

  constructor(config: MixerConfig) {
    this.set(config);
  }

  /** Replaces the table (a reload); requests already routed keep their route. */
  set(config: MixerConfig): void {
    this.routes = (config.routes ?? []).map((r) => {
      const url = new URL(r.upstream);
      const target = { protocol: url.protocol, hostname: url.hostname, port: url.port, host: url.host, origin: url.origin };
      return { config: r, url, target, basePath: url.pathname.replace(/\/$/, ''), prefix: r.match?.prefix ?? '/', hosts: r.match?.hosts ?? null };
    });
  }

  /** The upstream origins the routes name (Upstream.retain keeps only their pools). */
  origins(): Set<string> {
    return new Set(this.routes.map((r) => r.target.origin));
  }

  pick(authority: string, path: string): Route | null {
    const h = authority.replace(/:\d+$/, '').toLowerCase();
    for (const r of this.routes) {
      if (!path.startsWith(r.prefix)) continue;
      if (r.hosts !== null && !r.hosts.some((x) => x === '*' || x === h || (x.startsWith('*.') && h.endsWith(x.slice(1))))) continue;
      return r;
    }
    return null;
  }
}
