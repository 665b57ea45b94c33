// TypeScript declarations of the Confab JS SDK (web/sdk/confab.js).

export type ConnectionState = "connecting" | "connected" | "disconnected" | "denied";
/** The client's state: "uninitialized" until the first connection is initialized
 * ("initialized") or its token refused ("failed"); `stateChanged` reports the last two. */
export type State = "uninitialized" | "initialized" | "failed";
export type ChannelStatus = "joined" | "invited" | "notParticipating";
/** A user's notification level in a channel. */
export type NotificationLevel = "default" | "muted";

export type ChannelUpdateReason = "friendlyName" | "uniqueName" | "attributes" | "createdBy" | "dateCreated" | "dateUpdated" | "notificationLevel";
export type MemberUpdateReason = "attributes" | "dateCreated" | "dateUpdated" | "roleSid" | "lastConsumedMessageIndex" | "lastConsumptionTimestamp" | "notificationLevel";
export type MessageUpdateReason = "body" | "lastUpdatedBy" | "dateCreated" | "dateUpdated" | "attributes" | "author";
export type UserUpdateReason = "friendlyName" | "attributes" | "online";

/** `updated` of a Channel, and the `channelUpdated` event. */
export interface ChannelUpdatedEventArgs {
  channel: Channel;
  updateReasons: ChannelUpdateReason[];
}
/** `updated` of a Member, and the `memberUpdated` event. */
export interface MemberUpdatedEventArgs {
  member: Member;
  updateReasons: MemberUpdateReason[];
}
/** `updated` of a Message, and the `messageUpdated` event. */
export interface MessageUpdatedEventArgs {
  message: Message;
  updateReasons: MessageUpdateReason[];
}
/** `updated` of a User, and the `userUpdated` event. */
export interface UserUpdatedEventArgs {
  user: User;
  updateReasons: UserUpdateReason[];
}
/** The `connectionError` event: a connection attempt failed or the token was refused. */
export interface ConnectionError {
  /** True when the client will not try again (a token refused at the start). */
  terminal: boolean;
  message: string;
  /** 401 for a refused token; null when no server answered. */
  httpStatusCode: number | null;
  /** The Twilio error code (51007, 20104, 20157, ...); null when no server answered. */
  errorCode: number | null;
}

