// Confab JS SDK: the realtime API of a Confab node (docs/protocol.md) with the API of Twilio's
// `twilio-chat` SDK. An ES module with no dependencies and no build step; works in browsers
// and, given a WebSocket implementation (`options.WebSocket`, e.g. the `ws` package), in Node.
//
// The client reconnects by itself (exponential backoff with jitter) and resumes every channel
// from the last event it delivered; `sendMessage` carries a client id and is retried across
// reconnects, so nothing is lost and nothing is sent twice.
//
// Like twilio-chat, the SDK hands out one object per resource and keeps it current: the
// client's Channel per channel, a channel's Member per member, its Message per message (a
// bounded cache, see MESSAGE_CACHE_SIZE) and the client's User per identity (see
// USER_CACHE_SIZE). Each emits `updated` ({channel|member|message|user, updateReasons}) when
// the server reports a change of it, before the channel's and the client's `*Updated` events,
// which carry the same object. Snapshots that are not kept current (ChannelDescriptor,
// UserDescriptor) give the live object with `getChannel()` / `subscribe()`.
//
// Reachability (online status) is the service's `ReachabilityEnabled`, as in twilio-chat:
// `client.reachabilityEnabled` tells whether it is on, and while it is off `user.online` (and
// `isOnline`, `notifiable`, `isNotifiable`) are null. Confab sends no push notifications, so a
// user is never notifiable (false with reachability on).
//
// Media messages upload their file over HTTP (`POST /v1/Services/{IS}/Media`, authenticated by
// the access token) and then send the message with the media's SID; needs `fetch` (browsers,
// Node 18+).

const RETRYABLE = "disconnected";

/** How many Message objects a channel keeps (and keeps current): the 1,000 it handed out
 * (`getMessages`, `messageAdded`, ...) most recently. An older one still works, but no longer
 * receives `updated`; fetching it again gives a new object. */
const MESSAGE_CACHE_SIZE = 1000;

/** How many User objects (`getUser`, `userUpdated`) the client keeps current besides
 * `client.user`: the 1,000 it handed out most recently. */
const USER_CACHE_SIZE = 1000;

/** How many UserDescriptors a page of `channel.getUserDescriptors()` holds by default (each is
 * one `getUser` request). */
const USER_DESCRIPTOR_PAGE_SIZE = 50;

/** The notification levels of `channel.setUserNotificationLevel`. */
const NOTIFICATION_LEVELS = ["default", "muted"];

/** `key` -> `value` in `map` as its most recently used entry, dropping the least recently used
 * one beyond `limit`. */
function remember(map, key, value, limit) {
  map.delete(key);
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value);
  return value;
}

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

/** A user view's online status: true/false with reachability on, null with it off. */
function onlineOf(view) {
  return typeof view.online === "boolean" ? view.online : null;
}

/**
 * A user (`client.user` is the signed-in one). The client keeps one User per identity current:
 * `client.user` and those `getUser()` returned emit `updated` ({user, updateReasons}, reasons
 * among friendlyName, attributes, online) on each `userUpdated` the server sends: for the
 * signed-in user's own changes, and for users sharing a channel with it.
 *
 * `online` / `isOnline`: whether the user has a connected session, null while the service's
 * reachability is off (`client.reachabilityEnabled`). `notifiable` / `isNotifiable`: false with
 * reachability on (Confab sends no push notifications), null with it off.
 */
export class User extends Emitter {
  constructor(client, view) {
    super();
    this._client = client;
    this._subscribed = false;
    this._update(view);
  }
  _update(view) {
    this.identity = view.identity;
    this.friendlyName = view.friendlyName ?? null;
    this.attributes = view.attributes ?? {};
    this.online = onlineOf(view);
    this.isOnline = this.online;
    this.notifiable = this.online === null ? null : false;
    this.isNotifiable = this.notifiable;
  }
  /** Whether the client lists the user in `getSubscribedUsers()`: `client.user`, and the users
   * `getUser()` (or a descriptor's `subscribe()`) returned until `unsubscribe()`. */
  get isSubscribed() {
    return this === this._client.user || this._subscribed;
  }
  /** Takes the user out of `getSubscribedUsers()` (not `client.user`). The object is still
   * kept current while the client holds it; `getUser()` subscribes again. */
  async unsubscribe() {
    if (this !== this._client.user) this._subscribed = false;
  }
  async _updateSelf(params) {
    // The server edits the signed-in user only: never write its answer into someone else.
    if (this !== this._client.user) throw new ConfabError(0, "Only the signed-in user (client.user) can be updated", 400);
    this._update(await this._client._request("updateUser", params));
    return this;
  }
  /** Resolves once the server stored it; `updated` follows with the server's event. */
  updateFriendlyName(friendlyName) {
    return this._updateSelf({ friendlyName });
  }
  updateAttributes(attributes) {
    return this._updateSelf({ attributes });
  }
}

