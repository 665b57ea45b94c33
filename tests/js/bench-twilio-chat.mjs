// What a twilio-chat (twilsock) receiver costs the node beside a Confab SDK receiver: one
// Confab SDK client sends N messages one after another into a channel with one receiver of
// each kind in turn (alternating, twice), and the node's CPU time is read from /proc.
// Not part of the test command: `node tests/js/bench-twilio-chat.mjs` (N=1000 by default,
// CONFAB_BIN for the binary, as the tests).

import { readFileSync } from "node:fs";
import WebSocket from "ws";
import twilioChat from "twilio-chat";

import { Client as ConfabClient } from "../../web/sdk/confab.js";
import { Node } from "./node.mjs";

const N = Number(process.env.N ?? 1000);

/** The process's user + system CPU seconds. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// The sender is not rate-limited: the run measures delivery, not the limit.
const node = await new Node({
  env: { CONFAB_REALTIME_OPS_PER_SEC: "1000000", CONFAB_REALTIME_OPS_BURST: "1000000" },
}).start();
const service = await node.createService("bench");
const { host } = new URL(node.url);
const twilioOptions = {
  twilsock: { uri: `ws://${host}/v3/wsconnect` },
  Sync: { cdsUri: `http://${host}/cds` },
  Chat: { apiUri: `http://${host}/aim` },
  logLevel: "silent",
};
const sender = await ConfabClient.create(node.token("sender", service), { url: node.url, WebSocket });
const results = { "confab": [], "twilio-chat": [] };
for (const [round, kind] of ["confab", "twilio-chat", "confab", "twilio-chat"].entries()) {
  const channel = await sender.createChannel({ friendlyName: `${kind} ${round}` });
  await channel.join();
  const identity = `receiver-${round}`;
  const receiver =
    kind === "confab"
      ? await ConfabClient.create(node.token(identity, service), { url: node.url, WebSocket })
      : await twilioChat.Client.create(node.token(identity, service), twilioOptions);
  const theirs = await receiver.getChannelBySid(channel.sid);
  await theirs.join();
  if (kind === "twilio-chat") await theirs.getMembers(); // follows the channel
  let received = 0;
  const all = new Promise((resolve) =>
    theirs.on("messageAdded", () => {
      if (++received === N) resolve();
    }),
  );
  const cpu0 = cpuSeconds(node.proc.pid);
  const t0 = Date.now();
  for (let i = 0; i < N; i++) await channel.sendMessage(`message ${i}`);
  await all;
  const cpu = cpuSeconds(node.proc.pid) - cpu0;
  results[kind].push(cpu);
  console.log(`${kind} receiver: ${N} messages in ${Date.now() - t0} ms, node ${cpu.toFixed(2)} CPU-s, ${((cpu * 1e6) / N).toFixed(0)} µs per message`);
  await receiver.shutdown();
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`node CPU, twilio-chat receiver / Confab SDK receiver: ${(mean(results["twilio-chat"]) / mean(results.confab)).toFixed(2)}`);
await sender.shutdown();
await node.stop();
