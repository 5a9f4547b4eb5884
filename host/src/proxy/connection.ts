// Downstream connections: each gets an id (Envoy's connection.id), and the
// addresses a request's stream info reports come from its socket.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { StreamInfo } from '../stream/http-stream.js';

type NumberedSocket = Socket & { wmConnId?: number };

/** Numbers the server's connections from 1, in accept order. */
export function numberConnections(server: Server): void {
  let ids = 0;
  server.on('connection', (s: NumberedSocket) => {
    s.wmConnId = ++ids;
  });
}

/** The connection's part of a stream's info: both ends' addresses and the connection id. */
export function connectionInfo(sock: NumberedSocket): Pick<StreamInfo, 'sourceAddress' | 'sourcePort' | 'destinationAddress' | 'destinationPort' | 'connectionId'> {
  return {
    sourceAddress: sock.remoteAddress ?? '',
    sourcePort: sock.remotePort ?? 0,
    destinationAddress: sock.localAddress ?? '',
    destinationPort: sock.localPort ?? 0,
    connectionId: sock.wmConnId ?? 0,
  };
}
