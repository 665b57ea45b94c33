// One node of the Socket.IO peer: a relay that stores nothing. Members join a room; a message
// sent to a room is emitted to every member (its sender included, as Confab delivers a message
// to every member) through @socket.io/redis-adapter, so that two nodes on one Redis serve one
// set of rooms. The sender's acknowledgement callback is answered once the emit is handed on.
//
//   node server.mjs --port 3001 --redis redis://127.0.0.1:6379

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const port = Number(arg("--port", "3001"));
const redisUrl = arg("--redis", "redis://127.0.0.1:6379");

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const http = createServer();
const io = new Server(http, { adapter: createAdapter(pub, sub), transports: ["websocket"] });
io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("send", (message, ack) => {
    io.to(message.room).emit("message", message);
    if (typeof ack === "function") ack(true);
  });
});
http.listen(port, "127.0.0.1", () => console.log(`socket.io peer listening on ${port}`));
