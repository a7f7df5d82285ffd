// The floor for idle streams: a bare node:http2 server that answers every
// request as a gRPC server stream (headers, one empty message) and then
// holds it open, doing nothing else. The gateway's figures are compared with
// this one's to show what the gateway adds over Node's own HTTP/2.
import http2 from "node:http2";

const server = http2.createServer({ streamResetBurst: 10_000, streamResetRate: 1_000 });
server.on("stream", (stream) => {
  stream.on("error", () => {});
  stream.resume();
  stream.respond({ ":status": 200, "content-type": "application/grpc+proto" });
  stream.write(Buffer.alloc(5));
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1", () => {
  process.send?.({ type: "listening", port: server.address().port });
});
process.on("SIGTERM", () => process.exit(0));
