// Serving /metrics: content negotiation between Prometheus text 0.0.4 and OpenMetrics,
// and gzip when the scraper accepts it (Prometheus always sends Accept-Encoding: gzip).
//
// Prometheus 2.x sends
//   Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,
//           text/plain;version=0.0.4;q=0.5,*/*;q=0.1
// and gets OpenMetrics 1.0.0. curl's `*/*` gets text 0.0.4. The choice follows the q-values;
// on a tie OpenMetrics wins (as client_golang does). A request that accepts nothing we
// produce still gets text 0.0.4 rather than a 406, so a misconfigured scraper sees data.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzip } from 'node:zlib';
import type { MetricsRegistry } from './registry.js';

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
const OPENMETRICS_001_CONTENT_TYPE = 'application/openmetrics-text; version=0.0.1; charset=utf-8';

export interface Negotiated {
  format: 'text' | 'openmetrics';
  contentType: string;
}

interface MediaRange {
  type: string;
  params: Record<string, string>;
  q: number;
}

function parseAccept(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [mt, ...ps] = part.split(';');
    const type = mt!.trim().toLowerCase();
    if (type === '') continue;
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of ps) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const k = p.slice(0, eq).trim().toLowerCase();
      const v = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (k === 'q') {
        const n = Number(v);
        q = Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 0;
      } else params[k] = v;
    }
    out.push({ type, params, q });
  }
  return out;
}

/** Picks the exposition format for an Accept header. */
export function negotiate(accept: string | undefined): Negotiated {
  const text: Negotiated = { format: 'text', contentType: TEXT_CONTENT_TYPE };
  if (accept === undefined || accept.trim() === '') return text;
  let best: Negotiated = text;
  let bestQ = -1;
  let bestRank = -1;
  for (const r of parseAccept(accept)) {
    if (r.q <= 0) continue;
    let offer: Negotiated | null = null;
    let rank = 0;
    if (r.type === 'application/openmetrics-text') {
      const v = r.params.version;
      if (v === undefined || v === '1.0.0') {
        offer = { format: 'openmetrics', contentType: OPENMETRICS_CONTENT_TYPE };
        rank = 3;
      } else if (v === '0.0.1') {
        offer = { format: 'openmetrics', contentType: OPENMETRICS_001_CONTENT_TYPE };
        rank = 2;
      }
    } else if (r.type === 'text/plain') {
      const v = r.params.version;
      if (v === undefined || v === '0.0.4') {
        offer = text;
        rank = 1;
      }
    } else if (r.type === '*/*' || r.type === 'text/*') {
      offer = text;
      rank = 0;
    }
    if (offer === null) continue;
    if (r.q > bestQ || (r.q === bestQ && rank > bestRank)) {
      best = offer;
      bestQ = r.q;
      bestRank = rank;
    }
  }
  return best;
}

function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  for (const part of header.split(',')) {
    const [coding, ...ps] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = ps.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

/** Bodies smaller than this are sent uncompressed (gzip would not pay for itself). */
const GZIP_MIN_BYTES = 1024;

/** Answers a GET/HEAD /metrics request from `registry`. */
export function serveMetrics(req: IncomingMessage, res: ServerResponse, registry: MetricsRegistry): void {
  const n = negotiate(req.headers.accept);
  const body = Buffer.from(registry.render(n.format === 'openmetrics'), 'utf8');
  const headers: Record<string, string> = { 'content-type': n.contentType, vary: 'Accept, Accept-Encoding' };
  if (body.length < GZIP_MIN_BYTES || !acceptsGzip(req.headers['accept-encoding'])) {
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  gzip(body, (err, zipped) => {
    if (err) {
      headers['content-length'] = String(body.length);
      res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    headers['content-encoding'] = 'gzip';
    headers['content-length'] = String(zipped.length);
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : zipped);
  });
}
