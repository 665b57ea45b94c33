// The JS SDK in Node against a real node (no mocked socket).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import WebSocket from "ws";

import { Client, ConfabError, Media, User, UserDescriptor } from "../../web/sdk/confab.js";
import { Node, freePort } from "./node.mjs";
import { eventually, next } from "./wait.mjs";

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

/** A client of the service `serviceSid` (one created over REST) signed in as `identity`. */
async function connectTo(serviceSid, identity) {
  const client = await Client.create(node.token(identity, serviceSid), { url: node.url, WebSocket });
  clients.push(client);
  return client;
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

  // No read horizon yet: null, as in twilio-chat.
  assert.equal(await bobsLobby.getUnconsumedMessagesCount(), null);
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
  const shyLeft = next(shy, "channelLeft", (c) => c.sid === secret.sid);
  await shyChannel.decline();
  assert.equal(shyChannel.status, "notParticipating");
  await shyLeft;
  assert.ok(!(await shy.getSubscribedChannels()).items.some((c) => c.sid === secret.sid));

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

/** Calls `fn` with every `fetch` the SDK makes recorded (url, method, headers). */
async function recordingFetches(fn) {
  const calls = [];
  const original = globalThis.fetch;
  globalThis.fetch = (url, init = {}) => {
    calls.push({ url: String(url), method: init.method ?? "GET", headers: init.headers ?? {} });
    return original(url, init);
  };
  try {
    return await fn(calls);
  } finally {
    globalThis.fetch = original;
  }
}

/** The bytes at `url`, fetched without any credentials. */
async function bytesAt(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return {
    bytes: Buffer.from(await response.arrayBuffer()),
    contentType: response.headers.get("content-type"),
    disposition: response.headers.get("content-disposition"),
  };
}

/** The media resource `sid` fetched over HTTP with `token`: [status, JSON]. */
async function mediaResource(token, sid) {
  const serviceSid = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).grants.chat.service_sid;
  const response = await fetch(`${node.url}/v1/Services/${serviceSid}/Media/${sid}`, { headers: { "X-Twilio-Token": token } });
  return [response.status, await response.json()];
}

