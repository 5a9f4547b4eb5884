// Downstream connections: each gets an id (Envoy's connection.id), and the
// addresses a request's stream info reports come from its socket.

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { StreamInfo } from '../stream/http-stream.js';

type ConnectionFacts = Pick<StreamInfo, 'sourceAddress' | 'sourcePort' | 'destinationAddress' | 'destinationPort' | 'connectionId'>;
type NumberedSocket = Socket & { wmConnId?: number; wmFacts?: ConnectionFacts };

/** Numbers the server's connections from 1, in accept order. */
export function numberConnections(server: Server): void {
  let ids = 0;
  server.on('connection', (s: NumberedSocket) => {
    s.wmConnId = ++ids;
  });
}

/**
 * The connection's part of a stream's info: both ends' addresses and the connection id.
 * Worked out once per connection (a keep-alive connection carries many requests); callers
 * copy the fields, never change the object.
 */
export function connectionInfo(sock: NumberedSocket): Readonly<ConnectionFacts> {
  let f = sock.wmFacts;
  // A socket that has no peer address yet (or lost it) is asked again next time.
  if (f === undefined || f.sourceAddress === '') {
    f = {
      sourceAddress: sock.remoteAddress ?? '',
      sourcePort: sock.remotePort ?? 0,
      destinationAddress: sock.localAddress ?? '',
      destinationPort: sock.localPort ?? 0,
      connectionId: sock.wmConnId ?? 0,
    };
    sock.wmFacts = f;
  }
  return f;
}
