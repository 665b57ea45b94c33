// Confab JS SDK: the realtime API of a Confab node (docs/protocol.md) with the API of Twilio's
// `twilio-chat` SDK. An ES module with no dependencies and no build step; works in browsers
// and, given a WebSocket implementation (`options.WebSocket`, e.g. the `ws` package), in Node.
//
// The client reconnects by itself (exponential backoff with jitter) and resumes every channel
// from the last event it delivered; `sendMessage` carries a client id and is retried across
// reconnects, so nothing is lost and nothing is sent twice.
//
// Media messages upload their file over HTTP (`POST /v1/Services/{IS}/Media`, authenticated by
// the access token) and then send the message with the media's SID; needs `fetch` (browsers,
// Node 18+).

const RETRYABLE = "disconnected";

/** An error answered by the server (Twilio error code) or by the SDK. */
export class ConfabError extends Error {
  constructor(code, message, status) {
    super(message);
    this.name = "ConfabError";
    this.code = code;
    this.status = status;
  }
}

class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return this;
  }
  once(event, handler) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      handler(...args);
    };
    return this.on(event, wrapper);
  }
  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
    return this;
  }
  removeAllListeners(event) {
    if (event === undefined) this._handlers.clear();
    else this._handlers.delete(event);
    return this;
  }
  emit(event, ...args) {
    for (const handler of [...(this._handlers.get(event) ?? [])]) {
      try {
        handler(...args);
      } catch (e) {
        // A failing handler must not break the SDK or the other handlers.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

/** A page of results with twilio-chat's paginator shape. */
export class Paginator {
  constructor(items, { next = null, prev = null } = {}) {
    this.items = items;
    this._next = next;
    this._prev = prev;
  }
  get hasNextPage() {
    return this._next !== null;
  }
  get hasPrevPage() {
    return this._prev !== null;
  }
  nextPage() {
    if (!this._next) return Promise.reject(new ConfabError(0, "No next page", 400));
    return this._next();
  }
  prevPage() {
    if (!this._prev) return Promise.reject(new ConfabError(0, "No previous page", 400));
    return this._prev();
  }
}

function parseDate(value) {
  return value ? new Date(value) : null;
}

/** A user (`client.user` is the signed-in one). */
export class User extends Emitter {
  constructor(client, view) {
    super();
    this._client = client;
    this._update(view);
  }
  _update(view) {
    this.identity = view.identity;
    this.friendlyName = view.friendlyName ?? null;
    this.attributes = view.attributes ?? {};
    this.online = !!view.online;
    this.isOnline = this.online;
  }
  async updateFriendlyName(friendlyName) {
    this._update(await this._client._request("updateUser", { friendlyName }));
    return this;
  }
  async updateAttributes(attributes) {
    this._update(await this._client._request("updateUser", { attributes }));
    return this;
  }
}

/** A channel member. */
export class Member {
  constructor(channel, view) {
    this.channel = channel;
    this._update(view);
  }
  _update(view) {
    this.sid = view.sid;
    this.identity = view.identity;
    this.roleSid = view.roleSid;
    this.attributes = view.attributes ?? {};
    this.dateCreated = parseDate(view.dateCreated);
    this.dateUpdated = parseDate(view.dateUpdated);
    this.lastConsumedMessageIndex = view.lastConsumedMessageIndex ?? null;
    this.lastConsumptionTimestamp = parseDate(view.lastConsumptionTimestamp);
  }
}

/** The file of a media message (`message.media`), like twilio-chat's `Media`. */
export class Media {
  constructor(client, view) {
    this._client = client;
    this.sid = view.sid;
    this.contentType = view.contentType ?? null;
    this.filename = view.filename ?? null;
    this.size = view.size ?? 0;
    this.category = "media";
  }
  /** A URL serving the file without credentials for a few minutes (for an `<img src>` or a
   * download link); ask again for a fresh one rather than keeping it. Rejects with a
   * ConfabError (20404) when the user may not read the file. */
  async getContentTemporaryUrl() {
    const resource = await this._client._mediaRequest("GET", `/${this.sid}`);
    return resource.links.content_direct_temporary;
  }
}

/** A message. */
export class Message {
  constructor(channel, view) {
    this.channel = channel;
    this._update(view);
  }
  _update(view) {
    this.sid = view.sid;
    this.index = view.index;
    this.author = view.author;
    this.body = view.body;
    this.attributes = view.attributes ?? {};
    this.type = view.type ?? (view.media ? "media" : "text");
    // Like twilio-chat: null for a text message.
    this.media = view.media ? new Media(this.channel._client, view.media) : null;
    this.memberSid = view.memberSid ?? null;
    this.dateCreated = parseDate(view.dateCreated);
    this.dateUpdated = parseDate(view.dateUpdated);
    this.timestamp = this.dateCreated;
    this.lastUpdatedBy = view.lastUpdatedBy ?? null;
  }
  async updateBody(body) {
    this._update(await this.channel._call("updateMessage", { index: this.index, body }));
    return this;
  }
  async updateAttributes(attributes) {
    this._update(await this.channel._call("updateMessage", { index: this.index, attributes }));
    return this;
  }
  async remove() {
    await this.channel._call("removeMessage", { index: this.index });
    return this;
  }
}

/** A snapshot of a channel for discovery; `getChannel()` gives the live channel. */
export class ChannelDescriptor {
  constructor(client, view) {
    this._client = client;
    Object.assign(this, describe(view));
  }
  getChannel() {
    return this._client.getChannelBySid(this.sid);
  }
}

function describe(view) {
  return {
    sid: view.sid,
    uniqueName: view.uniqueName ?? null,
    friendlyName: view.friendlyName ?? null,
    attributes: view.attributes ?? {},
    type: view.type,
    isPrivate: view.type === "private",
    createdBy: view.createdBy,
    dateCreated: parseDate(view.dateCreated),
    dateUpdated: parseDate(view.dateUpdated),
    membersCount: view.membersCount ?? 0,
    messagesCount: view.messagesCount ?? 0,
    lastMessage: view.lastMessage ? { index: view.lastMessage.index, dateCreated: parseDate(view.lastMessage.dateCreated) } : null,
    status: view.status,
    lastConsumedMessageIndex: view.lastConsumedMessageIndex ?? null,
  };
}

/** A channel and its operations; emits the channel's events. */
export class Channel extends Emitter {
  constructor(client, view) {
    super();
    this._client = client;
    this._update(view);
  }
  _update(view, { personal = true } = {}) {
    const d = describe(view);
    if (!personal) {
      // Member-wide events do not carry the caller's status and read horizon.
      delete d.status;
      delete d.lastConsumedMessageIndex;
    }
    Object.assign(this, d);
  }
  _call(op, params = {}) {
    return this._client._request(op, { ...params, channel: this.sid });
  }
  async _callView(op, params) {
    this._update(await this._call(op, params));
    return this;
  }
  join() {
    return this._callView("join");
  }
  leave() {
    return this._callView("leave");
  }
  decline() {
    return this._callView("decline");
  }
  async invite(identity) {
    await this._call("invite", { identity });
  }
  async add(identity) {
    await this._call("add", { identity });
  }
  async removeMember(memberOrIdentity) {
    const identity = typeof memberOrIdentity === "string" ? memberOrIdentity : memberOrIdentity.identity;
    await this._call("removeMember", { identity });
  }
  async delete() {
    await this._call("deleteChannel");
    return this;
  }
  updateAttributes(attributes) {
    return this._callView("updateChannel", { attributes });
  }
  updateFriendlyName(friendlyName) {
    return this._callView("updateChannel", { friendlyName });
  }
  updateUniqueName(uniqueName) {
    return this._callView("updateChannel", { uniqueName });
  }
  async getMembers() {
    const result = await this._call("getMembers");
    return result.items.map((m) => new Member(this, m));
  }
  async getMemberByIdentity(identity) {
    const member = (await this.getMembers()).find((m) => m.identity === identity);
    if (!member) throw new ConfabError(50402, "Member not found", 404);
    return member;
  }
  async getMemberBySid(sid) {
    const member = (await this.getMembers()).find((m) => m.sid === sid);
    if (!member) throw new ConfabError(50402, "Member not found", 404);
    return member;
  }
  async getAttributes() {
    return this.attributes;
  }
  async getMembersCount() {
    return (await this._call("getMembersCount")).count;
  }
  async getMessagesCount() {
    return (await this._call("getMessagesCount")).count;
  }
  async getUnconsumedMessagesCount() {
    return (await this._call("getUnconsumedMessagesCount")).count;
  }
  /**
   * Sends a message; resolves with its index. Safe to retry: it is stored once.
   *
   * `message` is the body (a string), or a media message like twilio-chat's: a `FormData`
   * whose first file is the upload, or `{contentType, media, filename}` with `media` a string,
   * bytes (Uint8Array, ArrayBuffer, Buffer) or a Blob. The file is uploaded first, once; only
   * the message itself is retried across reconnects.
   */
  async sendMessage(message, attributes) {
    const params = { attributes };
    if (message !== null && typeof message === "object") {
      params.mediaSid = (await this._client._uploadMedia(message)).sid;
    } else {
      params.body = message;
    }
    const clientId = randomId();
    for (;;) {
      try {
        const result = await this._call("sendMessage", { ...params, clientId });
        return result.index;
      } catch (e) {
        if (e.code !== RETRYABLE) throw e;
        // The reply was lost with the connection: the same client id makes the retry
        // answer with the first message instead of storing a second.
      }
    }
  }
  /** Messages ascending by index: the newest `pageSize` (default 30) up to `anchor`, or
   * `direction: "forward"` from `anchor` on. */
  async getMessages(pageSize = 30, anchor, direction = "backwards") {
    const result = await this._call("getMessages", { pageSize, anchor, direction });
    const items = result.items.map((m) => new Message(this, m));
    const first = items[0];
    const last = items[items.length - 1];
    const prev = result.hasPrevPage && first ? () => this.getMessages(pageSize, first.index - 1, "backwards") : null;
    const next = result.hasNextPage && last ? () => this.getMessages(pageSize, last.index + 1, "forward") : null;
    return new Paginator(items, { prev, next });
  }
  async typing() {
    await this._call("typing");
  }
  async _consume(op, params) {
    const result = await this._call(op, params);
    return result.unreadCount;
  }
  updateLastConsumedMessageIndex(index) {
    return this._consume("updateLastConsumedMessageIndex", { index });
  }
  advanceLastConsumedMessageIndex(index) {
    return this._consume("advanceLastConsumedMessageIndex", { index });
  }
  setAllMessagesConsumed() {
    return this._consume("setAllMessagesConsumed");
  }
  setNoMessagesConsumed() {
    return this._consume("setNoMessagesConsumed");
  }
}

function randomId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The claims of a JWT (no verification: the server does that), or null when it is not one. */
function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

function isFormData(value) {
  return typeof FormData !== "undefined" && value instanceof FormData;
}

function isBlob(value) {
  return typeof Blob !== "undefined" && value instanceof Blob;
}

/** The request body and headers of an upload of `media` (see `Channel.sendMessage`). */
function uploadBody(media) {
  // fetch writes the multipart body and its boundary itself.
  if (isFormData(media)) return { body: media, headers: {}, query: "" };
  if (!("media" in media)) throw new ConfabError(0, "A media message needs {contentType, media} or a FormData", 400);
  const data = media.media;
  if (!(typeof data === "string" || isBlob(data) || data instanceof ArrayBuffer || ArrayBuffer.isView(data))) {
    throw new ConfabError(0, "media must be a string, bytes or a Blob", 400);
  }
  const contentType = media.contentType || (isBlob(data) ? data.type : "");
  if (!contentType) throw new ConfabError(0, "A media message needs a contentType", 400);
  const filename = media.filename ?? (typeof data.name === "string" ? data.name : null);
  return {
    body: data,
    headers: { "Content-Type": contentType },
    query: filename ? `?Filename=${encodeURIComponent(filename)}` : "",
  };
}

function realtimeUrl(url) {
  let u = url ?? (globalThis.location ? globalThis.location.origin : "http://127.0.0.1:8080");
  u = u.replace(/^http:/, "ws:").replace(/^https:/, "wss:").replace(/\/+$/, "");
  return u.endsWith("/v2/realtime") ? u : `${u}/v2/realtime`;
}

/**
 * The entry point, like twilio-chat's `Client`. Create it with `await Client.create(token, {url})`.
 * Emits: connectionStateChanged, channelAdded, channelInvited, channelJoined, channelLeft,
 * channelRemoved, channelUpdated, messageAdded, messageUpdated, messageRemoved, memberJoined,
 * memberLeft, memberUpdated, typingStarted, typingEnded, userUpdated, tokenAboutToExpire,
 * tokenExpired.
 */
export class Client extends Emitter {
  static async create(token, options = {}) {
    const client = new Client(token, options);
    await client._firstConnection;
    return client;
  }

  constructor(token, options = {}) {
    super();
    this._token = token;
    this._url = realtimeUrl(options.url);
    // The node's HTTP API lives beside its realtime endpoint.
    this._httpBase = this._url.replace(/^ws(s?):/, "http$1:").replace(/\/v2\/realtime$/, "");
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this._WebSocket) throw new ConfabError(0, "No WebSocket implementation: pass options.WebSocket", 400);
    this._backoffMin = options.backoffMinMs ?? 200;
    this._backoffMax = options.backoffMaxMs ?? 5000;
    this._channels = new Map();
    this._pending = new Map();
    this._queue = [];
    this._lastSeq = {};
    this._nextId = 1;
    this._attempt = 0;
    this._closed = false;
    this.connectionState = "connecting";
    this.user = null;
    this._firstConnection = new Promise((resolve, reject) => {
      this._resolveFirst = resolve;
      this._rejectFirst = reject;
    });
    this._open();
  }

  _setState(state) {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this.emit("connectionStateChanged", state);
  }

  _open() {
    if (this._closed) return;
    this._setState("connecting");
    const ws = new this._WebSocket(this._url);
    this._ws = ws;
    this._ready = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "init", id: 0, token: this._token, resume: this._lastSeq }));
    };
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(typeof message.data === "string" ? message.data : message.data.toString());
      } catch {
        return;
      }
      this._onFrame(frame);
    };
    ws.onclose = (event) => this._onClose(ws, event.code);
    ws.onerror = () => {};
  }

  _onFrame(frame) {
    if (frame.type === "reply" && frame.id === 0) {
      if (!frame.ok) {
        this._deny(frame.error?.message ?? "token rejected", frame.error?.code);
        return;
      }
      this._onInit(frame.result);
    } else if (frame.type === "reply") {
      const pending = this._pending.get(frame.id);
      if (!pending) return;
      this._pending.delete(frame.id);
      if (frame.ok) pending.resolve(frame.result);
      else pending.reject(new ConfabError(frame.error.code, frame.error.message, frame.error.status));
    } else if (frame.type === "event") {
      this._onEvent(frame);
    } else if (frame.type === "tokenAboutToExpire") {
      this.emit("tokenAboutToExpire", frame.ttl);
    } else if (frame.type === "tokenExpired") {
      this.emit("tokenExpired");
    }
  }

  _onInit(result) {
    this._ready = true;
    this._attempt = 0;
    if (this.user) this.user._update(result.user);
    else this.user = new User(this, result.user);
    for (const view of result.channels) {
      this._channel(view);
      // A quiet channel still resumes from here after the next reconnect.
      if (view.status === "joined" && typeof view.lastSeq === "number") {
        if (result.resumed?.[view.sid] === false || this._lastSeq[view.sid] === undefined) this._lastSeq[view.sid] = view.lastSeq;
      }
    }
    this._setState("connected");
    if (this._resolveFirst) {
      this._resolveFirst(this);
      this._resolveFirst = null;
    }
    const queued = this._queue;
    this._queue = [];
    for (const call of queued) this._send(call);
  }

  _deny(reason, code) {
    this._setState("denied");
    if (this._rejectFirst && this._resolveFirst) {
      this._rejectFirst(new ConfabError(code ?? 51007, reason, 401));
      this._resolveFirst = null;
      this._closed = true;
    }
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    this._ready = false;
    for (const [, pending] of this._pending) pending.reject(new ConfabError(RETRYABLE, "Disconnected before the reply", 0));
    this._pending.clear();
    if (this._closed) {
      this._setState("disconnected");
      return;
    }
    if (code === 4001 || code === 4002) {
      this._deny(code === 4001 ? "token rejected" : "token expired", code === 4001 ? 51007 : 20104);
      if (this._closed) return;
    } else {
      this._setState("connecting");
    }
    const base = Math.min(this._backoffMax, this._backoffMin * 2 ** Math.min(this._attempt, 8));
    this._attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this._reconnectTimer = setTimeout(() => this._open(), code === 4002 || code === 4001 ? Math.max(delay, 2000) : delay);
  }

  _request(op, params = {}) {
    if (this._closed) return Promise.reject(new ConfabError(0, "Client is shut down", 400));
    return new Promise((resolve, reject) => {
      const call = { op, params, resolve, reject };
      if (this._ready) this._send(call);
      else this._queue.push(call);
    });
  }

  _send(call) {
    const id = this._nextId++;
    this._pending.set(id, call);
    try {
      this._ws.send(JSON.stringify({ ...call.params, type: call.op, id }));
    } catch {
      this._pending.delete(id);
      call.reject(new ConfabError(RETRYABLE, "Disconnected before the reply", 0));
    }
  }

  _channel(view, options) {
    let channel = this._channels.get(view.sid);
    if (channel) channel._update(view, options);
    else {
      channel = new Channel(this, view);
      this._channels.set(view.sid, channel);
    }
    return channel;
  }

  _emitBoth(channel, event, payload) {
    channel?.emit(event, payload);
    this.emit(event, payload);
  }

  _onEvent({ event, channel: sid, seq, data }) {
    if (sid && typeof seq === "number") {
      // Already delivered: never hand the application an event twice.
      if (seq <= (this._lastSeq[sid] ?? 0)) return;
      this._lastSeq[sid] = seq;
    }
    const channel = sid ? this._channels.get(sid) ?? (data?.sid === sid ? this._channel(data) : null) : null;
    switch (event) {
      case "messageAdded":
      case "messageRemoved": {
        if (!channel) return;
        if (event === "messageAdded") {
          channel.lastMessage = { index: data.index, dateCreated: parseDate(data.dateCreated) };
          channel.messagesCount = Math.max(channel.messagesCount, data.index + 1);
        }
        this._emitBoth(channel, event, new Message(channel, data));
        break;
      }
      case "messageUpdated":
        if (!channel) return;
        this._emitBoth(channel, event, { message: new Message(channel, data.message), updateReasons: data.updateReasons });
        break;
      case "memberJoined":
      case "memberLeft":
        if (!channel) return;
        this._emitBoth(channel, event, new Member(channel, data));
        break;
      case "memberUpdated":
        if (!channel) return;
        if (data.member.identity === this.user?.identity) channel.lastConsumedMessageIndex = data.member.lastConsumedMessageIndex ?? null;
        this._emitBoth(channel, event, { member: new Member(channel, data.member), updateReasons: data.updateReasons });
        break;
      case "typingStarted":
      case "typingEnded":
        if (!channel) return;
        this._emitBoth(channel, event, new Member(channel, { sid: data.memberSid, identity: data.identity }));
        break;
      case "channelUpdated": {
        const updated = this._channel(data.channel, { personal: false });
        this._emitBoth(updated, event, { channel: updated, updateReasons: data.updateReasons });
        break;
      }
      case "channelRemoved": {
        const removed = this._channel(data, { personal: false });
        removed.status = "notParticipating";
        this._channels.delete(data.sid);
        delete this._lastSeq[data.sid];
        this._emitBoth(removed, event, removed);
        break;
      }
      case "channelAdded":
      case "channelInvited":
      case "channelJoined":
      case "channelLeft": {
        const c = this._channel(data);
        if (event === "channelLeft") delete this._lastSeq[data.sid];
        this.emit(event, c);
        break;
      }
      case "userUpdated":
        if (this.user && data.user.identity === this.user.identity) this.user._update(data.user);
        this.emit(event, { user: data.user, updateReasons: data.updateReasons });
        break;
      default:
        this.emit(event, data);
    }
  }

  async _descriptors(op, pageSize, pageToken) {
    const result = await this._request(op, { pageSize, pageToken });
    const items = result.items.map((view) => new ChannelDescriptor(this, view));
    const next = result.nextPageToken ? () => this._descriptors(op, pageSize, result.nextPageToken) : null;
    return new Paginator(items, { next });
  }

  getPublicChannelDescriptors(pageSize = 50) {
    return this._descriptors("getPublicChannelDescriptors", pageSize);
  }

  getUserChannelDescriptors(pageSize = 50) {
    return this._descriptors("getUserChannelDescriptors", pageSize);
  }

  async getSubscribedChannels() {
    const result = await this._request("getSubscribedChannels");
    return new Paginator(result.items.map((view) => this._channel(view)));
  }

  async getChannelBySid(sid) {
    return this._channel(await this._request("getChannel", { channel: sid }));
  }

  async getChannelByUniqueName(uniqueName) {
    return this._channel(await this._request("getChannel", { channel: uniqueName }));
  }

  async createChannel(options = {}) {
    const view = await this._request("createChannel", {
      friendlyName: options.friendlyName,
      uniqueName: options.uniqueName,
      isPrivate: !!options.isPrivate,
      attributes: options.attributes,
    });
    return this._channel(view);
  }

  async getUser(identity) {
    return new User(this, await this._request("getUser", { identity }));
  }

  /** A call of the node's Media API as the signed-in user; resolves with the JSON answer. */
  async _mediaRequest(method, path, { body, headers = {}, query = "" } = {}) {
    const serviceSid = tokenClaims(this._token)?.grants?.chat?.service_sid;
    if (!serviceSid) throw new ConfabError(0, "The access token has no chat grant with a service_sid", 400);
    const url = `${this._httpBase}/v1/Services/${serviceSid}/Media${path}${query}`;
    let response;
    try {
      // The current token, so that one renewed by updateToken is used from then on.
      response = await fetch(url, { method, body, headers: { ...headers, "X-Twilio-Token": this._token } });
    } catch (e) {
      throw new ConfabError(0, `Media request failed: ${e.message}`, 0);
    }
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not the node answering (a proxy's error page): keep the status.
    }
    if (!response.ok) {
      throw new ConfabError(json?.code ?? 0, json?.message ?? (text || response.statusText), json?.status ?? response.status);
    }
    return json;
  }

  /** Uploads the file of a media message; resolves with the media resource. */
  async _uploadMedia(media) {
    return this._mediaRequest("POST", "", uploadBody(media));
  }

  async updateToken(token) {
    if (!this._ready) {
      // Disconnected (for instance after tokenExpired): reconnect with the new token now.
      this._token = token;
      this._closed = false;
      clearTimeout(this._reconnectTimer);
      this._open();
      return this;
    }
    await this._request("updateToken", { token });
    this._token = token;
    return this;
  }

  async shutdown() {
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    for (const call of this._queue) call.reject(new ConfabError(0, "Client is shut down", 400));
    this._queue = [];
    this._ws?.close(1000);
    this._setState("disconnected");
  }
}

export default Client;