test("media messages: bytes, FormData and text are uploaded, delivered, fetched and paged", async () => {
  const alice = await connect("js-media-alice");
  const bob = await connect("js-media-bob");
  const room = await alice.createChannel({ uniqueName: "js-media" });
  await room.join();
  const bobs = await bob.getChannelByUniqueName("js-media");
  await bobs.join();
  const received = [];
  bobs.on("messageAdded", (m) => received.push(m));
  const arrived = (n) => (async () => {
    while (received.length < n) await new Promise((r) => setTimeout(r, 20));
  })();

  const bytes = randomBytes(70_000); // several TCP segments, and not valid UTF-8
  const form = new FormData();
  form.append("file", new Blob(["line one\nline two\n"], { type: "text/plain" }), "notes.txt");
  const sent = [
    [{ contentType: "application/octet-stream", media: bytes, filename: "random.bin" }, bytes, "application/octet-stream", "random.bin"],
    [form, Buffer.from("line one\nline two\n"), "text/plain", "notes.txt"],
    [{ contentType: "text/csv", media: "a,b\n1,2\n" }, Buffer.from("a,b\n1,2\n"), "text/csv", null],
  ];
  for (const [i, [message]] of sent.entries()) assert.equal(await room.sendMessage(message, { n: i }), i);
  assert.equal(await room.sendMessage("and some text"), 3);
  await arrived(4);

  for (const [i, [, content, contentType, filename]] of sent.entries()) {
    const m = received[i];
    assert.equal(m.index, i);
    assert.equal(m.author, "js-media-alice");
    assert.equal(m.type, "media");
    assert.deepEqual(m.attributes, { n: i });
    assert.ok(m.media instanceof Media);
    assert.match(m.media.sid, /^ME[0-9a-f]{32}$/);
    assert.equal(m.media.contentType, contentType);
    assert.equal(m.media.filename, filename);
    assert.equal(m.media.size, content.length);
    // The member reads the file through a URL that needs no credentials.
    const url = await m.media.getContentTemporaryUrl();
    assert.match(url, /[?&]Expires=\d+&Signature=/);
    const got = await bytesAt(url);
    assert.ok(got.bytes.equals(content), `bytes of message ${i}`);
    // The node serves only raster images under their own type; anything else comes as an
    // attachment, so that no upload can run as a page of the node's origin.
    assert.equal(got.contentType, "application/octet-stream");
  }
  assert.equal(received[3].type, "text");
  assert.equal(received[3].media, null);
  assert.equal(received[3].body, "and some text");

  // History carries the media too.
  const history = await bobs.getMessages();
  assert.deepEqual(history.items.map((m) => m.type), ["media", "media", "media", "text"]);
  assert.deepEqual(history.items.map((m) => m.media?.sid ?? null), [...received.slice(0, 3).map((m) => m.media.sid), null]);
  const fromHistory = await bytesAt(await history.items[0].media.getContentTemporaryUrl());
  assert.ok(fromHistory.bytes.equals(bytes));
  // The uploader reads it as well.
  const own = (await room.getMessages()).items[1];
  assert.equal(own.media.filename, "notes.txt");
  assert.ok((await bytesAt(await own.media.getContentTemporaryUrl())).bytes.equals(sent[1][1]));

  // The media request carries the client's current token: the one updateToken gave it.
  const fresh = await node.devToken("js-media-bob");
  await bob.updateToken(fresh);
  await recordingFetches(async (calls) => {
    await history.items[1].media.getContentTemporaryUrl();
    assert.equal(calls.length, 1);
    assert.equal(calls[0].method, "GET");
    assert.equal(calls[0].headers["X-Twilio-Token"], fresh);
    assert.ok(calls[0].url.startsWith(`${node.url}/v1/Services/IS`), calls[0].url);
  });
});

test("media is for the channel's members, and only its uploader attaches it, once", async () => {
  const ann = await connect("js-media-ann");
  const ben = await connect("js-media-ben");
  const eve = await connect("js-media-eve");
  const room = await ann.createChannel({ uniqueName: "js-media-private-ish" });
  await room.join();
  await (await ben.getChannelBySid(room.sid)).join();
  await room.sendMessage({ contentType: "image/png", media: new Uint8Array([137, 80, 78, 71]), filename: "x.png" });
  const [message] = (await room.getMessages()).items;

  // Someone outside the channel cannot read it: neither the resource nor its content.
  const [status, body] = await mediaResource(eve._token, message.media.sid);
  assert.equal(status, 404);
  assert.equal(body.code, 20404);
  await assert.rejects(
    new Media(eve, { sid: message.media.sid }).getContentTemporaryUrl(),
    (e) => e instanceof ConfabError && e.code === 20404 && e.status === 404,
  );
  const [ok, resource] = await mediaResource(ann._token, message.media.sid);
  assert.equal(ok, 200);
  assert.equal(resource.sid, message.media.sid);
  assert.equal(resource.message_sid, message.sid);
  assert.equal(resource.channel_sid, room.sid);
  const png = await bytesAt(await message.media.getContentTemporaryUrl());
  assert.equal(png.contentType, "image/png");
  assert.match(png.disposition, /^inline/);
  assert.equal((await fetch(resource.links.content)).status, 401, "links.content needs credentials");
  const forged = resource.links.content_direct_temporary.replace(/Signature=[^&]+/, "Signature=forged");
  assert.notEqual((await fetch(forged)).status, 200, "a forged signature is refused");

  // Ben may not send Ann's file, not even one she has not sent yet.
  const unsent = await ann._uploadMedia({ contentType: "text/plain", media: "ann's", filename: "ann.txt" });
  for (const sid of [message.media.sid, unsent.sid]) {
    await assert.rejects(
      ben._request("sendMessage", { channel: room.sid, mediaSid: sid, clientId: `ben-${sid}` }),
      (e) => e instanceof ConfabError && e.code === 20404,
    );
  }
  // Ann may send her own upload once; a second message with it is refused.
  await ann._request("sendMessage", { channel: room.sid, mediaSid: unsent.sid, clientId: "ann-1" });
  await assert.rejects(
    ann._request("sendMessage", { channel: room.sid, mediaSid: unsent.sid, clientId: "ann-2" }),
    (e) => e instanceof ConfabError && e.code === 50511 && e.status === 409,
  );
  assert.equal(await room.getMessagesCount(), 2);

  // Refused uploads reject with the node's error, and send nothing.
  await assert.rejects(
    room.sendMessage({ contentType: "not a type", media: "x" }),
    (e) => e instanceof ConfabError && e.code === 20001 && e.status === 400,
  );
  await assert.rejects(room.sendMessage({ media: new Uint8Array([1]) }), (e) => e instanceof ConfabError && e.status === 400);
  await assert.rejects(room.sendMessage({ contentType: "text/plain" }), (e) => e instanceof ConfabError && e.status === 400);
  assert.equal(await room.getMessagesCount(), 2);
});

