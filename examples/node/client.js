// A netd client in Node.js that knows nothing but proto/netd/v1/netd.proto.
// Usage: node client.js SOCKET CONTAINER_ID PID
// Attaches the container, lists endpoints, detaches, and prints one JSON line per step.
"use strict";
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "..", "proto", "netd", "v1", "netd.proto");

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 30000 }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

async function main() {
  const [socket, containerId, pid] = process.argv.slice(2);
  if (!socket || !containerId || !pid) {
    console.error("usage: node client.js SOCKET CONTAINER_ID PID");
    process.exit(2);
  }
  const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const { Netd } = grpc.loadPackageDefinition(definition).netd.v1;
  const client = new Netd(`unix:${socket}`, grpc.credentials.createInsecure());

  const attached = await call(client, "AttachContainer", { container_id: containerId, pid: Number(pid) });
  console.log(JSON.stringify({ step: "attach", endpoint: attached.endpoint }));
  const listed = await call(client, "ListEndpoints", {});
  console.log(JSON.stringify({ step: "list", endpoints: listed.endpoints }));
  const detached = await call(client, "DetachContainer", { container_id: containerId });
  console.log(JSON.stringify({ step: "detach", detached: detached.detached }));
  client.close();
}

main().catch((err) => {
  console.error(`netd: ${err.code !== undefined ? grpc.status[err.code] : ""} ${err.details || err.message}`);
  process.exit(1);
});