export interface ClientOptions {
  /** The node's base URL (http(s)://host:port) or its realtime URL; defaults to the page's origin. */
  url?: string;
  /** A WebSocket implementation (Node: the `ws` package); defaults to `globalThis.WebSocket`. */
  WebSocket?: unknown;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export class ConfabError extends Error {
  /** Twilio error code, or "disconnected" when the reply was lost with the connection, or 0
   * when the SDK refused the call itself or no node answered an HTTP request. */
  code: number | string;
  status: number;
}

declare class Emitter {
  on(event: string, handler: (...args: any[]) => void): this;
  once(event: string, handler: (...args: any[]) => void): this;
  off(event: string, handler: (...args: any[]) => void): this;
  removeAllListeners(event?: string): this;
}

export class Paginator<T> {
  items: T[];
  readonly hasNextPage: boolean;
  readonly hasPrevPage: boolean;
  nextPage(): Promise<Paginator<T>>;
  prevPage(): Promise<Paginator<T>>;
}

/** `client.user` and the users of `getUser()` emit `updated` on the server's `userUpdated`. */
export class User extends Emitter {
  on(event: "updated", handler: (args: UserUpdatedEventArgs) => void): this;
  on(event: string, handler: (...args: any[]) => void): this;
  identity: string;
  friendlyName: string | null;
  attributes: any;
  /** Whether the user has a connected session; null while the service's reachability is off
   * (`Client.reachabilityEnabled`). */
  online: boolean | null;
  /** The same as `online`. */
  isOnline: boolean | null;
  /** Always false with reachability on (Confab sends no push notifications); null with it off. */
  notifiable: boolean | null;
  /** The same as `notifiable`. */
  isNotifiable: boolean | null;
  /** Whether `Client.getSubscribedUsers()` lists the user: `client.user`, and the users
   * `getUser()` (or `UserDescriptor.subscribe()`) returned, until `unsubscribe()`. */
  readonly isSubscribed: boolean;
  /** The signed-in user's only (`client.user`); rejects for anyone else. */
  updateFriendlyName(friendlyName: string): Promise<User>;
  updateAttributes(attributes: any): Promise<User>;
  /** Leaves `getSubscribedUsers()` (does nothing for `client.user`). */
  unsubscribe(): Promise<void>;
}

/** A snapshot of a user, not kept current; `subscribe()` gives the live User object. */
export class UserDescriptor {
  identity: string;
  friendlyName: string | null;
  attributes: any;
  /** Null while the service's reachability is off. */
  online: boolean | null;
  /** False with reachability on, null with it off. */
  notifiable: boolean | null;
  /** The client's User object for the user (as `Client.getUser`). */
  subscribe(): Promise<User>;
}

/** One object per member of a channel, kept current; emits `updated` on `memberUpdated`. */
export class Member extends Emitter {
  on(event: "updated", handler: (args: MemberUpdatedEventArgs) => void): this;
  on(event: string, handler: (...args: any[]) => void): this;
  channel: Channel;
  sid: string;
  identity: string;
  roleSid: string;
  attributes: any;
  dateCreated: Date | null;
  dateUpdated: Date | null;
  lastConsumedMessageIndex: number | null;
  lastConsumptionTimestamp: Date | null;
  /** Replaces the member's attributes; resolves with this member, updated. One's own needs
   * editOwnMemberAttributes, another member's editAnyMemberAttributes (else 50107). */
  updateAttributes(attributes: any): Promise<Member>;
  /** The client's User object for the member (as `Client.getUser`). */
  getUser(): Promise<User>;
  /** A snapshot of the member's user (as `Client.getUserDescriptor`). */
  getUserDescriptor(): Promise<UserDescriptor>;
}

/** The file of a media message. */
export class Media {
  sid: string;
  contentType: string | null;
  filename: string | null;
  /** In bytes. */
  size: number;
  category: "media";
  /** A URL serving the file without credentials for a few minutes (an `<img src>`, a download
   * link); ask again rather than keeping it. */
  getContentTemporaryUrl(): Promise<string>;
}

/** A media message for `Channel.sendMessage` (or pass a `FormData` whose first file is the upload). */
export interface SendMediaOptions {
  /** The MIME type; defaults to the Blob's own type. */
  contentType?: string;
  media: string | ArrayBuffer | ArrayBufferView | Blob;
  /** Defaults to the name of a `File`. */
  filename?: string;
}

/** The objects a channel handed out (its 1,000 most recently used) are kept current and emit
 * `updated` on `messageUpdated`. */
export class Message extends Emitter {
  on(event: "updated", handler: (args: MessageUpdatedEventArgs) => void): this;
  on(event: string, handler: (...args: any[]) => void): this;
  channel: Channel;
  sid: string;
  index: number;
  author: string;
  body: string;
  attributes: any;
  type: "text" | "media";
  /** The file of a media message; null for a text message. */
  media: Media | null;
  memberSid: string | null;
  dateCreated: Date | null;
  dateUpdated: Date | null;
  timestamp: Date | null;
  lastUpdatedBy: string | null;
  updateBody(body: string): Promise<Message>;
  updateAttributes(attributes: any): Promise<Message>;
  remove(): Promise<Message>;
}

interface ChannelFields {
  sid: string;
  uniqueName: string | null;
  friendlyName: string | null;
  attributes: any;
  type: "public" | "private";
  isPrivate: boolean;
  createdBy: string;
  dateCreated: Date | null;
  dateUpdated: Date | null;
  membersCount: number;
  messagesCount: number;
  lastMessage: { index: number; dateCreated: Date | null } | null;
  status: ChannelStatus;
  lastConsumedMessageIndex: number | null;
}

export interface ChannelDescriptor extends ChannelFields {}
export class ChannelDescriptor {
  getChannel(): Promise<Channel>;
}

export interface Channel extends ChannelFields {}
/** One object per channel, kept current; emits the channel's events, `updated` with each
 * `channelUpdated` and `removed` when the channel is deleted. */
export class Channel extends Emitter {
  on(event: "updated" | "channelUpdated", handler: (args: ChannelUpdatedEventArgs) => void): this;
  on(event: "removed" | "channelRemoved", handler: (channel: Channel) => void): this;
  on(event: "memberUpdated", handler: (args: MemberUpdatedEventArgs) => void): this;
  on(event: "messageUpdated", handler: (args: MessageUpdatedEventArgs) => void): this;
  on(event: string, handler: (...args: any[]) => void): this;
  /** The signed-in user's notification level here, as this client last set it; "default"
   * until then. */
  notificationLevel: NotificationLevel;
  join(): Promise<Channel>;
  leave(): Promise<Channel>;
  decline(): Promise<Channel>;
  invite(identity: string): Promise<void>;
  add(identity: string): Promise<void>;
  removeMember(member: Member | string): Promise<void>;
  delete(): Promise<Channel>;
  updateAttributes(attributes: any): Promise<Channel>;
  updateFriendlyName(friendlyName: string): Promise<Channel>;
  updateUniqueName(uniqueName: string): Promise<Channel>;
  /** The channel's Member objects (the same ones on every call). */
  getMembers(): Promise<Member[]>;
  getMemberByIdentity(identity: string): Promise<Member>;
  getMemberBySid(sid: string): Promise<Member>;
  getAttributes(): Promise<any>;
  getMembersCount(): Promise<number>;
  getMessagesCount(): Promise<number>;
  /** Null while the signed-in member has no read horizon. */
  getUnconsumedMessagesCount(): Promise<number | null>;
  /** "default" or "muted" (anything else rejects with a ConfabError before sending); emits
   * `updated` with reason "notificationLevel" when it changed. */
  setUserNotificationLevel(notificationLevel: NotificationLevel): Promise<void>;
  /** UserDescriptors of the channel's members, `pageSize` (default 50) a page. */
  getUserDescriptors(pageSize?: number): Promise<Paginator<UserDescriptor>>;
  /** A text message (a string) or a media message (uploaded first); resolves with its index. */
  sendMessage(message: string | FormData | SendMediaOptions, attributes?: any): Promise<number>;
  getMessages(pageSize?: number, anchor?: number, direction?: "backwards" | "forward"): Promise<Paginator<Message>>;
  typing(): Promise<void>;
  updateLastConsumedMessageIndex(index: number | null): Promise<number>;
  advanceLastConsumedMessageIndex(index: number): Promise<number>;
  setAllMessagesConsumed(): Promise<number>;
  setNoMessagesConsumed(): Promise<number>;
}

/**
 * `await Client.create(token, options)` resolves once initialized (rejects on a refused token);
 * `new Client(token, options)` starts connecting and reports `stateChanged` ("initialized" or
 * "failed"), which is never emitted before the constructor returned.
 */
export class Client extends Emitter {
  constructor(token: string, options?: ClientOptions);
  static create(token: string, options?: ClientOptions): Promise<Client>;
  on(event: "stateChanged", handler: (state: "initialized" | "failed") => void): this;
  on(event: "connectionStateChanged", handler: (state: ConnectionState) => void): this;
  on(event: "connectionError", handler: (error: ConnectionError) => void): this;
  on(event: "channelUpdated", handler: (args: ChannelUpdatedEventArgs) => void): this;
  on(event: "memberUpdated", handler: (args: MemberUpdatedEventArgs) => void): this;
  on(event: "messageUpdated", handler: (args: MessageUpdatedEventArgs) => void): this;
  on(event: "userUpdated", handler: (args: UserUpdatedEventArgs) => void): this;
  on(event: string, handler: (...args: any[]) => void): this;
  state: State;
  connectionState: ConnectionState;
  /** The signed-in user; exists from the start, its fields filled once initialized. */
  user: User;
  /** The service's `ReachabilityEnabled` as of the latest connection's initialization (false
   * until then): while it is off users' `online` is null. */
  reachabilityEnabled: boolean;
  getPublicChannelDescriptors(pageSize?: number): Promise<Paginator<ChannelDescriptor>>;
  getUserChannelDescriptors(pageSize?: number): Promise<Paginator<ChannelDescriptor>>;
  getSubscribedChannels(): Promise<Paginator<Channel>>;
  getChannelBySid(sid: string): Promise<Channel>;
  getChannelByUniqueName(uniqueName: string): Promise<Channel>;
  createChannel(options?: { friendlyName?: string; uniqueName?: string; isPrivate?: boolean; attributes?: any }): Promise<Channel>;
  /** The client's User object for `identity` (the same one each time; `client.user` for the
   * signed-in user), which emits `updated`. */
  getUser(identity: string): Promise<User>;
  /** A snapshot of the user; subscribes to nothing. */
  getUserDescriptor(identity: string): Promise<UserDescriptor>;
  /** `client.user`, then the users `getUser()` returned (not unsubscribed since). */
  getSubscribedUsers(): Promise<User[]>;
  updateToken(token: string): Promise<Client>;
  shutdown(): Promise<void>;
}

export default Client;