test("a media message survives a dropped connection: one upload, one message", async () => {
  const sender = await connect("js-media-sender");
  const reader = await connect("js-media-reader");
  const room = await sender.createChannel({ uniqueName: "js-media-resume" });
  await room.join();
  const readers = await reader.getChannelBySid(room.sid);
  await readers.join();
  const seen = [];
  readers.on("messageAdded", (m) => seen.push(m));

  // The network drops right after the message frame goes out, before its reply.
  const send = sender._send.bind(sender);
  let dropped = false;
  let sends = 0;
  sender._send = (call) => {
    send(call);
    if (call.op === "sendMessage") sends += 1;
    if (call.op === "sendMessage" && !dropped) {
      dropped = true;
      sender._ws.terminate();
    }
  };
  const content = randomBytes(1000);
  const index = await recordingFetches(async (calls) => {
    const index = await room.sendMessage({ contentType: "application/octet-stream", media: content, filename: "r.bin" });
    assert.deepEqual(calls.map((c) => c.method), ["POST"], "the file is uploaded once");
    return index;
  });
  assert.equal(sends, 2, "the message was sent again after the reconnect");
  assert.equal(index, 0);
  while (seen.length < 1) await new Promise((r) => setTimeout(r, 20));
  await room.sendMessage("after");
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.map((m) => [m.index, m.type]), [[0, "media"], [1, "text"]]);
  assert.ok((await bytesAt(await seen[0].media.getContentTemporaryUrl())).bytes.equals(content));
});

test("a refused token rejects Client.create", async () => {
  await assert.rejects(
    Client.create("not-a-token", { url: node.url, WebSocket }),
    (e) => e instanceof ConfabError && e.code === 51007,
  );
});

/** Two clients, both members of a fresh channel: [aClient, aChannel, bClient, bChannel]. */
async function pair(a, b, uniqueName) {
  const aClient = await connect(a);
  const bClient = await connect(b);
  const aChannel = await aClient.createChannel({ uniqueName });
  await aChannel.join();
  const bChannel = await bClient.getChannelBySid(aChannel.sid);
  const joined = next(aChannel, "memberJoined", (m) => m.identity === b);
  await bChannel.join();
  await joined;
  return [aClient, aChannel, bClient, bChannel];
}

