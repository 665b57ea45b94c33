// The fan-out scenario of confab-bench (`fanout`) against the Socket.IO peer: `--connections`
// sockets spread round robin over `--url`s, each a member of one of `--channels` rooms, one
// sender per room (its first member), open-loop sends at `--rate` messages/s in total spread
// evenly, `--duration` seconds, then up to `--drain` seconds for outstanding deliveries. Every
// member checks what it gets: each acknowledged message once, in order. With `--server-pid`
// (repeatable) it counts those processes' CPU time from the first send to the last delivery.
// Prints a JSON report with confab-bench's field names.

import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const args = process.argv.slice(2);
const all = (name) => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));
const one = (name, fallback) => all(name)[0] ?? fallback;
const urls = all("--url");
const connections = Number(one("--connections", "1000"));
const channels = Number(one("--channels", "100"));
const rate = Number(one("--rate", "1000"));
const duration = Number(one("--duration", "15")) * 1000;
const drain = Number(one("--drain", "10")) * 1000;
const payload = "x".repeat(Number(one("--payload", "100")));
const serverPids = all("--server-pid").map(Number);
if (urls.length === 0 || connections < channels) {
  console.error("load.mjs: give at least one --url, and at least as many --connections as --channels");
  process.exit(2);
}

// The servers' CPU seconds: user and system (the kernel's part), from /proc, as confab-bench.
const cpu = () =>
  serverPids.reduce(
    (total, pid) => {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return { user: total.user + Number(fields[11]) / 100, system: total.system + Number(fields[12]) / 100 };
    },
    { user: 0, system: 0 },
  );
const now = () => performance.timeOrigin + performance.now();

// Connect and join, 100 at a time.
const sockets = new Array(connections);
const received = Array.from({ length: connections }, () => ({ seqs: [], latencies: [] }));
let delivered = 0;
let lastDelivery = 0;
for (let start = 0; start < connections; start += 100) {
  await Promise.all(
    Array.from({ length: Math.min(100, connections - start) }, async (_, k) => {
      const i = start + k;
      const socket = io(urls[i % urls.length], { transports: ["websocket"], forceNew: true });
      socket.on("message", (m) => {
        const at = now();
        received[i].seqs.push(m.seq);
        received[i].latencies.push(at - m.t);
        delivered += 1;
        lastDelivery = at;
      });
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      await socket.emitWithAck("join", `room-${i % channels}`);
      sockets[i] = socket;
    }),
  );
}

const acked = Array.from({ length: channels }, () => []);
let sent = 0;
let errors = 0;
const period = (channels / rate) * 1000;
const cpuStart = serverPids.length ? cpu() : null;
const started = now();
const senders = [];
for (let c = 0; c < channels; c++) {
  const socket = sockets[c];
  senders.push(
    new Promise((resolve) => {
      const pending = [];
      let seq = 0;
      let next = started + (period * c) / channels;
      const tick = () => {
        const t = now();
        if (t - started >= duration) {
          Promise.all(pending).then(resolve);
          return;
        }
        // Open loop: every send that is due goes out, whether or not earlier ones were answered.
        while (next <= t && next - started < duration) {
          const message = { room: `room-${c}`, seq: seq++, t: now(), body: payload };
          sent += 1;
          pending.push(
            socket
              .timeout(30000)
              .emitWithAck("send", message)
              .then(() => acked[c].push(message.seq))
              .catch(() => (errors += 1)),
          );
          next += period;
        }
        setTimeout(tick, Math.max(0, next - now()));
      };
      setTimeout(tick, Math.max(0, next - now()));
    }),
  );
}
await Promise.all(senders);
const sending = now() - started;
const members = Array.from({ length: channels }, (_, c) =>
  Array.from({ length: connections }, (_, i) => i).filter((i) => i % channels === c).length,
);
const expected = acked.reduce((sum, a, c) => sum + a.length * members[c], 0);
const drainUntil = now() + drain;
while (delivered < expected && now() < drainUntil) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
const cpuEnd = serverPids.length ? cpu() : null;
const serverCpu = cpuEnd ? cpuEnd.user + cpuEnd.system - cpuStart.user - cpuStart.system : null;
const serverSystemCpu = cpuEnd ? cpuEnd.system - cpuStart.system : null;
for (const socket of sockets) socket.close();

let lost = 0;
let duplicates = 0;
let outOfOrder = 0;
const latencies = [];
received.forEach((r, i) => {
  const unique = new Set(r.seqs);
  duplicates += r.seqs.length - unique.size;
  for (let k = 1; k < r.seqs.length; k++) if (r.seqs[k] < r.seqs[k - 1]) outOfOrder += 1;
  for (const seq of acked[i % channels]) if (!unique.has(seq)) lost += 1;
  for (const l of r.latencies) latencies.push(l);
});
latencies.sort((a, b) => a - b);
const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
const delivering = Math.max(lastDelivery - started, sending) / 1000;
const report = {
  scenario: "fanout",
  peer: "socket.io",
  connections,
  channels,
  duration_secs: sending / 1000,
  sent,
  acked: acked.reduce((s, a) => s + a.length, 0),
  delivered,
  expected_deliveries: expected,
  delivered_per_sec: delivered / delivering,
  sent_per_sec: sent / (sending / 1000),
  latency_ms: { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: latencies.at(-1) ?? 0 },
  lost,
  duplicates,
  out_of_order: outOfOrder,
  errors,
  server_cpu_secs: serverCpu,
  server_cpu_per_100k: serverCpu === null ? null : (serverCpu / Math.max(delivered, 1)) * 100000,
  server_system_cpu_per_100k:
    serverSystemCpu === null ? null : (serverSystemCpu / Math.max(delivered, 1)) * 100000,
};
console.log(JSON.stringify(report));
process.exit(0);
