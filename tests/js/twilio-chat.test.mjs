// Twilio's own client, `twilio-chat` 6.0.0 from the npm registry (pinned in the lockfile, not
// patched), against real Confab nodes over the twilsock transport, created with only the three
// options docs/migrating-from-twilio.md names: the "Channels and Messages" guide of Programmable
// Chat, then the read horizon, attributes, media, token update, a node restart, a client of
// Confab's own SDK in the same channel, and a three-node cluster.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import twilioChat from "twilio-chat";

import { Client as ConfabClient } from "../../web/sdk/confab.js";
import { Node, RedisServer } from "./node.mjs";
import { eventually, next } from "./wait.mjs";

const { Client } = twilioChat;

let node;
let service;
const clients = [];

before(async () => {
  node = await new Node().start();
  service = await node.createService("twilio-chat");
});

after(async () => {
  for (const c of clients) await c.shutdown().catch(() => {});
  await node.stop();
});

/** The only options a migrated app changes: where twilsock, Sync and the chat API are. */
function twilioOptions(target) {
  const { host } = new URL(target.url);
  return {
    twilsock: { uri: `ws://${host}/v3/wsconnect` },
    Sync: { cdsUri: `http://${host}/cds` },
    Chat: { apiUri: `http://${host}/aim` },
    logLevel: process.env.TWILIO_CHAT_LOG ?? "silent",
  };
}

/** A twilio-chat client of `serviceSid` on `target` signed in as `identity`. `Client.create`
 * resolves even when initialization failed, so the state and the user are checked. */
async function connect(identity, { target = node, serviceSid = service } = {}) {
  const client = await Client.create(target.token(identity, serviceSid), twilioOptions(target));
  clients.push(client);
  assert.equal(client.connectionState, "connected", `${identity} connected`);
  assert.equal(client.user.identity, identity);
  return client;
}

const unique = (prefix) => `${prefix}-${randomBytes(4).toString("hex")}`;

/** Joins `channel` and waits until the client follows it (its members and messages loaded and
 * subscribed), as an app showing the channel does. twilio-chat's `join()` resolves before
 * that; what happens in between arrives as state rather than as events. */
async function joinAndFollow(channel) {
  await channel.join();
  await channel.getMembers();
  return channel;
}

/** The guide's flow between two clients (possibly on different nodes): create, discover, join,
 * send both ways, history, typing. Answers both sides' channel objects. */
async function chatBothWays(alice, bob) {
  const uniqueName = unique("general");
  const channel = await alice.createChannel({ friendlyName: "General", uniqueName });
  const joined = next(alice, "channelJoined", (c) => c.sid === channel.sid);
  await joinAndFollow(channel);
  await joined;
  assert.equal(channel.status, "joined");

  const descriptors = await bob.getPublicChannelDescriptors();
  const descriptor = descriptors.items.find((d) => d.uniqueName === uniqueName);
  assert.ok(descriptor, "the public channel is listed");
  assert.equal(descriptor.friendlyName, "General");
  const bobs = await descriptor.getChannel();
  assert.equal(bobs.sid, channel.sid);
  const memberJoined = next(channel, "memberJoined", (m) => m.identity === bob.user.identity);
  await joinAndFollow(bobs);
  await memberJoined;

  const toAlice = next(channel, "messageAdded", (m) => m.body === "hello alice");
  const index = await bobs.sendMessage("hello alice");
  const received = await toAlice;
  assert.equal(received.author, bob.user.identity);
  assert.equal(received.index, index);
  const toBob = next(bobs, "messageAdded", (m) => m.body === "hello bob");
  await channel.sendMessage("hello bob");
  assert.equal((await toBob).author, alice.user.identity);

  const page = await bobs.getMessages();
  assert.deepEqual(
    page.items.map((m) => m.body),
    ["hello alice", "hello bob"],
  );
  // The channel's lastMessage follows (apps sort channel lists and count unread by it).
  await eventually(
    () => channel.lastMessage?.index === 1 && bobs.lastMessage?.index === 1,
    "lastMessage follows the messages",
  );
  assert.ok(bobs.lastMessage.dateCreated instanceof Date);

  const typing = next(channel, "typingStarted", (m) => m.identity === bob.user.identity);
  await bobs.typing();
  await typing;
  await next(channel, "typingEnded", (m) => m.identity === bob.user.identity);
  return { channel, bobs };
}

