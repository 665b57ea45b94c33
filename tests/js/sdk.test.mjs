// The JS SDK in Node against a real node (no mocked socket).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import WebSocket from "ws";

import { Client, ConfabError } from "../../web/sdk/confab.js";
import { Node } from "./node.mjs";

let node;
const clients = [];

before(async () => {
  node = await new Node().start();
});

after(async () => {
  for (const c of clients) await c.shutdown();
  await node.stop();
});

async function connect(identity) {
  const client = await Client.create(await node.devToken(identity), { url: node.url, WebSocket });
  clients.push(client);
  return client;
}

/** The next `event` from `emitter` matching `pred`; the timeout only stops a broken test hanging. */
function next(emitter, event, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event}`)), 20000);
    const handler = (payload) => {
      if (!pred(payload)) return;
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(payload);
    };
    emitter.on(event, handler);
  });
}

test("create, discover, join and chat both ways with events", async () => {
  const alice = await connect("js-alice");
  const bob = await connect("js-bob");
  assert.equal(alice.user.identity, "js-alice");
  assert.equal(alice.connectionState, "connected");

  const lobby = await alice.createChannel({ friendlyName: "Lobby", uniqueName: "js-lobby" });
  assert.equal(lobby.status, "notParticipating");
  await lobby.join();
  assert.equal(lobby.status, "joined");

  const descriptors = await bob.getPublicChannelDescriptors();
  const descriptor = descriptors.items.find((d) => d.uniqueName === "js-lobby");
  assert.ok(descriptor, "the public channel is discoverable");
  const bobsLobby = await descriptor.getChannel();
  const joined = next(lobby, "memberJoined", (m) => m.identity === "js-bob");
  await bobsLobby.join();
  await joined;

  const toBob = next(bobsLobby, "messageAdded", (m) => m.author === "js-alice");
  assert.equal(await lobby.sendMessage("hello bob", { mood: "happy" }), 0);
  const received = await toBob;
  assert.equal(received.body, "hello bob");
  assert.deepEqual(received.attributes, { mood: "happy" });

  const toAlice = next(lobby, "messageAdded", (m) => m.author === "js-bob");
  await bobsLobby.sendMessage("hi alice");
  assert.equal((await toAlice).body, "hi alice");

  const typing = next(lobby, "typingStarted", (m) => m.identity === "js-bob");
  await bobsLobby.typing();
  assert.equal((await typing).identity, "js-bob");

  assert.equal(await bobsLobby.getUnconsumedMessagesCount(), 2);
  assert.equal(await bobsLobby.advanceLastConsumedMessageIndex(0), 1);
  assert.equal(await bobsLobby.setAllMessagesConsumed(), 0);
  assert.equal(await bobsLobby.setNoMessagesConsumed(), 2);
  assert.equal(await bobsLobby.updateLastConsumedMessageIndex(1), 0);
  assert.equal(await bobsLobby.getMessagesCount(), 2);
  assert.equal(await bobsLobby.getMembersCount(), 2);
  assert.deepEqual((await bobsLobby.getMembers()).map((m) => m.identity).sort(), ["js-alice", "js-bob"]);

  const subscribed = await bob.getSubscribedChannels();
  assert.ok(subscribed.items.some((c) => c.sid === lobby.sid));
  const mine = await bob.getUserChannelDescriptors();
  assert.ok(mine.items.some((c) => c.sid === lobby.sid));
});

test("messages page with a paginator, edit and remove", async () => {
  const carol = await connect("js-carol");
  const room = await carol.createChannel({ uniqueName: "js-history" });
  await room.join();
  for (let i = 0; i < 25; i++) await room.sendMessage(`m${i}`);
  const newest = await room.getMessages(10);
  assert.deepEqual(newest.items.map((m) => m.index), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  assert.ok(newest.hasPrevPage && !newest.hasNextPage);
  const older = await newest.prevPage();
  assert.deepEqual(older.items.map((m) => m.index), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  const newer = await older.nextPage();
  assert.deepEqual(newer.items.map((m) => m.index), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);

  const message = newest.items[0];
  const updated = next(room, "messageUpdated");
  await message.updateBody("edited");
  assert.equal(message.body, "edited");
  assert.deepEqual((await updated).updateReasons.includes("body"), true);
  const removed = next(room, "messageRemoved");
  await message.remove();
  assert.equal((await removed).index, 15);
  assert.equal(await room.getMessagesCount(), 24);

  await room.updateFriendlyName("History");
  assert.equal(room.friendlyName, "History");
  await room.updateAttributes({ pinned: true });
  assert.deepEqual(room.attributes, { pinned: true });
  await room.updateUniqueName("js-history-2");
  assert.equal((await carol.getChannelByUniqueName("js-history-2")).sid, room.sid);
});

test("private channels: invite, accept by joining, decline", async () => {
  const owner = await connect("js-owner");
  const guest = await connect("js-guest");
  const shy = await connect("js-shy");
  const secret = await owner.createChannel({ uniqueName: "js-secret", isPrivate: true });
  await secret.join();
  await assert.rejects(guest.getChannelByUniqueName("js-secret"), (e) => e instanceof ConfabError && e.code === 50300);

  const invited = next(guest, "channelInvited");
  await secret.invite("js-guest");
  const invitation = await invited;
  assert.equal(invitation.status, "invited");
  const joined = next(guest, "channelJoined");
  await invitation.join();
  assert.equal((await joined).sid, secret.sid);

  const shyInvited = next(shy, "channelInvited");
  await secret.invite("js-shy");
  const shyChannel = await shyInvited;
  await shyChannel.decline();
  assert.equal(shyChannel.status, "notParticipating");

  const left = next(secret, "memberLeft", (m) => m.identity === "js-guest");
  await secret.removeMember("js-guest");
  await left;
  const removed = next(owner, "channelRemoved");
  await secret.delete();
  assert.equal((await removed).sid, secret.sid);
});

test("errors carry Twilio codes", async () => {
  const dan = await connect("js-dan");
  const other = await connect("js-other");
  const room = await other.createChannel({ uniqueName: "js-errors" });
  await room.join();
  const dans = await dan.getChannelBySid(room.sid);
  await assert.rejects(dans.sendMessage("hi"), (e) => e.code === 50400);
  await assert.rejects(dans.delete(), (e) => e.code === 50107);
  await assert.rejects(dan.createChannel({ uniqueName: "js-errors" }), (e) => e.code === 50307);
});

test("a pre-event webhook's refusal rejects with Twilio's code, and nothing is sent", async () => {
  // A real HTTP server as the service's pre-event webhook: it refuses every message.
  const calls = [];
  const hook = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      calls.push(new URLSearchParams(body));
      res.writeHead(403);
      res.end();
    });
  });
  await new Promise((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const erin = await connect("js-erin");
  const room = await erin.createChannel({ uniqueName: "js-moderated" });
  await room.join();
  const { serviceSid } = await (
    await fetch(`${node.url}/dev/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ identity: "js-erin" }),
    })
  ).json();
  await node.rest(`/v2/Services/${serviceSid}`, {
    PreWebhookUrl: `http://127.0.0.1:${hook.address().port}/pre`,
    WebhookFilters: "onMessageSend",
  });
  try {
    await assert.rejects(room.sendMessage("spam"), (e) => e instanceof ConfabError && e.code === 50056);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].get("EventType"), "onMessageSend");
    assert.equal(calls[0].get("Body"), "spam");
    assert.equal((await room.getMessages()).items.length, 0);
  } finally {
    await node.rest(`/v2/Services/${serviceSid}`, { PreWebhookUrl: "" });
    hook.close();
  }
});

test("a dropped connection reconnects and resumes every missed message once", async () => {
  const sender = await connect("js-sender");
  const reader = await connect("js-reader");
  const room = await sender.createChannel({ uniqueName: "js-resume" });
  await room.join();
  const readers = await reader.getChannelByUniqueName("js-resume");
  await readers.join();
  const seen = [];
  readers.on("messageAdded", (m) => seen.push(m.body));
  await room.sendMessage("before");
  while (!seen.includes("before")) await new Promise((r) => setTimeout(r, 20));

  const reconnected = next(reader, "connectionStateChanged", (s) => s === "connected");
  reader._ws.terminate(); // the network drops: no close handshake
  for (let i = 0; i < 20; i++) await room.sendMessage(`missed ${i}`);
  await reconnected;
  while (seen.length < 21) await new Promise((r) => setTimeout(r, 20));
  await room.sendMessage("after");
  while (seen.length < 22) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, ["before", ...Array.from({ length: 20 }, (_, i) => `missed ${i}`), "after"]);
});

test("a refused token rejects Client.create", async () => {
  await assert.rejects(
    Client.create("not-a-token", { url: node.url, WebSocket }),
    (e) => e instanceof ConfabError && e.code === 51007,
  );
});
