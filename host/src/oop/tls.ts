// Transport security between the proxy and the adapter server: TLS and mutual TLS with
// grpc-js credentials, and a refusal to speak plaintext off loopback unless the config
// says `remote.insecure: true` explicitly. Certificate paths are relative to the
// config file's folder.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HostError } from '../errors.js';
import type { MixerConfig, RemoteTlsSettings } from '../config/types.js';

interface RemoteSecurity {
  tls?: RemoteTlsSettings;
  insecure?: boolean;
}

function security(config: MixerConfig): RemoteSecurity {
  return ((config as { remote?: RemoteSecurity }).remote ?? {}) as RemoteSecurity;
}

/** unix sockets and loopback addresses need no TLS. */
export function isLoopbackAddress(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const host = address.replace(/^dns:(\/\/\/)?/, '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function readPem(file: string, baseDir: string, field: string): Buffer {
  const path = isAbsolute(file) ? file : resolve(baseDir, file);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new HostError('CONFIG_INVALID', `remote.tls.${field}: cannot read ${path}: ${(err as Error).message}`, { field: `/remote/tls/${field}`, file: path }, { cause: err });
  }
}

function refusePlaintext(address: string, side: string): never {
  throw new HostError(
    'CONFIG_INVALID',
    `the ${side} would speak plaintext gRPC on ${address}, which is not a loopback address: configure remote.tls (TLS or mutual TLS), bind to loopback or a unix: socket, or set remote.insecure: true to allow it explicitly`,
    { field: '/remote/tls', address },
  );
}

export function serverCredentials(config: MixerConfig, address: string, baseDir: string): grpc.ServerCredentials {
  const { tls, insecure } = security(config);
  const s = tls?.server;
  if (s === undefined) {
    if (!isLoopbackAddress(address) && insecure !== true) refusePlaintext(address, 'adapter server');
    return grpc.ServerCredentials.createInsecure();
  }
  const ca = s.clientCa !== undefined ? readPem(s.clientCa, baseDir, 'server.clientCa') : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readPem(s.cert, baseDir, 'server.cert'), private_key: readPem(s.key, baseDir, 'server.key') }],
    s.requireClientCert ?? ca !== null,
  );
}

export function channelCredentials(config: MixerConfig, address: string, baseDir: string): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const { tls, insecure } = security(config);
  const c = tls?.client;
  if (c === undefined) {
    if (!isLoopbackAddress(address) && insecure !== true) refusePlaintext(address, 'proxy');
    return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  if ((c.cert === undefined) !== (c.key === undefined)) {
    throw new HostError('CONFIG_INVALID', 'remote.tls.client: cert and key go together (both for mutual TLS, neither for plain TLS)', { field: '/remote/tls/client' });
  }
  const credentials = grpc.credentials.createSsl(
    c.ca !== undefined ? readPem(c.ca, baseDir, 'client.ca') : null,
    c.key !== undefined ? readPem(c.key, baseDir, 'client.key') : null,
    c.cert !== undefined ? readPem(c.cert, baseDir, 'client.cert') : null,
  );
  return { credentials, options: c.serverName !== undefined ? { 'grpc.ssl_target_name_override': c.serverName, 'grpc.default_authority': c.serverName } : {} };
}