test("a Channel emits updated with updateReasons, and removed when deleted", async () => {
  const [, room, bob, bobs] = await pair("js-ch-alice", "js-ch-bob", "js-channel-events");
  // Both the new object event and the existing channelUpdated events, with the same payload.
  const updated = next(bobs, "updated");
  const onChannel = next(bobs, "channelUpdated");
  const onClient = next(bob, "channelUpdated", (e) => e.channel.sid === room.sid);
  await room.updateFriendlyName("Renamed");
  const args = await updated;
  assert.equal(args.channel, bobs, "the Channel object bob already holds");
  assert.ok(args.updateReasons.includes("friendlyName"), JSON.stringify(args.updateReasons));
  assert.ok(!args.updateReasons.includes("attributes"));
  assert.equal(bobs.friendlyName, "Renamed");
  assert.equal(await onChannel, args);
  assert.equal(await onClient, args);

  const attributes = next(bobs, "updated");
  await room.updateAttributes({ topic: "events" });
  const second = await attributes;
  assert.ok(second.updateReasons.includes("attributes"), JSON.stringify(second.updateReasons));
  assert.ok(!second.updateReasons.includes("friendlyName"));
  assert.deepEqual(bobs.attributes, { topic: "events" });

  const removed = next(bobs, "removed");
  const channelRemoved = next(bob, "channelRemoved", (c) => c.sid === room.sid);
  await room.delete();
  assert.equal(await removed, bobs);
  assert.equal(await channelRemoved, bobs);
  assert.equal(bobs.status, "notParticipating");
});

test("a Member object from getMemberByIdentity emits updated when its read horizon moves", async () => {
  const [, room, , bobs] = await pair("js-mem-alice", "js-mem-bob", "js-member-events");
  await room.sendMessage("read me");
  await room.sendMessage("and me");
  const bob = await room.getMemberByIdentity("js-mem-bob");
  assert.equal(bob.lastConsumedMessageIndex, null);
  const updated = next(bob, "updated");
  const onChannel = next(room, "memberUpdated", (e) => e.member.identity === "js-mem-bob");
  await bobs.advanceLastConsumedMessageIndex(1);
  const args = await updated;
  assert.equal(args.member, bob, "the object getMemberByIdentity returned");
  assert.ok(args.updateReasons.includes("lastConsumedMessageIndex"), JSON.stringify(args.updateReasons));
  assert.equal(bob.lastConsumedMessageIndex, 1);
  assert.equal(await onChannel, args);
  // The channel hands out the same objects from then on.
  assert.equal((await room.getMembers()).find((m) => m.identity === "js-mem-bob"), bob);
  assert.equal(await room.getMemberBySid(bob.sid), bob);
});

test("a Message object from messageAdded emits updated when its author edits it", async () => {
  const [, room, , bobs] = await pair("js-msg-alice", "js-msg-bob", "js-message-events");
  const mineAdded = next(room, "messageAdded");
  const theirsAdded = next(bobs, "messageAdded");
  await room.sendMessage("first draft");
  const mine = await mineAdded;
  const theirs = await theirsAdded;
  // History hands out the objects messageAdded did.
  assert.equal((await bobs.getMessages()).items[0], theirs);

  const mineUpdated = next(mine, "updated");
  const theirsUpdated = next(theirs, "updated");
  const onChannel = next(bobs, "messageUpdated");
  await mine.updateBody("final");
  const args = await theirsUpdated;
  assert.equal(args.message, theirs, "the object bob got from messageAdded");
  assert.ok(args.updateReasons.includes("body"), JSON.stringify(args.updateReasons));
  assert.equal(theirs.body, "final");
  assert.equal(await onChannel, args);
  const own = await mineUpdated;
  assert.equal(own.message, mine);
  assert.equal(mine.body, "final");
});

