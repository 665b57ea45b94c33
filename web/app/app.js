// The Confab chat page: everything goes through the JS SDK served at /sdk/confab.js.
import { Client } from "/sdk/confab.js";

const $ = (id) => document.getElementById(id);
const state = {
  client: null,
  active: null, // the Channel shown
  paginator: null, // the oldest page of the active channel's messages loaded so far
  unread: new Map(), // sid -> unread count
  typing: new Set(),
};

function setConnection(s) {
  const el = $("conn-state");
  el.textContent = s;
  el.className = `state ${s}`;
}

function showError(where, e) {
  $(where).textContent = e ? `${e.message ?? e}${e.code ? ` (${e.code})` : ""}` : "";
}

async function signIn(token) {
  const client = await Client.create(token);
  state.client = client;
  $("signin").hidden = true;
  $("chat").hidden = false;
  $("whoami").textContent = `signed in as ${client.user.identity}`;
  setConnection(client.connectionState);
  client.on("connectionStateChanged", (s) => {
    setConnection(s);
    if (s === "connected") refreshLists();
  });
  for (const event of ["channelAdded", "channelInvited", "channelJoined", "channelLeft", "channelRemoved"]) {
    client.on(event, (channel) => {
      if (event === "channelRemoved" || event === "channelLeft") {
        if (state.active && state.active.sid === channel.sid) closeRoom();
      }
      refreshLists();
    });
  }
  client.on("channelUpdated", ({ channel }) => {
    if (state.active && state.active.sid === channel.sid) $("channel-title").textContent = title(channel);
    refreshLists();
  });
  client.on("messageAdded", onMessageAdded);
  client.on("messageUpdated", ({ message }) => {
    const el = messageElement(message.channel.sid, message.index);
    if (el) el.querySelector(".body").textContent = message.body;
  });
  client.on("messageRemoved", (message) => messageElement(message.channel.sid, message.index)?.remove());
  client.on("typingStarted", (member) => setTyping(member, true));
  client.on("typingEnded", (member) => setTyping(member, false));
  client.on("tokenAboutToExpire", async () => {
    const fresh = await fetchDevToken(client.user.identity).catch(() => null);
    if (fresh) client.updateToken(fresh);
  });
  await refreshLists();
}

function title(channel) {
  return channel.friendlyName || channel.uniqueName || channel.sid;
}

async function refreshLists() {
  const client = state.client;
  if (!client || client.connectionState !== "connected") return;
  // Refreshes overlap when events come in bursts: only the newest one may touch the lists.
  const run = (state.refreshRun = (state.refreshRun ?? 0) + 1);
  const subscribed = (await client.getSubscribedChannels()).items;
  const descriptors = (await client.getPublicChannelDescriptors()).items;
  if (run !== state.refreshRun) return;
  const mine = [];
  for (const channel of subscribed) {
    const li = document.createElement("li");
    li.dataset.sid = channel.sid;
    li.className = channel.status;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = title(channel);
    li.append(name);
    if (channel.status === "invited") {
      const accept = button("Accept", "accept", async () => {
        await channel.join();
        await refreshLists();
        openRoom(channel);
      });
      const decline = button("Decline", "decline", async () => {
        await channel.decline();
        await refreshLists();
      });
      li.append(accept, decline);
    } else {
      const badge = document.createElement("span");
      badge.className = "badge";
      li.append(badge);
      updateBadge(channel, badge);
      li.onclick = () => openRoom(channel);
    }
    if (state.active && state.active.sid === channel.sid) li.classList.add("active");
    mine.push(li);
  }
  $("my-channels").replaceChildren(...mine);
  const joined = new Set(subscribed.map((c) => c.sid));
  const pub = [];
  for (const d of descriptors) {
    if (joined.has(d.sid)) continue;
    const li = document.createElement("li");
    li.dataset.sid = d.sid;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = title(d);
    li.append(name, button("Join", "join", async () => {
      const channel = await d.getChannel();
      await channel.join();
      await refreshLists();
      openRoom(channel);
    }));
    pub.push(li);
  }
  $("public-channels").replaceChildren(...pub);
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.className = className;
  b.type = "button";
  b.onclick = async (e) => {
    e.stopPropagation();
    try {
      await onClick();
      showError("room-error");
    } catch (err) {
      showError("room-error", err);
    }
  };
  return b;
}

async function updateBadge(channel, badge) {
  if (state.active && state.active.sid === channel.sid) {
    state.unread.set(channel.sid, 0);
  } else if (!state.unread.has(channel.sid)) {
    state.unread.set(channel.sid, await channel.getUnconsumedMessagesCount().catch(() => 0));
  }
  const count = state.unread.get(channel.sid) ?? 0;
  badge.textContent = count > 0 ? String(count) : "";
  badge.dataset.count = String(count);
}

