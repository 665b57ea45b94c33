// The chat page in Debian's Chromium, driven by playwright-core: two users on one node.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
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

test("the page and the SDK run under the node's Content-Security-Policy", async () => {
  const response = await fetch(node.url);
  const policy = response.headers.get("content-security-policy");
  assert.match(policy ?? "", /default-src 'self'/);
  assert.match(policy ?? "", /frame-ancestors 'none'/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  // Every page of the tests above ran under it.
  assert.deepEqual(cspViolations, []);
});