test("client.user and getUser() objects emit updated on userUpdated", async () => {
  const [fay, , gus] = await pair("js-user-fay", "js-user-gus", "js-user-events");
  const fayForGus = await gus.getUser("js-user-fay");
  assert.equal(await gus.getUser("js-user-fay"), fayForGus, "one User object per identity");
  assert.equal(await fay.getUser("js-user-fay"), fay.user);

  const byName = (e) => e.updateReasons.includes("friendlyName");
  const own = next(fay.user, "updated", byName);
  const ownOnClient = next(fay, "userUpdated", byName);
  const seenByGus = next(fayForGus, "updated", byName);
  await fay.user.updateFriendlyName("Fay F.");
  const args = await own;
  assert.equal(args.user, fay.user);
  assert.equal(fay.user.friendlyName, "Fay F.");
  assert.equal(fay.user.identity, "js-user-fay");
  // The client's event carries the User object, as twilio-chat's does.
  assert.equal(await ownOnClient, args);
  const theirs = await seenByGus;
  assert.equal(theirs.user, fayForGus);
  assert.equal(fayForGus.friendlyName, "Fay F.");

  // Only the signed-in user can be edited.
  await assert.rejects(fayForGus.updateFriendlyName("not mine"), (e) => e instanceof ConfabError && e.status === 400);
});

test("new Client(token) connects and emits stateChanged initialized", async () => {
  const client = new Client(await node.devToken("js-new-client"), { url: node.url, WebSocket });
  clients.push(client);
  assert.equal(client.state, "uninitialized");
  const states = [];
  client.on("stateChanged", (s) => states.push(s));
  const errors = [];
  client.on("connectionError", (e) => errors.push(e));
  await next(client, "stateChanged");
  assert.deepEqual(states, ["initialized"]);
  assert.equal(client.state, "initialized");
  assert.equal(client.connectionState, "connected");
  assert.equal(client.user.identity, "js-new-client");
  assert.deepEqual(errors, []);
  const room = await client.createChannel({ uniqueName: "js-new-client-room" });
  assert.equal((await room.join()).status, "joined");
});

test("new Client with a refused token emits connectionError (terminal) and stateChanged failed", async () => {
  const client = new Client("not-a-token", { url: node.url, WebSocket });
  const errors = [];
  client.on("connectionError", (e) => errors.push(e));
  const connection = [];
  client.on("connectionStateChanged", (s) => connection.push(s));
  assert.equal(await next(client, "stateChanged"), "failed");
  assert.equal(client.state, "failed");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].terminal, true);
  assert.equal(errors[0].errorCode, 51007);
  assert.equal(errors[0].httpStatusCode, 401);
  assert.equal(typeof errors[0].message, "string");
  assert.ok(connection.includes("denied"));
  await assert.rejects(client.getSubscribedChannels(), (e) => e instanceof ConfabError);

  // Nothing listening: each failed attempt is reported, not terminal, and the client retries.
  const down = new Client(await node.devToken("js-nobody-home"), {
    url: `http://127.0.0.1:${await freePort()}`,
    WebSocket,
    backoffMinMs: 20,
    backoffMaxMs: 50,
  });
  try {
    const first = await next(down, "connectionError");
    assert.equal(first.terminal, false);
    assert.equal(first.httpStatusCode, null);
    assert.equal(first.errorCode, null);
    const second = await next(down, "connectionError");
    assert.equal(second.terminal, false);
    assert.equal(down.state, "uninitialized");
  } finally {
    await down.shutdown();
  }
});

test("member attributes from the client: one's own, another's only with editAnyMemberAttributes", async () => {
  // Alice created and joined the channel (channel admin); Bob is a plain channel user.
  const [, room, , bobs] = await pair("js-mattr-alice", "js-mattr-bob", "js-member-attributes");
  const bobForAlice = await room.getMemberByIdentity("js-mattr-bob");
  const bobForBob = await bobs.getMemberByIdentity("js-mattr-bob");

  // Bob edits his own: it resolves with his Member object, and Alice's object for him updates.
  const seenByAlice = next(bobForAlice, "updated", (e) => e.updateReasons.includes("attributes"));
  const onChannel = next(room, "memberUpdated", (e) => e.member.identity === "js-mattr-bob");
  assert.equal(await bobForBob.updateAttributes({ status: "away" }), bobForBob);
  assert.deepEqual(bobForBob.attributes, { status: "away" });
  const args = await seenByAlice;
  assert.equal(args.member, bobForAlice);
  assert.ok(args.updateReasons.includes("attributes"), JSON.stringify(args.updateReasons));
  assert.deepEqual(bobForAlice.attributes, { status: "away" });
  assert.equal(await onChannel, args);

  // Bob may not edit Alice's (editAnyMemberAttributes): refused, nothing changes.
  const aliceForBob = await bobs.getMemberByIdentity("js-mattr-alice");
  await assert.rejects(
    aliceForBob.updateAttributes({ hacked: true }),
    (e) => e instanceof ConfabError && e.code === 50107 && e.status === 403,
  );
  assert.deepEqual((await room.getMemberByIdentity("js-mattr-alice")).attributes, {});

  // Alice, the channel admin, may edit Bob's; Bob's own object follows.
  const seenByBob = next(bobForBob, "updated", (e) => e.updateReasons.includes("attributes"));
  await bobForAlice.updateAttributes({ status: "muted by admin", level: 2 });
  assert.deepEqual(bobForAlice.attributes, { status: "muted by admin", level: 2 });
  assert.equal((await seenByBob).member, bobForBob);
  assert.deepEqual(bobForBob.attributes, { status: "muted by admin", level: 2 });
});

