// A benchmark peer for `just bench`: bench.v1.EchoService on connect-node
// (Connect, gRPC and gRPC-Web) over Node's cleartext HTTP/2 (prior knowledge),
// with the same semantics as the Rust servers.
// Usage: node server.mjs [--port N]   (or PORT=N; default 9095, host 127.0.0.1)
import http2 from "node:http2";
import { parseArgs } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "./gen/bench/v1/echo_pb.js";

const MAX_TICKS = 1000;

const { values } = parseArgs({ options: { port: { type: "string" } } });
const port = Number(values.port ?? process.env.PORT ?? 9095);
const host = "127.0.0.1";

const routes = (router) =>
  router.service(EchoService, {
    echo: ({ message, number, tags }) => ({ message, number, tags }),
    async *ticks({ count, message }) {
      if (count < 0 || count > MAX_TICKS) {
        throw new ConnectError("count must be between 0 and 1000", Code.InvalidArgument);
      }
      for (let index = 0; index < count; index++) {
        yield { index, message };
      }
    },
  });

http2
  .createServer(connectNodeAdapter({ routes }))
  .listen(port, host, () => console.error(`connect-node peer listening on ${host}:${port}`));
