// The chat page in Debian's Chromium, driven by playwright-core: two users on one node.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import http from "node:http";
import { chromium } from "playwright-core";

import { Node } from "./node.mjs";

// Screenshots go to a fresh temporary directory, never into the repository, unless
// CONFAB_SCREENSHOT_DIR names one (scripts/screenshots.sh points it at docs/images/).
const screenshotDir = () =>
  process.env.CONFAB_SCREENSHOT_DIR
    ? resolve(process.env.CONFAB_SCREENSHOT_DIR)
    : mkdtempSync(join(tmpdir(), "confab-screenshots-"));
const WAIT = { timeout: 20000 };
let node;
let browser;
// Console messages about the Content-Security-Policy: the page and the SDK must need no
// exception to the policy the node sends.
const cspViolations = [];

before(async () => {
  node = await new Node().start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  await node?.stop();
});

async function signIn(identity) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${identity}] page error:`, e));
  page.on("console", (m) => {
    if (/Content[- ]Security[- ]Policy|Refused to (load|execute|apply|connect)/i.test(m.text())) {
      cspViolations.push(`[${identity}] ${m.text()}`);
    }
  });
  await page.goto(node.url);
  await page.fill("#identity", identity);
  await page.click("#signin-button");
  await page.locator("#conn-state", { hasText: /^connected$/ }).waitFor(WAIT);
  return page;
}

const message = (page, text) => page.locator("#messages .message .body", { hasText: text });
const channelItem = (page, list, name) => page.locator(`${list} li`, { hasText: name });

async function send(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
  await message(page, text).waitFor(WAIT);
}

async function create(page, name, { isPrivate = false } = {}) {
  await page.fill("#new-channel-name", name);
  if (isPrivate) await page.check("#new-channel-private");
  await page.click("#create-button");
  await page.locator("#channel-title", { hasText: name }).waitFor(WAIT);
}

test("two users chat, type, read, invite, edit and delete, and survive a node restart", async () => {
  const alice = await signIn("alice");
  await create(alice, "lobby");

  // Bob discovers and joins the public channel.
  const bob = await signIn("bob");
  await channelItem(bob, "#public-channels", "lobby").locator("button.join").click();
  await bob.locator("#channel-title", { hasText: "lobby" }).waitFor(WAIT);

  // Chat both ways.
  await send(alice, "hi bob");
  await message(bob, "hi bob").waitFor(WAIT);
  await send(bob, "hi alice");
  await message(alice, "hi alice").waitFor(WAIT);

  // Typing is shown to the other user.
  await bob.type("#message-input", "typing away");
  await alice.locator("#typing-indicator", { hasText: "bob is typing" }).waitFor(WAIT);
  await bob.fill("#message-input", "");

  // Unread count on a channel that is not open.
  await create(alice, "side");
  await send(bob, "ping");
  const badge = channelItem(alice, "#my-channels", "lobby").locator(".badge");
  await alice.waitForFunction(
    () => document.querySelector('#my-channels li .badge[data-count="1"]') !== null,
    null,
    WAIT,
  );
  assert.equal(await badge.textContent(), "1");
  await channelItem(alice, "#my-channels", "lobby").click();
  await message(alice, "ping").waitFor(WAIT);
  await alice.waitForFunction(() => document.querySelector('#my-channels li .badge[data-count="1"]') === null, null, WAIT);

  // An invitation to a private channel, accepted.
  await create(alice, "secret", { isPrivate: true });
  await alice.fill("#invite-identity", "bob");
  await alice.click("#invite-button");
  const invitation = channelItem(bob, "#my-channels", "secret");
  await invitation.locator("button.accept").waitFor(WAIT);
  await invitation.locator("button.accept").click();
  await bob.locator("#channel-title", { hasText: "secret" }).waitFor(WAIT);
  await send(alice, "welcome");
  await message(bob, "welcome").waitFor(WAIT);

  // Edit and delete one's own message.
  const own = alice.locator("#messages .message.mine", { hasText: "welcome" });
  await own.locator("button.edit").click();
  await own.locator("input.edit-input").fill("welcome, bob!");
  await own.locator("button.save").click();
  await message(bob, "welcome, bob!").waitFor(WAIT);
  await send(alice, "to be deleted");
  await message(bob, "to be deleted").waitFor(WAIT);
  await alice.locator("#messages .message.mine", { hasText: "to be deleted" }).locator("button.delete").click();
  await message(bob, "to be deleted").waitFor({ state: "detached", ...WAIT });

  const images = screenshotDir();
  mkdirSync(images, { recursive: true });
  await alice.screenshot({ path: join(images, "chat-alice.png") });
  await bob.screenshot({ path: join(images, "chat-bob.png") });
  console.log(`screenshots: ${join(images, "chat-alice.png")} ${join(images, "chat-bob.png")}`);

  // The node restarts; both pages reconnect by themselves and the history is intact.
  await node.stop();
  await alice.locator("#conn-state", { hasText: /^(connecting|disconnected)$/ }).waitFor(WAIT);
  await node.start();
  await alice.locator("#conn-state", { hasText: /^connected$/ }).waitFor(WAIT);
  await bob.locator("#conn-state", { hasText: /^connected$/ }).waitFor(WAIT);
  await send(alice, "after the restart");
  await message(bob, "after the restart").waitFor(WAIT);
  await channelItem(bob, "#my-channels", "lobby").click();
  for (const text of ["hi bob", "hi alice", "ping"]) await message(bob, text).waitFor(WAIT);
});

/** A `width`×`height` PNG: a blue image with a red diagonal. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const typed = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    rows.push(0); // no filter
    for (let x = 0; x < width; x++) rows.push(...(x === y ? [220, 30, 30] : [59, 91, 219]));
  }
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.from(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The `a.download` of the message whose link reads `name`, once its URL is there. */
async function downloadLink(page, name) {
  const link = page.locator("#messages .message .attachment a.download", { hasText: name });
  await link.and(page.locator("[href]")).waitFor(WAIT);
  return link;
}

/** What the browser saves when the user clicks `link`: [file name, bytes]. */
async function download(page, link) {
  const [saved] = await Promise.all([page.waitForEvent("download", WAIT), link.click()]);
  return [saved.suggestedFilename(), readFileSync(await saved.path())];
}

test("a picked image shows inline and a dropped file is a download, for the other member too", async () => {
  const carol = await signIn("carol");
  await create(carol, "photos");
  const dave = await signIn("dave");
  await channelItem(dave, "#public-channels", "photos").locator("button.join").click();
  await dave.locator("#channel-title", { hasText: "photos" }).waitFor(WAIT);

  // Carol picks an image with the attach button's file input.
  const image = png(24, 16);
  await carol.setInputFiles("#file-input", { name: "diagonal.png", mimeType: "image/png", buffer: image });
  for (const page of [carol, dave]) {
    // Shown inline, and loaded (the node serves it, the page's policy lets it in).
    await page.waitForFunction(
      () => {
        const img = document.querySelector("#messages .message .attachment img");
        return img !== null && img.complete && img.naturalWidth > 0;
      },
      null,
      WAIT,
    );
    const img = page.locator("#messages .message .attachment img");
    assert.deepEqual(await img.evaluate((i) => [i.naturalWidth, i.naturalHeight, i.alt]), [24, 16, "diagonal.png"]);
  }
  assert.equal(await carol.locator("#messages .message.mine .attachment img").count(), 1);
  const imageLink = await downloadLink(dave, "diagonal.png");
  const href = await imageLink.getAttribute("href");
  const fetched = await dave.evaluate(async (url) => Array.from(new Uint8Array(await (await fetch(url)).arrayBuffer())), href);
  assert.ok(Buffer.from(fetched).equals(image), "the link serves the uploaded bytes");
  const [imageName, imageBytes] = await download(dave, imageLink);
  assert.equal(imageName, "diagonal.png");
  assert.ok(imageBytes.equals(image));

  // Carol drops a text file on the messages: not an image, so a link with its name.
  const notes = "agenda\n1. photos\n";
  const highlighted = await carol.evaluate((text) => {
    const files = new DataTransfer();
    files.items.add(new File([text], "notes.txt", { type: "text/plain" }));
    const list = document.getElementById("messages");
    const drag = (type) => list.dispatchEvent(new DragEvent(type, { dataTransfer: files, bubbles: true, cancelable: true }));
    const accepted = !drag("dragenter") && !drag("dragover"); // cancelled: the drop is welcome
    const during = list.classList.contains("drop-target");
    drag("drop");
    return { accepted, during, after: list.classList.contains("drop-target") };
  }, notes);
  assert.deepEqual(highlighted, { accepted: true, during: true, after: false });
  const notesLink = await downloadLink(dave, "notes.txt");
  const notesMessage = dave.locator("#messages .message", { has: dave.locator("a.download", { hasText: "notes.txt" }) });
  assert.equal(await notesMessage.locator("img").count(), 0);
  assert.equal(await notesMessage.locator(".author").textContent(), "carol");
  const [notesName, notesBytes] = await download(dave, notesLink);
  assert.equal(notesName, "notes.txt");
  assert.equal(notesBytes.toString(), notes);

  // After a reload the history shows both again.
  await dave.reload();
  await dave.fill("#identity", "dave");
  await dave.click("#signin-button");
  await channelItem(dave, "#my-channels", "photos").click();
  await downloadLink(dave, "notes.txt");
  await dave.waitForFunction(() => document.querySelector("#messages .attachment img")?.naturalWidth === 24, null, WAIT);
});

test("the browser build of twilio-chat 6.0.0 sends and receives messages", async () => {
  const service = await node.createService("twilio-chat in a browser");
  const { host } = new URL(node.url);
  const build = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "twilio-chat", "builds", "twilio-chat.min.js");

  // The app's page comes from a server of its own on loopback (as an app's would), serving the
  // package's browser build; the client is created with only the three options of a migrated app.
  const app = http.createServer((req, res) => {
    if (req.url === "/twilio-chat.min.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(readFileSync(build));
    } else {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end('<!doctype html><title>twilio-chat</title><script src="/twilio-chat.min.js"></script>');
    }
  });
  await new Promise((r) => app.listen(0, "127.0.0.1", r));
  async function twilioPage(identity) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`[${identity}] page error:`, e));
    page.on("console", (m) => process.env.TCDEBUG && console.log(`[${identity}]`, m.text().slice(0, 400)));
    await page.goto(`http://127.0.0.1:${app.address().port}/`);
    const state = await page.evaluate(
      async ({ token, host, debug }) => {
        window.client = await Twilio.Chat.Client.create(token, {
          twilsock: { uri: `ws://${host}/v3/wsconnect` },
          Sync: { cdsUri: `http://${host}/cds` },
          Chat: { apiUri: `http://${host}/aim` },
          logLevel: debug ? "debug" : "silent",
        });
        window.received = [];
        window.client.on("messageAdded", (m) => window.received.push(`${m.author}: ${m.body}`));
        return [window.client.connectionState, window.client.user.identity];
      },
      { token: node.token(identity, service), host, debug: !!process.env.TCDEBUG },
    );
    assert.deepEqual(state, ["connected", identity]);
    return page;
  }
  const received = (page, line) => page.waitForFunction((l) => window.received.includes(l), line, WAIT);

  const alice = await twilioPage("tc-alice");
  const bob = await twilioPage("tc-bob");
  const sid = await alice.evaluate(async () => {
    const channel = await window.client.createChannel({ friendlyName: "browser", uniqueName: "browser-twilio-chat" });
    await channel.join();
    await channel.getMessages(); // an app showing the channel follows its messages
    return channel.sid;
  });
  await bob.evaluate(async (sid) => {
    const channel = await window.client.getChannelBySid(sid);
    await channel.join();
    await channel.getMessages();
    await channel.sendMessage("hello from bob");
  }, sid);
  await received(alice, "tc-bob: hello from bob");
  await alice.evaluate(async (sid) => (await window.client.getChannelBySid(sid)).sendMessage("hi bob"), sid);
  await received(bob, "tc-alice: hi bob");
  await received(bob, "tc-bob: hello from bob");

  // A file sent from alice's page reaches bob's with its bytes: the page is on another origin
  // than the node, so the media API answers CORS (uploads and reads carry X-Twilio-Token).
  await bob.evaluate(async (sid) => {
    const channel = await window.client.getChannelBySid(sid);
    window.media = new Promise((resolve) =>
      channel.on("messageAdded", async (m) => {
        if (m.type !== "media") return;
        const response = await fetch(await m.media.getContentTemporaryUrl());
        resolve({ contentType: m.media.contentType, size: m.media.size, bytes: [...new Uint8Array(await response.arrayBuffer())] });
      }),
    );
  }, sid);
  const bytes = [...Array(3000).keys()].map((i) => (i * 7) % 256);
  await alice.evaluate(
    async ({ sid, bytes }) => {
      const form = new FormData();
      form.append("file", new Blob([new Uint8Array(bytes)], { type: "application/octet-stream" }), "data.bin");
      await (await window.client.getChannelBySid(sid)).sendMessage(form);
    },
    { sid, bytes },
  );
  const got = await bob.evaluate(() => window.media);
  assert.equal(got.contentType, "application/octet-stream");
  assert.equal(got.size, bytes.length);
  assert.deepEqual(got.bytes, bytes);

  for (const page of [alice, bob]) await page.evaluate(() => window.client.shutdown());
  await alice.context().close();
  await bob.context().close();
  app.close();
});

test("the page and the SDK run under the node's Content-Security-Policy", async () => {
  const response = await fetch(node.url);
  const policy = response.headers.get("content-security-policy");
  assert.match(policy ?? "", /default-src 'self'/);
  assert.match(policy ?? "", /frame-ancestors 'none'/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  // Every page of the tests above ran under it.
  assert.deepEqual(cspViolations, []);
});
