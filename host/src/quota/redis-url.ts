// Cluster urls for the quota lease transport, one Redis deployment each:
//
//   redis://[user:pass@]host:port[/db]            one node (rediss:// for TLS)
//   redis+cluster://[user:pass@]h1:p1,h2:p2,...   Redis Cluster: seed nodes, the client finds the rest
//   redis+sentinel://[user:pass@]h1:p1,h2:p2/MASTER[/db]
//                                                 Sentinel: the sentinels and the master group name
//
// rediss+cluster:// and rediss+sentinel:// use TLS to the data nodes. user:pass are the
// data nodes' credentials (not sent to the sentinels).

import { HostError } from '../errors.js';

export interface RedisNode {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: RedisNode[]; username?: string; password?: string; tls: boolean }
  | { kind: 'sentinel'; sentinels: RedisNode[]; name: string; db: number; username?: string; password?: string; tls: boolean };

const SCHEME = /^(rediss?)(\+cluster|\+sentinel)?:\/\/(.*)$/;

export function parseRedisUrl(url: string): RedisTarget {
  const m = SCHEME.exec(url);
  if (m === null) throw bad(url, 'expected redis://, rediss://, redis+cluster:// or redis+sentinel://');
  const scheme = m[1]!;
  const kind = m[2];
  const rest = m[3]!;
  if (kind === undefined) return { kind: 'single', url };
  const tls = scheme === 'rediss';
  const at = rest.lastIndexOf('@');
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const cred = rest.slice(0, at);
    const c = cred.indexOf(':');
    username = decodeURIComponent(c < 0 ? cred : cred.slice(0, c)) || undefined;
    password = c < 0 ? undefined : decodeURIComponent(cred.slice(c + 1));
  }
  const afterCred = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = afterCred.indexOf('/');
  const hostList = slash < 0 ? afterCred : afterCred.slice(0, slash);
  const path = slash < 0 ? '' : afterCred.slice(slash + 1);
  const nodes = hostList.split(',').filter((h) => h !== '').map((h) => node(url, h));
  if (nodes.length === 0) throw bad(url, 'list at least one host:port');
  if (kind === '+cluster') {
    if (path !== '') throw bad(url, 'Redis Cluster has no database number or path; remove it');
    return { kind: 'cluster', nodes, username, password, tls };
  }
  const [name, db] = path.split('/');
  if (!name) throw bad(url, 'name the master group after the sentinels: redis+sentinel://h1:26379,h2:26379/mymaster');
  const dbn = db === undefined || db === '' ? 0 : Number(db);
  if (!Number.isInteger(dbn) || dbn < 0) throw bad(url, `bad database number "${db}"`);
  return { kind: 'sentinel', sentinels: nodes, name: decodeURIComponent(name), db: dbn, username, password, tls };
}

function node(url: string, hp: string): RedisNode {
  const c = hp.lastIndexOf(':');
  const host = (c < 0 ? hp : hp.slice(0, c)).replace(/^\[(.*)\]$/, '$1');
  const port = c < 0 ? NaN : Number(hp.slice(c + 1));
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535) throw bad(url, `"${hp}" is not host:port`);
  return { host, port };
}

function bad(url: string, why: string): HostError {
  // The url may carry a password: name the scheme only.
  return new HostError('CONFIG_INVALID', `bad Redis cluster url (${url.split('://')[0]}://…): ${why}`, { field: 'clusters.*.url' });
}