test("the Channels and Messages guide: descriptors, create, join, send, history, typing", async () => {
  const alice = await connect("guide-alice");
  const bob = await connect("guide-bob");
  const { channel, bobs } = await chatBothWays(alice, bob);

  const userDescriptors = await bob.getUserChannelDescriptors();
  assert.ok(userDescriptors.items.some((d) => d.sid === channel.sid), "bob's channels list it");
  const subscribed = await bob.getSubscribedChannels();
  assert.ok(subscribed.items.some((c) => c.sid === channel.sid && c.status === "joined"));
  assert.equal((await bob.getChannelByUniqueName(channel.uniqueName)).sid, bobs.sid);
  const users = await bobs.getUserDescriptors();
  assert.deepEqual(users.items.map((u) => u.identity).sort(), ["guide-alice", "guide-bob"]);
  assert.equal(users.hasNextPage, false);
});

test("channel, member and message events: updated, removed, joined, left", async () => {
  const alice = await connect("events-alice");
  const bob = await connect("events-bob");
  const channel = await joinAndFollow(
    await alice.createChannel({ friendlyName: "Events", attributes: { topic: "a" } }),
  );
  const bobs = await joinAndFollow(await bob.getChannelBySid(channel.sid));

  const updated = next(bobs, "updated", (e) => e.updateReasons.includes("attributes"));
  await channel.updateAttributes({ topic: "b" });
  assert.equal((await updated).channel.attributes.topic, "b");
  const renamed = next(bob, "channelUpdated", (e) => e.updateReasons.includes("friendlyName"));
  await channel.updateFriendlyName("Events 2");
  assert.equal((await renamed).channel.friendlyName, "Events 2");

  const members = await channel.getMembers();
  const own = members.find((m) => m.identity === "events-alice");
  const memberUpdated = next(bobs, "memberUpdated", (e) => e.member.identity === "events-alice");
  await own.updateAttributes({ role: "host" });
  const seen = await memberUpdated;
  assert.deepEqual(seen.member.attributes, { role: "host" });
  assert.ok(seen.updateReasons.includes("attributes"));

  await bobs.sendMessage("first", { mood: "fine" });
  const bobsMessages = await bobs.getMessages();
  const message = bobsMessages.items.at(-1);
  const messageUpdated = next(channel, "messageUpdated", (e) => e.message.sid === message.sid);
  await message.updateBody("first, edited");
  const edit = await messageUpdated;
  assert.equal(edit.message.body, "first, edited");
  assert.ok(edit.updateReasons.includes("body"));
  assert.deepEqual(edit.message.attributes, { mood: "fine" });
  const removed = next(channel, "messageRemoved", (m) => m.sid === message.sid);
  await message.remove();
  await removed;
  assert.equal((await channel.getMessages()).items.length, 0);

  const memberLeft = next(channel, "memberLeft", (m) => m.identity === "events-bob");
  const channelLeft = next(bob, "channelLeft", (c) => c.sid === channel.sid);
  await bobs.leave();
  await Promise.all([memberLeft, channelLeft]);
  assert.equal((await channel.getMembersCount()), 1);
});

test("invite a user to a private channel and accept; delete with and without the permission", async () => {
  const alice = await connect("invite-alice");
  const carol = await connect("invite-carol");
  const secret = await joinAndFollow(await alice.createChannel({ friendlyName: "Secret", isPrivate: true }));
  const publicList = await carol.getPublicChannelDescriptors();
  assert.ok(!publicList.items.some((d) => d.sid === secret.sid), "a private channel is not public");

  const invited = next(carol, "channelInvited", (c) => c.sid === secret.sid);
  await secret.invite("invite-carol");
  const carols = await invited;
  assert.equal(carols.status, "invited");
  const memberJoined = next(secret, "memberJoined", (m) => m.identity === "invite-carol");
  // (Following it also matters below: twilio-chat leaves a rejection unhandled when a channel
  // is deleted while it subscribes to it.)
  await joinAndFollow(carols);
  await memberJoined;
  const subscribed = await carol.getSubscribedChannels();
  assert.ok(subscribed.items.some((c) => c.sid === secret.sid && c.status === "joined"));

  // A channel member without the channel admin role may not delete the channel; its creator may.
  await assert.rejects(carols.delete());
  assert.equal((await alice.getChannelBySid(secret.sid)).sid, secret.sid);
  const removed = next(carol, "channelRemoved", (c) => c.sid === secret.sid);
  await secret.delete();
  await removed;
  await assert.rejects(carol.getChannelBySid(secret.sid));
});