test("setUserNotificationLevel: muted and read back, a bad level refused before sending", async () => {
  const [alice, , bob, bobs] = await pair("js-level-alice", "js-level-bob", "js-notification-level");
  assert.equal(bobs.notificationLevel, "default");
  const updated = next(bobs, "updated", (e) => e.updateReasons.includes("notificationLevel"));
  // Bob's level is his own business: alice hears nothing of it.
  let told = false;
  alice.on("memberUpdated", (e) => {
    if (e.updateReasons.includes("notificationLevel")) told = true;
  });
  // Bob's other session (another tab) hears of it as a change of its channel.
  const otherTab = await connect("js-level-bob");
  const otherTabs = await otherTab.getChannelBySid(bobs.sid);
  const heardThere = next(otherTabs, "updated", (e) => e.updateReasons.includes("notificationLevel"));
  let updatesHere = 0;
  bobs.on("updated", (e) => {
    if (e.updateReasons.includes("notificationLevel")) updatesHere += 1;
  });
  assert.equal(await bobs.setUserNotificationLevel("muted"), undefined);
  assert.equal(bobs.notificationLevel, "muted");
  assert.equal((await updated).channel, bobs);
  await heardThere;
  assert.equal(otherTabs.notificationLevel, "muted");
  await otherTab.shutdown();
  // The client's Channel object is the one that shows it, and the node keeps it: a new
  // session of bob's reads it back.
  assert.equal((await bob.getChannelBySid(bobs.sid)).notificationLevel, "muted");
  const again = await connect("js-level-bob");
  assert.equal((await again.getChannelBySid(bobs.sid)).notificationLevel, "muted");
  await again.shutdown();
  // A message after the change arrives after any memberUpdated would have.
  const seen = next(alice, "messageAdded");
  await bobs.sendMessage("still here");
  await seen;
  assert.equal(told, false, "alice was told of bob's notification level");
  assert.equal(updatesHere, 1, "the session that set it emits updated once");

  const ops = [];
  const send = bob._send.bind(bob);
  bob._send = (call) => {
    ops.push(call.op);
    send(call);
  };
  try {
    await assert.rejects(bobs.setUserNotificationLevel("loud"), (e) => e instanceof ConfabError && e.status === 400);
    await assert.rejects(bobs.setUserNotificationLevel(undefined), (e) => e instanceof ConfabError && e.status === 400);
    assert.deepEqual(ops, [], "nothing was sent");
    assert.equal(bobs.notificationLevel, "muted");
    await bobs.setUserNotificationLevel("default");
    assert.deepEqual(ops, ["setNotificationLevel"]);
    assert.equal(bobs.notificationLevel, "default");
  } finally {
    bob._send = send;
  }
});

