// TypeScript declarations of the Confab JS SDK (web/sdk/confab.js).

export type ConnectionState = "connecting" | "connected" | "disconnected" | "denied";
export type ChannelStatus = "joined" | "invited" | "notParticipating";

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

export class User extends Emitter {
  identity: string;
  friendlyName: string | null;
  attributes: any;
  online: boolean;
  isOnline: boolean;
  updateFriendlyName(friendlyName: string): Promise<User>;
  updateAttributes(attributes: any): Promise<User>;
}

export class Member {
  channel: Channel;
  sid: string;
  identity: string;
  roleSid: string;
  attributes: any;
  dateCreated: Date | null;
  dateUpdated: Date | null;
  lastConsumedMessageIndex: number | null;
  lastConsumptionTimestamp: Date | null;
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

export class Message {
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
export class Channel extends Emitter {
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
  getMembers(): Promise<Member[]>;
  getMemberByIdentity(identity: string): Promise<Member>;
  getMemberBySid(sid: string): Promise<Member>;
  getAttributes(): Promise<any>;
  getMembersCount(): Promise<number>;
  getMessagesCount(): Promise<number>;
  getUnconsumedMessagesCount(): Promise<number>;
  /** A text message (a string) or a media message (uploaded first); resolves with its index. */
  sendMessage(message: string | FormData | SendMediaOptions, attributes?: any): Promise<number>;
  getMessages(pageSize?: number, anchor?: number, direction?: "backwards" | "forward"): Promise<Paginator<Message>>;
  typing(): Promise<void>;
  updateLastConsumedMessageIndex(index: number | null): Promise<number>;
  advanceLastConsumedMessageIndex(index: number): Promise<number>;
  setAllMessagesConsumed(): Promise<number>;
  setNoMessagesConsumed(): Promise<number>;
}

export class Client extends Emitter {
  static create(token: string, options?: ClientOptions): Promise<Client>;
  connectionState: ConnectionState;
  user: User;
  getPublicChannelDescriptors(pageSize?: number): Promise<Paginator<ChannelDescriptor>>;
  getUserChannelDescriptors(pageSize?: number): Promise<Paginator<ChannelDescriptor>>;
  getSubscribedChannels(): Promise<Paginator<Channel>>;
  getChannelBySid(sid: string): Promise<Channel>;
  getChannelByUniqueName(uniqueName: string): Promise<Channel>;
  createChannel(options?: { friendlyName?: string; uniqueName?: string; isPrivate?: boolean; attributes?: any }): Promise<Channel>;
  getUser(identity: string): Promise<User>;
  updateToken(token: string): Promise<Client>;
  shutdown(): Promise<void>;
}

export default Client;