function badgeOf(sid) {
  return document.querySelector(`#my-channels li[data-sid="${sid}"] .badge`);
}

function messageElement(sid, index) {
  if (!state.active || state.active.sid !== sid) return null;
  return document.querySelector(`#messages .message[data-index="${index}"]`);
}

function renderMessage(message) {
  const mine = message.author === state.client.user.identity;
  const div = document.createElement("div");
  div.className = `message${mine ? " mine" : ""}`;
  div.dataset.index = String(message.index);
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author;
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = message.body;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = message.dateCreated ? message.dateCreated.toLocaleTimeString() : "";
  const actions = document.createElement("span");
  actions.className = "actions";
  if (mine) {
    actions.append(
      // A media message keeps its file; only text messages are edited here.
      ...(message.media ? [] : [button("edit", "edit", async () => {
        const input = document.createElement("input");
        input.className = "edit-input";
        input.value = body.textContent;
        const save = button("save", "save", async () => {
          await message.updateBody(input.value);
          body.textContent = message.body;
          input.remove();
          save.remove();
          body.hidden = false;
        });
        body.hidden = true;
        body.after(input, save);
        input.focus();
      })]),
      button("delete", "delete", async () => {
        await message.remove();
        div.remove();
      }),
    );
  }
  div.append(actions, author, body);
  if (message.media) div.append(renderMedia(message.media));
  div.append(meta);
  return div;
}

// Images the browser shows by itself; SVG can carry scripts, so the node serves it (like any
// other file) only as a download.
const isInlineImage = (contentType) => /^image\//i.test(contentType ?? "") && !/svg/i.test(contentType);

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// The node writes its links with its own address (its public URL or listen address), which need
// not be the origin this page came from (localhost and 127.0.0.1, say). The page's policy only
// lets images load from its own origin and `download` only works there; the page is served by
// the node it talks to, so the same path on the page's origin is the same file.
function onPageOrigin(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

/** A media message's file: the image itself when the browser can show it, and a download link. */
function renderMedia(media) {
  const box = document.createElement("div");
  box.className = "attachment";
  const name = media.filename || "file";
  const link = document.createElement("a");
  link.className = "download";
  link.textContent = name;
  link.download = name;
  const size = document.createElement("span");
  size.className = "size";
  size.textContent = formatSize(media.size);
  let img = null;
  if (isInlineImage(media.contentType)) {
    img = document.createElement("img");
    img.alt = name;
    // A type the node does not serve as an image: the link is still there.
    img.onerror = () => img.remove();
    box.append(img);
  }
  box.append(link, size);
  // Temporary URLs expire after a few minutes: a click on an older one fetches a fresh one.
  let fetchedAt = 0;
  const refresh = async () => {
    link.href = onPageOrigin(await media.getContentTemporaryUrl());
    fetchedAt = Date.now();
  };
  link.addEventListener("click", async (e) => {
    if (Date.now() - fetchedAt < 60_000) return;
    e.preventDefault();
    try {
      await refresh();
      link.click();
    } catch (err) {
      showError("room-error", err);
    }
  });
  refresh().then(
    () => {
      if (img) img.src = link.getAttribute("href");
    },
    () => {
      box.classList.add("unavailable");
      link.textContent = `${name} (unavailable)`;
    },
  );
  return box;
}

async function openRoom(channel) {
  state.active = channel;
  state.typing.clear();
  $("typing-indicator").textContent = "";
  $("channel-title").textContent = title(channel);
  $("composer").hidden = false;
  $("leave-button").hidden = false;
  $("invite-form").hidden = false;
  for (const li of document.querySelectorAll("#my-channels li")) li.classList.toggle("active", li.dataset.sid === channel.sid);
  const list = $("messages");
  list.replaceChildren();
  const page = await channel.getMessages(30);
  if (state.active !== channel) return;
  state.paginator = page;
  for (const m of page.items) list.append(renderMessage(m));
  list.scrollTop = list.scrollHeight;
  await markRead(channel);
}

async function markRead(channel) {
  state.unread.set(channel.sid, 0);
  const badge = badgeOf(channel.sid);
  if (badge) {
    badge.textContent = "";
    badge.dataset.count = "0";
  }
  await channel.setAllMessagesConsumed().catch(() => {});
}

function closeRoom() {
  state.active = null;
  $("channel-title").textContent = "Pick a channel";
  $("messages").replaceChildren();
  $("composer").hidden = true;
  $("leave-button").hidden = true;
  $("invite-form").hidden = true;
}

function onMessageAdded(message) {
  const sid = message.channel.sid;
  if (state.active && state.active.sid === sid) {
    if (!messageElement(sid, message.index)) {
      const list = $("messages");
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
      list.append(renderMessage(message));
      if (atBottom) list.scrollTop = list.scrollHeight;
    }
    setTyping({ identity: message.author }, false);
    markRead(state.active);
  } else if (message.author !== state.client.user.identity) {
    const count = (state.unread.get(sid) ?? 0) + 1;
    state.unread.set(sid, count);
    const badge = badgeOf(sid);
    if (badge) {
      badge.textContent = String(count);
      badge.dataset.count = String(count);
    }
  }
}

function setTyping(member, on) {
  if (on) state.typing.add(member.identity);
  else state.typing.delete(member.identity);
  const who = [...state.typing];
  $("typing-indicator").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
}

// Older history when scrolled to the top.
$("messages").addEventListener("scroll", async () => {
  const list = $("messages");
  const page = state.paginator;
  if (list.scrollTop > 0 || !page || !page.hasPrevPage || state.loadingHistory) return;
  state.loadingHistory = true;
  try {
    const older = await page.prevPage();
    const before = list.scrollHeight;
    const first = list.firstChild;
    for (const m of older.items) list.insertBefore(renderMessage(m), first);
    list.scrollTop = list.scrollHeight - before;
    state.paginator = older;
  } finally {
    state.loadingHistory = false;
  }
});

let lastTyping = 0;
$("message-input").addEventListener("input", () => {
  const now = Date.now();
  if (state.active && now - lastTyping > 1000) {
    lastTyping = now;
    state.active.typing().catch(() => {});
  }
});

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("message-input");
  const body = input.value.trim();
  if (!body || !state.active) return;
  input.value = "";
  // The message ends the typing indicator; the next keystroke starts a new one at once.
  lastTyping = 0;
  try {
    await state.active.sendMessage(body);
    showError("room-error");
  } catch (err) {
    showError("room-error", err);
  }
});

