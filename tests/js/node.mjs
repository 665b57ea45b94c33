// Starts real `confab` nodes for the JS tests: loopback, a fresh data directory, a free port.

import { spawn } from "node:child_process";
import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { createHmac } from "node:crypto";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function confabBinary() {
  const path = process.env.CONFAB_BIN ?? join(root, "target", "debug", "confab");
  if (!existsSync(path)) throw new Error(`${path} not found: run cargo build -p confab-server or set CONFAB_BIN`);
  return path;
}

/** A free loopback port (so that a restarted node can come back on the same address). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** The account credentials every test node runs with (for REST calls). */
export const ACCOUNT = {
  sid: "AC" + "0".repeat(28) + "1234",
  authToken: "js-test-auth-token",
};

/** The API key every test node runs with (to mint access tokens for any service). */
export const API_KEY = {
  sid: "SK" + "0".repeat(28) + "5678",
  secret: "js-test-api-key-secret",
};

/** The match of `pattern` in what `proc` prints on stdout, once it has printed it (the rest of
 * its output is drained); rejects if `name` exits or cannot start first. */
function announced(proc, pattern, name) {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const onData = (chunk) => {
      buffer += chunk.toString();
      const match = buffer.match(pattern);
      if (match) {
        proc.stdout.off("data", onData);
        proc.stdout.resume();
        resolve(match);
      }
    };
    proc.stdout.on("data", onData);
    proc.once("error", reject);
    proc.once("exit", (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
  });
}

/** SIGTERM to `proc` (if it runs) and its exit. */
async function terminate(proc) {
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.kill("SIGTERM");
  await exited;
}

export class Node {
  /** `env` holds more `CONFAB_*` settings (`CONFAB_REDIS_URL` for a cluster node). */
  constructor({ port, dataDir, env = {} } = {}) {
    this.port = port;
    this.dataDir = dataDir ?? mkdtempSync(join(tmpdir(), "confab-js-"));
    this.env = env;
  }

  /** A REST call as the account: `POST path` with `form` (or `GET path` without a form),
   * answering the parsed JSON. */
  async rest(path, form) {
    const response = await fetch(`${this.url}${path}`, {
      method: form === undefined ? "GET" : "POST",
      headers: {
        Authorization: "Basic " + Buffer.from(`${ACCOUNT.sid}:${ACCOUNT.authToken}`).toString("base64"),
        ...(form === undefined ? {} : { "Content-Type": "application/x-www-form-urlencoded" }),
      },
      body: form === undefined ? undefined : new URLSearchParams(form).toString(),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
    return body;
  }

  /** A new chat service created over REST with `settings` (REST form fields) applied; answers
   * its SID. */
  async createService(friendlyName, settings = {}) {
    const { sid } = await this.rest("/v2/Services", { FriendlyName: friendlyName });
    if (Object.keys(settings).length > 0) await this.rest(`/v2/Services/${sid}`, settings);
    return sid;
  }

  /** An access token for `identity` in `serviceSid`, signed with the node's API key as
   * Twilio's helper libraries sign one (HS256, `cty: twilio-fpa;v=1`). */
  token(identity, serviceSid, ttlSecs = 3600) {
    const now = Math.floor(Date.now() / 1000);
    const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const header = part({ alg: "HS256", typ: "JWT", cty: "twilio-fpa;v=1" });
    const claims = part({
      jti: `${API_KEY.sid}-${now}`,
      iss: API_KEY.sid,
      sub: ACCOUNT.sid,
      iat: now,
      exp: now + ttlSecs,
      grants: { identity, chat: { service_sid: serviceSid } },
    });
    const signature = createHmac("sha256", API_KEY.secret).update(`${header}.${claims}`).digest("base64url");
    return `${header}.${claims}.${signature}`;
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.proc = spawn(
      confabBinary(),
      ["serve", "--listen", `127.0.0.1:${this.port}`, "--admin-listen", "127.0.0.1:0", "--data-dir", this.dataDir],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env: {
          ...process.env,
          RUST_LOG: "warn",
          CONFAB_ACCOUNT_SID: ACCOUNT.sid,
          CONFAB_AUTH_TOKEN: ACCOUNT.authToken,
          CONFAB_API_KEY_SID: API_KEY.sid,
          CONFAB_API_KEY_SECRET: API_KEY.secret,
          ...this.env,
        },
      },
    );
    const serving = await announced(this.proc, /Confab is serving .* at (\S+)\/v2/, "confab");
    this.url = serving[1];
    return this;
  }

  /** SIGTERM and wait for the exit. */
  async stop() {
    await terminate(this.proc);
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async devToken(identity) {
    const response = await fetch(`${this.url}/dev/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ identity }),
    });
    if (!response.ok) throw new Error(`dev token: ${response.status}`);
    return (await response.json()).token;
  }
}

/** A `redis-server` of its own on a free loopback port, persisting nothing (for cluster nodes). */
export class RedisServer {
  async start() {
    this.port = await freePort();
    this.dir = mkdtempSync(join(tmpdir(), "confab-js-redis-"));
    this.proc = spawn(
      process.env.REDIS_SERVER ?? "redis-server",
      ["--bind", "127.0.0.1", "--port", String(this.port), "--save", "", "--appendonly", "no", "--dir", this.dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await announced(this.proc, /Ready to accept connections/, "redis-server");
    this.url = `redis://127.0.0.1:${this.port}/`;
    return this;
  }

  async stop() {
    await terminate(this.proc);
  }
}
