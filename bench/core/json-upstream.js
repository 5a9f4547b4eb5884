// The upstream the proxy benchmarks put behind the proxy: a keep-alive server that
// reads the request body and answers a small JSON document.
import http from 'node:http';

/** Listens on 127.0.0.1:`port` (0 picks one) and prints "ready PORT" when it does. */
export function startJsonUpstream(port) {
  const body = Buffer.from('{"ok":true}\n');
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
  return server;
}