test("read horizon and unread count; attributes of channels, messages and users", async () => {
  const alice = await connect("horizon-alice");
  const bob = await connect("horizon-bob");
  const channel = await joinAndFollow(await alice.createChannel({ attributes: { kind: "support", n: [1, 2] } }));
  const bobs = await bob.getChannelBySid(channel.sid);
  assert.deepEqual(bobs.attributes, { kind: "support", n: [1, 2] });
  await joinAndFollow(bobs);
  for (const body of ["one", "two", "three"]) await channel.sendMessage(body, { body });

  // As Twilio: no read horizon, no count.
  assert.equal(await bobs.getUnconsumedMessagesCount(), null);
  await bobs.updateLastConsumedMessageIndex(0);
  await eventually(async () => (await bobs.getUnconsumedMessagesCount()) === 2, "two unread");
  await eventually(() => bobs.lastConsumedMessageIndex === 0, "the horizon reaches the channel");
  await bobs.setAllMessagesConsumed();
  await eventually(async () => (await bobs.getUnconsumedMessagesCount()) === 0, "none unread");
  const history = await bobs.getMessages();
  assert.deepEqual(
    history.items.map((m) => m.attributes),
    [{ body: "one" }, { body: "two" }, { body: "three" }],
  );

  // (twilio-chat caches what it fetched for a while: the descriptor is read first.)
  await alice.user.updateFriendlyName("Alice H");
  const descriptor = await bob.getUserDescriptor("horizon-alice");
  assert.equal(descriptor.friendlyName, "Alice H");
  const aliceSeenByBob = await bob.getUser("horizon-alice");
  const userUpdated = next(aliceSeenByBob, "updated", (e) => e.updateReasons.includes("attributes"));
  await alice.user.updateAttributes({ title: "lead" });
  await userUpdated;
  assert.deepEqual(aliceSeenByBob.attributes, { title: "lead" });
  assert.equal(aliceSeenByBob.friendlyName, "Alice H");
});

test("a media message: sent as bytes, received with its media, content downloaded", async () => {
  const alice = await connect("media-alice");
  const bob = await connect("media-bob");
  const channel = await joinAndFollow(await alice.createChannel({ friendlyName: "Media" }));
  const bobs = await joinAndFollow(await bob.getChannelBySid(channel.sid));

  const bytes = randomBytes(50000);
  const added = next(bobs, "messageAdded", (m) => m.type === "media");
  await channel.sendMessage({ contentType: "image/png", media: bytes, filename: "dot.png" });
  const message = await added;
  assert.equal(message.media.contentType, "image/png");
  assert.equal(message.media.size, bytes.length);
  // twilio-chat 6.0.0 does not send the filename of a media given as bytes (it does for FormData).
  const response = await fetch(await message.media.getContentTemporaryUrl());
  assert.equal(response.status, 200);
  assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);
});

test("token update keeps the session; an expired token is refused", async () => {
  const alice = await connect("token-alice");
  await alice.updateToken(node.token("token-alice", service));
  const channel = await alice.createChannel({ friendlyName: "After update" });
  await channel.join();
  assert.equal(await channel.sendMessage("still here"), 0);

  const expired = await Client.create(node.token("token-late", service, -10), twilioOptions(node));
  clients.push(expired);
  assert.notEqual(expired.connectionState, "connected");
});