/**
 * A snapshot of a user, like twilio-chat's UserDescriptor: not kept current, and not among the
 * client's subscribed users; `subscribe()` gives the live User object. `online` and
 * `notifiable` are null while the service's reachability is off (see User).
 */
export class UserDescriptor {
  constructor(client, view) {
    this._client = client;
    this.identity = view.identity;
    this.friendlyName = view.friendlyName ?? null;
    this.attributes = view.attributes ?? {};
    this.online = onlineOf(view);
    this.notifiable = this.online === null ? null : false;
  }
  /** The client's User object for this user (fetched afresh; the same object `getUser()`
   * gives), which is kept current and listed by `getSubscribedUsers()`. */
  subscribe() {
    return this._client.getUser(this.identity);
  }
}

/**
 * A channel member. A channel keeps one Member per member (from `getMembers()`,
 * `getMemberByIdentity()`, `memberJoined`, ...) current until it leaves; it emits `updated`
 * ({member, updateReasons}, e.g. lastConsumedMessageIndex, lastConsumptionTimestamp,
 * attributes, roleSid, notificationLevel) on each `memberUpdated`.
 */
export class Member extends Emitter {
  constructor(channel, view) {
    super();
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
  /** Replaces the member's attributes (any JSON value); resolves with this member, updated.
   * One's own needs the channel permission editOwnMemberAttributes, another member's
   * editAnyMemberAttributes (else a ConfabError 50107). Every member then gets
   * `memberUpdated` (and this channel's Member object `updated`) with reason "attributes". */
  async updateAttributes(attributes) {
    if (attributes === undefined) throw new ConfabError(0, "updateAttributes needs the new attributes", 400);
    const view = await this.channel._call("updateMemberAttributes", { identity: this.identity, attributes });
    this._update(view);
    // The channel's own object for the member, when this one is another (a typing event's).
    const held = this.channel._members.get(view.sid);
    if (held && held !== this) held._update(view);
    return this;
  }
  /** The client's User object for the member (see `Client.getUser`). */
  getUser() {
    return this.channel._client.getUser(this.identity);
  }
  /** A snapshot of the member's user (see `Client.getUserDescriptor`). */
  getUserDescriptor() {
    return this.channel._client.getUserDescriptor(this.identity);
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

/**
 * A message. A channel keeps the Message objects it handed out (`getMessages()`,
 * `messageAdded`; the newest-used MESSAGE_CACHE_SIZE of them) current; each emits `updated`
 * ({message, updateReasons}, e.g. body, attributes, lastUpdatedBy, dateUpdated) on each
 * `messageUpdated`.
 */
export class Message extends Emitter {
  constructor(channel, view) {
    super();
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
    this.media = view.media ? (this.media?.sid === view.media.sid ? this.media : new Media(this.channel._client, view.media)) : null;
    this.memberSid = view.memberSid ?? null;
    this.dateCreated = parseDate(view.dateCreated);
    this.dateUpdated = parseDate(view.dateUpdated);
    this.timestamp = this.dateCreated;
    this.lastUpdatedBy = view.lastUpdatedBy ?? null;
  }
  async _edit(params) {
    const view = await this.channel._call("updateMessage", { ...params, index: this.index });
    this._update(view);
    // An object handed out again after this one left the cache is kept current too.
    const cached = this.channel._messages.get(this.index);
    if (cached && cached !== this) cached._update(view);
    return this;
  }
  /** Resolves once the server stored it (the object already shows it); `updated` follows with
   * the server's `messageUpdated`. */
  updateBody(body) {
    return this._edit({ body });
  }
  updateAttributes(attributes) {
    return this._edit({ attributes });
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

/**
 * A channel and its operations; the client keeps one Channel per channel. Emits the channel's
 * events (messageAdded, messageUpdated, messageRemoved, memberJoined, memberLeft,
 * memberUpdated, typingStarted, typingEnded, channelUpdated, channelRemoved) and, like
 * twilio-chat's Channel, `updated` ({channel, updateReasons}, e.g. friendlyName, uniqueName,
 * attributes, dateUpdated) with each `channelUpdated`, and `removed` (the channel) when it is
 * deleted.
 */
export class Channel extends Emitter {
  constructor(client, view) {
    super();
    this._client = client;
    /** The signed-in user's notification level in the channel ("default" or "muted"): from
     * the node's view of a channel the user is a member of, and `setUserNotificationLevel`. */
    this.notificationLevel = "default";
    // sid -> Member, for this channel's members seen so far (until they leave).
    this._members = new Map();
    // index -> Message, the MESSAGE_CACHE_SIZE most recently handed out.
    this._messages = new Map();
    this._update(view);
  }
  /** The channel's Member object for `view`, brought up to date. */
  _member(view) {
    let member = this._members.get(view.sid);
    if (member) member._update(view);
    else {
      member = new Member(this, view);
      this._members.set(view.sid, member);
    }
    return member;
  }
  /** The channel's Message object for `view`, brought up to date and kept in the cache. */
  _message(view) {
    let message = this._messages.get(view.index);
    if (message) message._update(view);
    else message = new Message(this, view);
    return remember(this._messages, view.index, message, MESSAGE_CACHE_SIZE);
  }
  _update(view, { personal = true } = {}) {
    const d = describe(view);
    if (!personal) {
      // Member-wide events do not carry the caller's status and read horizon.
      delete d.status;
      delete d.lastConsumedMessageIndex;
    }
    Object.assign(this, d);
    // Only views for the caller as a member carry it.
    if (typeof view.notificationLevel === "string") this.notificationLevel = view.notificationLevel;
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
  /** Every member, as the channel's Member objects (the same ones on every call). */
  async getMembers() {
    const result = await this._call("getMembers");
    return result.items.map((m) => this._member(m));
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
  /** How many messages the signed-in member has not consumed; null, as in twilio-chat, while
   * it has no read horizon (before its first `updateLastConsumedMessageIndex`,
   * `advanceLastConsumedMessageIndex` or `setAllMessagesConsumed`). */
  async getUnconsumedMessagesCount() {
    return (await this._call("getUnconsumedMessagesCount")).count ?? null;
  }
  /** Sets the signed-in user's notification level in the channel: "default" or "muted" (any
   * other value is refused with a ConfabError before anything is sent). Resolves once stored;
   * `notificationLevel` shows it, and the channel emits `updated` (and the client
   * `channelUpdated`) with reason "notificationLevel" when it changed. Needs the channel
   * permission editNotificationLevel. */
  async setUserNotificationLevel(notificationLevel) {
    if (!NOTIFICATION_LEVELS.includes(notificationLevel)) {
      throw new ConfabError(0, `Notification level must be one of ${NOTIFICATION_LEVELS.join(", ")}`, 400);
    }
    const view = await this._call("setNotificationLevel", { level: notificationLevel });
    const held = this._members.get(view.sid);
    if (held) held._update(view);
    const level = view.notificationLevel ?? notificationLevel;
    if (level !== this.notificationLevel) {
      this.notificationLevel = level;
      const args = { channel: this, updateReasons: ["notificationLevel"] };
      this.emit("updated", args);
      this._client.emit("channelUpdated", args);
    }
  }
  /** A Paginator of UserDescriptors of the channel's members, `pageSize` (default 50) a page;
   * each descriptor is fetched when its page is. */
  async getUserDescriptors(pageSize = USER_DESCRIPTOR_PAGE_SIZE) {
    const identities = (await this.getMembers()).map((m) => m.identity);
    return this._client._userDescriptorPage(identities, Math.max(1, pageSize), 0);
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
    const items = result.items.map((m) => this._message(m));
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
 * The entry point, like twilio-chat's `Client`. Either `await Client.create(token, {url})`,
 * which resolves once the client is initialized (and rejects when the token is refused), or,
 * like current twilio-chat, `new Client(token, {url})`, which starts connecting at once:
 * subscribe to `stateChanged` ("initialized" once the first connection is initialized, or
 * "failed" when the token is refused then; also in `client.state`) before using it.
 *
 * Emits: stateChanged (State), connectionStateChanged (ConnectionState), connectionError
 * ({terminal, message, httpStatusCode, errorCode}: a connection attempt failed or the token was
 * refused; `terminal` when the client will not try again), channelAdded, channelInvited,
 * channelJoined, channelLeft, channelRemoved, channelUpdated, messageAdded, messageUpdated,
 * messageRemoved, memberJoined, memberLeft, memberUpdated, typingStarted, typingEnded,
 * userUpdated ({user: User, updateReasons}), tokenAboutToExpire, tokenExpired.
 *
 * `client.reachabilityEnabled` is the service's `ReachabilityEnabled` (read at each
 * connection's initialization): while it is off users' `online` is null and no online/offline
 * `userUpdated` events come.
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
    // identity -> User, the USER_CACHE_SIZE most recently handed out (client.user aside).
    this._users = new Map();
    /** Whether the service tracks its users' online status (its `ReachabilityEnabled`), as of
     * the latest connection's initialization; false until then. */
    this.reachabilityEnabled = false;
    this._pending = new Map();
    this._queue = [];
    this._lastSeq = {};
    this._nextId = 1;
    this._attempt = 0;
    this._closed = false;
    this.connectionState = "connecting";
    /** "uninitialized", then "initialized" or "failed" (see `stateChanged`). */
    this.state = "uninitialized";
    // Like twilio-chat, the signed-in user exists from the start (to subscribe to); its
    // fields are the server's once the client is initialized.
    this.user = new User(this, { identity: tokenClaims(token)?.grants?.identity ?? null });
    this._firstConnection = new Promise((resolve, reject) => {
      this._resolveFirst = resolve;
      this._rejectFirst = reject;
    });
    // An application of `new Client` may never await it: its rejection is reported by
    // stateChanged "failed" and connectionError instead.
    this._firstConnection.catch(() => {});
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
    // What `connectionError` reports about this attempt: its socket error, and whether it
    // was reported already (a refused init is followed by the server's close).
    this._attemptError = null;
    this._attemptReported = false;
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
    ws.onerror = (event) => {
      if (ws === this._ws) this._attemptError = event?.message ?? event?.error?.message ?? null;
    };
  }

  _onFrame(frame) {
    if (frame.type === "reply" && frame.id === 0) {
      if (!frame.ok) {
        this._deny(frame.error?.message ?? "token rejected", frame.error?.code, frame.error?.status);
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
    this.reachabilityEnabled = result.reachabilityEnabled === true;
    this.user._update(result.user);
    for (const view of result.channels) {
      this._channel(view);
      // A quiet channel still resumes from here after the next reconnect.
      if (view.status === "joined" && typeof view.lastSeq === "number") {
        if (result.resumed?.[view.sid] === false || this._lastSeq[view.sid] === undefined) this._lastSeq[view.sid] = view.lastSeq;
      }
    }
    this._setState("connected");
    const first = !!this._resolveFirst;
    if (first) {
      this._resolveFirst(this);
      this._resolveFirst = null;
    }
    const queued = this._queue;
    this._queue = [];
    for (const call of queued) this._send(call);
    if (first) {
      // Always after the constructor returned: it comes with a frame of the server.
      this.state = "initialized";
      this.emit("stateChanged", "initialized");
    }
  }

  /** Reports a failed connection attempt once (`connectionError`). */
  _connectionError(terminal, message, httpStatusCode = null, errorCode = null) {
    if (this._attemptReported) return;
    this._attemptReported = true;
    this.emit("connectionError", { terminal, message, httpStatusCode, errorCode });
  }

  /** The token was refused: at the start the client gives up (terminal), later it retries. */
  _deny(reason, code, status) {
    this._setState("denied");
    const first = !!(this._rejectFirst && this._resolveFirst);
    if (first) {
      this._rejectFirst(new ConfabError(code ?? 51007, reason, 401));
      this._resolveFirst = null;
      this._closed = true;
    }
    this._connectionError(first, `Connection error: ${reason}`, status ?? 401, code ?? 51007);
    if (first && this.state !== "failed") {
      this.state = "failed";
      this.emit("stateChanged", "failed");
    }
  }

  _onClose(ws, code) {
    if (ws !== this._ws) return;
    const initialized = this._ready;
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
      if (!initialized) {
        // The attempt failed before the server initialized it (nothing listening, a proxy
        // refusing the upgrade, a drop): the client tries again.
        const cause = this._attemptError ?? `closed with code ${code}`;
        this._connectionError(false, `Connection error: ${cause}`);
      }
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
        let message;
        if (event === "messageAdded") {
          channel.lastMessage = { index: data.index, dateCreated: parseDate(data.dateCreated) };
          channel.messagesCount = Math.max(channel.messagesCount, data.index + 1);
          message = channel._message(data);
        } else {
          // The object handed out for it, if any, and out of the cache.
          message = channel._messages.get(data.index);
          if (message) message._update(data);
          else message = new Message(channel, data);
          channel._messages.delete(data.index);
        }
        this._emitBoth(channel, event, message);
        break;
      }
      case "messageUpdated": {
        if (!channel) return;
        const message = channel._message(data.message);
        const args = { message, updateReasons: data.updateReasons ?? [] };
        message.emit("updated", args);
        this._emitBoth(channel, event, args);
        break;
      }
      case "memberJoined":
      case "memberLeft": {
        if (!channel) return;
        const member = channel._member(data);
        if (event === "memberLeft") channel._members.delete(data.sid);
        this._emitBoth(channel, event, member);
        break;
      }
      case "memberUpdated": {
        if (!channel) return;
        if (data.member.identity === this.user?.identity) channel.lastConsumedMessageIndex = data.member.lastConsumedMessageIndex ?? null;
        const member = channel._member(data.member);
        const args = { member, updateReasons: data.updateReasons ?? [] };
        member.emit("updated", args);
        this._emitBoth(channel, event, args);
        break;
      }
      case "typingStarted":
      case "typingEnded":
        if (!channel) return;
        // The channel's Member when known, else one with what the event says.
        this._emitBoth(channel, event, channel._members.get(data.memberSid) ?? new Member(channel, { sid: data.memberSid, identity: data.identity }));
        break;
      case "channelUpdated": {
        const known = this._channels.get(data.channel?.sid);
        // The caller's own notification level, which this client may have applied already from
        // its reply to setUserNotificationLevel.
        const levelOnly = (data.updateReasons ?? []).every((r) => r === "notificationLevel");
        if (known && levelOnly && known.notificationLevel === data.channel.notificationLevel) break;
        const updated = this._channel(data.channel, { personal: false });
        const args = { channel: updated, updateReasons: data.updateReasons ?? [] };
        updated.emit("updated", args);
        this._emitBoth(updated, event, args);
        break;
      }
      case "channelRemoved": {
        const removed = this._channel(data, { personal: false });
        removed.status = "notParticipating";
        this._channels.delete(data.sid);
        delete this._lastSeq[data.sid];
        this._emitBoth(removed, event, removed);
        removed.emit("removed", removed);
        removed._members.clear();
        removed._messages.clear();
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
      case "userUpdated": {
        const user = this._user(data.user);
        const args = { user, updateReasons: data.updateReasons ?? [] };
        user.emit("updated", args);
        this.emit(event, args);
        break;
      }
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

  /** The client's User object for `view` (`client.user` for the signed-in user), brought up
   * to date. */
  _user(view) {
    if (view.identity === this.user.identity) {
      this.user._update(view);
      return this.user;
    }
    let user = this._users.get(view.identity);
    if (user) user._update(view);
    else user = new User(this, view);
    return remember(this._users, view.identity, user, USER_CACHE_SIZE);
  }

  /** The user, as the client's User object for it (the same one each time while it is in the
   * cache; `client.user` for the signed-in user), which emits `updated` and is listed by
   * `getSubscribedUsers()` from then on. */
  async getUser(identity) {
    const user = this._user(await this._request("getUser", { identity }));
    user._subscribed = true;
    return user;
  }

  /** A snapshot of the user (a UserDescriptor), which is not kept current and subscribes to
   * nothing; its `subscribe()` gives the User object. */
  async getUserDescriptor(identity) {
    return new UserDescriptor(this, await this._request("getUser", { identity }));
  }

  /** The User objects the client holds and keeps current for the application: `client.user`
   * first, then those `getUser()` returned (at most USER_CACHE_SIZE, the most recently used;
   * not those unsubscribed since). */
  async getSubscribedUsers() {
    return [this.user, ...[...this._users.values()].filter((u) => u._subscribed)];
  }

  /** A page of UserDescriptors of `identities`, from `offset`, `pageSize` of them. */
  async _userDescriptorPage(identities, pageSize, offset) {
    const slice = identities.slice(offset, offset + pageSize);
    const items = await Promise.all(slice.map((identity) => this.getUserDescriptor(identity)));
    const next = offset + pageSize < identities.length ? () => this._userDescriptorPage(identities, pageSize, offset + pageSize) : null;
    const prev = offset > 0 ? () => this._userDescriptorPage(identities, pageSize, Math.max(0, offset - pageSize)) : null;
    return new Paginator(items, { next, prev });
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
