// Listening on the proxy and admin ports. A failure (port in use, no permission,
// address not on this machine) becomes LISTEN_FAILED with a message that says
// which port it was and what to do, instead of Node's bare `listen EADDRINUSE`.

import type { Server } from 'node:http';
import { HostError } from '../errors.js';

/** `what` names the port ("the proxy port"); `hint` says how to choose another one. */
export function listenOn(server: Server, port: number, address: string, what: string, hint: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenFailed(err, port, address, what, hint));
    server.once('error', onError);
    server.listen(port, address, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function listenFailed(err: NodeJS.ErrnoException, port: number, address: string, what: string, hint: string): HostError {
  const where = `${address.includes(':') ? `[${address}]` : address}:${port}`;
  const why =
    err.code === 'EADDRINUSE'
      ? `${where} is already in use (another process, perhaps another wasm-mixer, listens there); stop it, or ${hint}`
      : err.code === 'EACCES'
        ? `no permission to listen on ${where} (ports below 1024 need privileges); ${hint}`
        : err.code === 'EADDRNOTAVAIL'
          ? `${address} is not an address of this machine; listen on 127.0.0.1, 0.0.0.0 or one of its interfaces`
          : `${where}: ${err.message}; ${hint}`;
  return new HostError('LISTEN_FAILED', `cannot listen on ${what}: ${why}`, { address, port, errno: err.code }, { cause: err });
}