test("one twilio-chat client and one Confab SDK client in one channel", async () => {
  const alice = await connect("mixed-alice");
  const bob = await ConfabClient.create(node.token("mixed-bob", service), { url: node.url, WebSocket });
  clients.push(bob);
  const channel = await joinAndFollow(
    await alice.createChannel({ friendlyName: "Mixed", uniqueName: unique("mixed") }),
  );

  const bobs = await bob.getChannelBySid(channel.sid);
  const memberJoined = next(channel, "memberJoined", (m) => m.identity === "mixed-bob");
  await bobs.join();
  await memberJoined;

  const toAlice = next(channel, "messageAdded", (m) => m.body === "from the Confab SDK");
  await bobs.sendMessage("from the Confab SDK");
  assert.equal((await toAlice).author, "mixed-bob");
  const toBob = next(bobs, "messageAdded", (m) => m.body === "from twilio-chat");
  await channel.sendMessage("from twilio-chat");
  assert.equal((await toBob).author, "mixed-alice");

  const typing = next(bobs, "typingStarted", (m) => m.identity === "mixed-alice");
  await channel.typing();
  await typing;
  const memberUpdated = next(channel, "memberUpdated", (e) => e.member.identity === "mixed-bob");
  const bobsMember = (await bobs.getMembers()).find((m) => m.identity === "mixed-bob");
  await bobsMember.updateAttributes({ from: "confab" });
  assert.deepEqual((await memberUpdated).member.attributes, { from: "confab" });
  const channelUpdated = next(bobs, "updated", (e) => e.updateReasons.includes("attributes"));
  await channel.updateAttributes({ from: "twilio-chat" });
  await channelUpdated;
  assert.deepEqual(bobs.attributes, { from: "twilio-chat" });
});

test("a node restart: clients reconnect and resume with nothing lost", async () => {
  const own = await new Node().start();
  try {
    const svc = await own.createService("restart");
    const alice = await connect("restart-alice", { target: own, serviceSid: svc });
    const bob = await connect("restart-bob", { target: own, serviceSid: svc });
    const channel = await joinAndFollow(await alice.createChannel({ friendlyName: "Restart" }));
    const bobs = await joinAndFollow(await bob.getChannelBySid(channel.sid));
    const seen = [];
    channel.on("messageAdded", (m) => seen.push(m.index));
    await bobs.sendMessage("before");
    await eventually(() => seen.length === 1, "the first message");

    await own.restart();
    // Posted by the back end as soon as the node is up, before the clients are back (they
    // retry after a second or so): they get it by replay.
    await own.rest(`/v2/Services/${svc}/Channels/${channel.sid}/Messages`, { Body: "by REST", From: "restart-bob" });
    await eventually(() => bob.connectionState === "connected", "bob reconnects");
    await bobs.sendMessage("after");
    await eventually(() => alice.connectionState === "connected", "alice reconnects");
    await eventually(() => seen.length === 3, "every message reaches alice");
    assert.deepEqual(seen, [0, 1, 2]);
    const page = await channel.getMessages();
    assert.deepEqual(page.items.map((m) => m.body), ["before", "by REST", "after"]);
  } finally {
    await own.stop();
  }
});

test("a three-node cluster: twilio-chat clients on different nodes in one channel", async () => {
  const redis = await new RedisServer().start();
  const mediaDir = mkdtempSync(join(tmpdir(), "confab-js-media-"));
  const nodes = [];
  try {
    for (const id of ["a", "b", "c"]) {
      nodes.push(
        await new Node({
          env: { CONFAB_REDIS_URL: redis.url, CONFAB_NODE_ID: id, CONFAB_MEDIA_DIR: mediaDir },
        }).start(),
      );
    }
    const svc = await nodes[2].createService("cluster");
    const alice = await connect("cluster-alice", { target: nodes[0], serviceSid: svc });
    const bob = await connect("cluster-bob", { target: nodes[1], serviceSid: svc });
    const { channel, bobs } = await chatBothWays(alice, bob);

    const added = next(bobs, "messageAdded", (m) => m.type === "media");
    const bytes = randomBytes(1000);
    await channel.sendMessage({ contentType: "text/plain", media: bytes });
    const media = await added;
    const response = await fetch(await media.media.getContentTemporaryUrl());
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);

    // Bob's node restarts (taking the channel with it if it owned it): what alice sends
    // meanwhile through her node reaches bob when his client is back, in order, once.
    const seen = [];
    bobs.on("messageAdded", (m) => seen.push(m.body));
    await nodes[1].stop();
    await eventually(() => bob.connectionState !== "connected", "bob notices");
    for (const body of ["while down 1", "while down 2"]) await channel.sendMessage(body);
    await nodes[1].start();
    await eventually(() => bob.connectionState === "connected", "bob reconnects");
    await channel.sendMessage("after");
    await eventually(() => seen.length >= 3, "bob gets every message");
    assert.deepEqual(seen, ["while down 1", "while down 2", "after"]);
  } finally {
    for (const n of nodes) await n.stop();
    await redis.stop();
  }
});
