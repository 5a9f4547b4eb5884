// HttpStream builds its info field by field (stream/http-stream.ts): every fact the proxy
// (or the out-of-process server) hands over must be kept as given, and the rest defaulted.
import t from 'tap';
import { HttpStream, type StreamInfo } from '../../host/src/stream/http-stream.js';

const given: StreamInfo = {
  sourceAddress: '10.0.0.7',
  sourcePort: 40123,
  destinationAddress: '10.0.0.1',
  destinationPort: 8443,
  connectionId: 42,
  protocol: 'HTTP/2',
  startTimeNs: 1_700_000_000_123_456_789n,
  startMono: 987_654_321n,
  routeName: 'orders',
  clusterName: 'orders-v2',
  upstreamAddress: '10.0.1.2:9000',
  tls: true,
  requestBytes: 1024,
  requestHeaderBytes: 211,
  responseBytes: 2048,
  responseHeaderBytes: 180,
  responseCode: 503,
  responseCodeDetails: 'via_upstream',
  responseFlags: 'UF',
  endMono: 999_000_000n,
  upstreamFirstByteMono: 998_000_000n,
};

t.test('every field given is kept as given', async (t) => {
  const s = new HttpStream([[':method', 'GET']], { ...given });
  t.same(s.info, given);
  t.same(Object.keys(s.info).sort(), Object.keys(given).sort(), 'no field added or lost');
});

t.test('missing fields get their defaults; the start time is now', async (t) => {
  const before = process.hrtime.bigint();
  const wallBefore = BigInt(Date.now()) * 1_000_000n;
  const s = new HttpStream([], { routeName: 'r' });
  const { startMono, startTimeNs, ...rest } = s.info;
  t.same(rest, {
    sourceAddress: '127.0.0.1', sourcePort: 0, destinationAddress: '127.0.0.1', destinationPort: 0, connectionId: 0,
    protocol: 'HTTP/1.1', routeName: 'r', clusterName: '', upstreamAddress: '', tls: false,
    requestBytes: 0, requestHeaderBytes: 0, responseBytes: 0, responseHeaderBytes: 0,
    responseCode: 0, responseCodeDetails: '', responseFlags: '', endMono: 0n, upstreamFirstByteMono: 0n,
  });
  t.ok(startMono >= before && startMono <= process.hrtime.bigint(), 'monotonic start taken at construction');
  t.ok(startTimeNs >= wallBefore && startTimeNs <= BigInt(Date.now()) * 1_000_000n, 'wall-clock start in ns since the epoch');
});