// Files become media messages: from the attach button's picker or dropped on the messages.
async function sendFiles(files) {
  const channel = state.active;
  if (!channel || files.length === 0) return;
  const attach = $("attach-button");
  state.uploads = (state.uploads ?? 0) + files.length;
  attach.textContent = "Uploading…";
  for (const file of files) {
    try {
      // twilio-chat's FormData form: the part carries the file's name and type.
      const form = new FormData();
      form.append("file", file, file.name);
      await channel.sendMessage(form);
      showError("room-error");
    } catch (err) {
      showError("room-error", err);
    } finally {
      state.uploads -= 1;
      if (state.uploads === 0) attach.textContent = "Attach";
    }
  }
}

$("attach-button").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", () => {
  const input = $("file-input");
  const files = [...input.files];
  input.value = ""; // so that picking the same file again is a change too
  sendFiles(files);
});

const carriesFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
for (const type of ["dragenter", "dragover"]) {
  $("messages").addEventListener(type, (e) => {
    if (!state.active || !carriesFiles(e)) return;
    e.preventDefault(); // accept the drop
    e.dataTransfer.dropEffect = "copy";
    $("messages").classList.add("drop-target");
  });
}
$("messages").addEventListener("dragleave", (e) => {
  // Moving between the messages inside the list is not leaving it.
  if (!$("messages").contains(e.relatedTarget)) $("messages").classList.remove("drop-target");
});
$("messages").addEventListener("drop", (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  $("messages").classList.remove("drop-target");
  sendFiles([...e.dataTransfer.files]);
});
// A file dropped anywhere else would make the browser leave the chat to open it.
for (const type of ["dragover", "drop"]) {
  window.addEventListener(type, (e) => {
    if (!carriesFiles(e) || e.defaultPrevented) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "none";
  });
}

$("create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("new-channel-name").value.trim();
  try {
    const channel = await state.client.createChannel({
      friendlyName: name,
      uniqueName: name,
      isPrivate: $("new-channel-private").checked,
    });
    await channel.join();
    $("new-channel-name").value = "";
    $("new-channel-private").checked = false;
    await refreshLists();
    await openRoom(channel);
    showError("room-error");
  } catch (err) {
    showError("room-error", err);
  }
});

$("invite-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await state.active.invite($("invite-identity").value.trim());
    $("invite-identity").value = "";
    showError("room-error");
  } catch (err) {
    showError("room-error", err);
  }
});

$("leave-button").addEventListener("click", async () => {
  try {
    await state.active.leave();
    closeRoom();
    await refreshLists();
  } catch (err) {
    showError("room-error", err);
  }
});

async function fetchDevToken(identity) {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ identity }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.message ?? "cannot get a token");
  return body.token;
}

async function start() {
  const config = await fetch("/dev/config").then((r) => r.json()).catch(() => ({ devTokens: false }));
  const form = config.devTokens ? $("signin-form") : $("token-form");
  form.hidden = false;
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await signIn(await fetchDevToken($("identity").value.trim()));
    } catch (err) {
      showError("signin-error", err);
    }
  });
  $("token-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await signIn($("token").value.trim());
    } catch (err) {
      showError("signin-error", err);
    }
  });
}

start();
