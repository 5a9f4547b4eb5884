// Property values computed from a request's facts rather than read from them, kept
// for the rest of the request (plugin/properties.ts serves them).

/**
 * Values computed from a request's facts (not just read), remembered on the stream for the
 * rest of the request so every adapter of a chain shares them (stream.propertyMemo). Each
 * is kept with the inputs it came from and those are compared on every read, so a changed
 * input (a header rewritten by an adapter, a port set later) is never served stale.
 */
export class PropertyMemo {
  private pathIn: string | undefined = undefined;
  private urlPath = '';
  private query = '';
  private sourceIn = '';
  private sourcePort = -1;
  private source = '';
  private destinationIn = '';
  private destinationPort = -1;
  private destination = '';

  /** request.url_path and request.query of a :path value. */
  private split(path: string): void {
    if (path === this.pathIn) return;
    this.pathIn = path;
    const q = path.indexOf('?');
    this.urlPath = q < 0 ? path : path.slice(0, q);
    this.query = q < 0 ? '' : path.slice(q + 1);
  }
  urlPathOf(path: string): string {
    this.split(path);
    return this.urlPath;
  }
  queryOf(path: string): string {
    this.split(path);
    return this.query;
  }
  sourceOf(address: string, port: number): string {
    if (address !== this.sourceIn || port !== this.sourcePort) {
      this.sourceIn = address;
      this.sourcePort = port;
      this.source = hostPort(address, port);
    }
    return this.source;
  }
  destinationOf(address: string, port: number): string {
    if (address !== this.destinationIn || port !== this.destinationPort) {
      this.destinationIn = address;
      this.destinationPort = port;
      this.destination = hostPort(address, port);
    }
    return this.destination;
  }
}

/** "ip:port", with IPv6 addresses in brackets ("[::1]:8080") as Envoy writes them. */
function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