test("reachability: online and notifiable are null while off, tracked once ReachabilityEnabled", async () => {
  const service = await node.createService("js reachability");
  const ann = await connectTo(service, "js-reach-ann");
  const ben = await connectTo(service, "js-reach-ben");

  // Off (a new service's default): no online status anywhere.
  assert.equal(ann.reachabilityEnabled, false);
  assert.equal(ann.user.online, null);
  assert.equal(ann.user.isNotifiable, null);
  const benForAnn = await ann.getUser("js-reach-ben");
  assert.equal(benForAnn.online, null);
  assert.equal(benForAnn.isOnline, null);
  assert.equal(benForAnn.notifiable, null);
  assert.equal(benForAnn.isNotifiable, null);
  assert.equal((await ann.getUserDescriptor("js-reach-ben")).online, null);
  const offRest = await node.rest(`/v2/Services/${service}/Users/js-reach-ben`);
  assert.equal(offRest.is_online, null);
  assert.equal(offRest.is_notifiable, null);

  // On: clients connecting from then on see it.
  await node.rest(`/v2/Services/${service}`, { ReachabilityEnabled: "true" });
  const cal = await connectTo(service, "js-reach-cal");
  assert.equal(cal.reachabilityEnabled, true);
  assert.equal(cal.user.online, true);
  const benForCal = await cal.getUser("js-reach-ben");
  assert.equal(benForCal.online, true);
  assert.equal(benForCal.isOnline, true);
  assert.equal(benForCal.notifiable, false);
  assert.equal(benForCal.isNotifiable, false);
  const descriptor = await cal.getUserDescriptor("js-reach-ben");
  assert.equal(descriptor.online, true);
  assert.equal(descriptor.notifiable, false);
  const onRest = await node.rest(`/v2/Services/${service}/Users/js-reach-ben`);
  assert.equal(onRest.is_online, true);
  assert.equal(onRest.is_notifiable, false);

  // Ben signs out: offline.
  await ben.shutdown();
  await eventually(async () => (await cal.getUser("js-reach-ben")).online === false, "ben offline");
  assert.equal((await node.rest(`/v2/Services/${service}/Users/js-reach-ben`)).is_online, false);
});

test("getUserDescriptor, getSubscribedUsers and channel.getUserDescriptors", async () => {
  const [amy, room, bea] = await pair("js-ud-amy", "js-ud-bea", "js-user-descriptors");
  const cyd = await connect("js-ud-cyd");
  await (await cyd.getChannelBySid(room.sid)).join();
  await bea.user.updateFriendlyName("Bea B.");
  assert.deepEqual(await amy.getSubscribedUsers(), [amy.user]);

  // A descriptor is a snapshot: it subscribes to nothing.
  const descriptor = await amy.getUserDescriptor("js-ud-bea");
  assert.ok(descriptor instanceof UserDescriptor);
  assert.equal(descriptor.identity, "js-ud-bea");
  assert.equal(descriptor.friendlyName, "Bea B.");
  assert.deepEqual(descriptor.attributes, {});
  assert.equal(descriptor.online, true, "the development service has reachability on");
  assert.equal(descriptor.notifiable, false);
  assert.deepEqual(await amy.getSubscribedUsers(), [amy.user]);

  // subscribe() gives the client's User object, which is then among the subscribed users.
  const beaUser = await descriptor.subscribe();
  assert.ok(beaUser instanceof User);
  assert.equal(beaUser.friendlyName, "Bea B.");
  assert.equal(await amy.getUser("js-ud-bea"), beaUser);
  assert.equal(beaUser.isSubscribed, true);
  const cydUser = await (await room.getMemberByIdentity("js-ud-cyd")).getUser();
  assert.equal(cydUser.identity, "js-ud-cyd");
  assert.deepEqual(await amy.getSubscribedUsers(), [amy.user, beaUser, cydUser]);
  await beaUser.unsubscribe();
  assert.equal(beaUser.isSubscribed, false);
  assert.deepEqual(await amy.getSubscribedUsers(), [amy.user, cydUser]);
  assert.equal((await (await room.getMemberByIdentity("js-ud-bea")).getUserDescriptor()).identity, "js-ud-bea");

  // The channel's members as descriptors, paged.
  const all = await room.getUserDescriptors();
  assert.ok(all.items.every((d) => d instanceof UserDescriptor));
  assert.deepEqual(all.items.map((d) => d.identity).sort(), ["js-ud-amy", "js-ud-bea", "js-ud-cyd"]);
  assert.equal(all.items.find((d) => d.identity === "js-ud-bea").friendlyName, "Bea B.");
  assert.ok(!all.hasNextPage && !all.hasPrevPage);
  const first = await room.getUserDescriptors(2);
  assert.equal(first.items.length, 2);
  assert.ok(first.hasNextPage && !first.hasPrevPage);
  const second = await first.nextPage();
  assert.equal(second.items.length, 1);
  assert.ok(!second.hasNextPage && second.hasPrevPage);
  assert.deepEqual(
    [...first.items, ...second.items].map((d) => d.identity).sort(),
    ["js-ud-amy", "js-ud-bea", "js-ud-cyd"],
  );
  assert.deepEqual((await second.prevPage()).items.map((d) => d.identity), first.items.map((d) => d.identity));
});

