// The benchmark adapter of issue 2: reads a few headers and properties and adds a header.
import { Adapter, Decision, Request, register } from "wasm-mixer/sdk";
export * from "wasm-mixer/sdk/exports";

class Attrs extends Adapter {
  check(req: Request): Decision {
    const ua = req.header("user-agent");
    const id = req.header("x-request-id");
    const method = req.method;
    const src = req.sourceAddress;
    const path = req.path;
    // Use what was read so nothing is optimised away.
    const n = (ua === null ? 0 : ua.length) + (id === null ? 0 : id.length) + method.length + src.length + path.length;
    req.setHeader("x-attrs", n.toString());
    return Decision.allow();
  }
}
register<Attrs>();