test("getUnconsumedMessagesCount is null before any read horizon, then a number", async () => {
  const [, room, , bobs] = await pair("js-unread-alice", "js-unread-bob", "js-unread-null");
  assert.equal(await bobs.getUnconsumedMessagesCount(), null);
  await room.sendMessage("one");
  await room.sendMessage("two");
  assert.equal(await bobs.getUnconsumedMessagesCount(), null, "messages, but still no read horizon");
  assert.equal(await bobs.setAllMessagesConsumed(), 0);
  assert.equal(await bobs.getUnconsumedMessagesCount(), 0);
  await room.sendMessage("three");
  assert.equal(await bobs.getUnconsumedMessagesCount(), 1);
});

test("service settings apply at once: Limits.ChannelMembers lowered refuses the next join", async () => {
  const service = await node.createService("js live limits");
  const [a, b, c] = [await connectTo(service, "js-lim-a"), await connectTo(service, "js-lim-b"), await connectTo(service, "js-lim-c")];
  const room = await a.createChannel({ uniqueName: "js-limits" });
  await room.join();
  await (await b.getChannelBySid(room.sid)).join();
  const cs = await c.getChannelBySid(room.sid); // the channel is loaded and in use

  await node.rest(`/v2/Services/${service}`, { "Limits.ChannelMembers": "2" });
  await assert.rejects(cs.join(), (e) => e instanceof ConfabError && e.code === 50403);
  assert.equal(await room.getMembersCount(), 2);

  await node.rest(`/v2/Services/${service}`, { "Limits.ChannelMembers": "3" });
  assert.equal((await cs.join()).status, "joined");
  assert.equal(await room.getMembersCount(), 3);
});

test("service settings apply at once: TypingIndicatorTimeout lowered to 1 s for a connected client", async () => {
  const service = await node.createService("js live typing");
  const a = await connectTo(service, "js-typ-a");
  const b = await connectTo(service, "js-typ-b");
  const room = await a.createChannel({ uniqueName: "js-typing" });
  await room.join();
  const bs = await b.getChannelBySid(room.sid);
  const joined = next(room, "memberJoined", (m) => m.identity === "js-typ-b");
  await bs.join();
  await joined;

  // The default is 5 s; lowered while both are connected and the channel is loaded.
  await node.rest(`/v2/Services/${service}`, { TypingIndicatorTimeout: "1" });
  const started = next(room, "typingStarted", (m) => m.identity === "js-typ-b");
  const ended = next(room, "typingEnded", (m) => m.identity === "js-typ-b");
  const since = Date.now();
  await bs.typing();
  await started;
  await ended;
  const elapsed = Date.now() - since;
  assert.ok(elapsed < 4000, `typingEnded after ${elapsed} ms (the default timeout is 5 s)`);
});
