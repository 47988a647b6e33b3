import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { OutpostError, type Logger } from '@outpost/common';
import WebSocket from 'ws';
import type { Authority } from '../ca/authority.js';
import { headReaches, type ChangeFeed } from '../journal.js';
import { linkTimeout, maxBackoff, pingEvery, type HierarchyConfig } from './config.js';
import { HierarchyErrors } from './errors.js';
import type { ParentRecord } from './model.js';
import { AHEAD_WAIT_MS, page, parentMessage, type ChildMessage, type Entry, type Op } from './protocol.js';
import { HierarchyStore, UP, splitRootKey } from './store.js';
import { certificateFingerprint } from '../ca/authority.js';
import { issueLinkCert } from './tls.js';

const UP_SET: ReadonlySet<string> = new Set(UP);
const isUp = (key: string): boolean => {
  const split = splitRootKey(key);
  return split !== undefined && UP_SET.has(split[0]);
};
const MAX_MESSAGE = 64 * 1024 * 1024;

export interface ChildDeps {
  store: HierarchyStore;
  config: HierarchyConfig;
  authority: Authority;
  name: string;
  feed: ChangeFeed;
  log: Logger;
  now(): number;
  /**
   * Applies the parent's entries and writes `to` as the applied cursor with them (in one
   * batch, so a crash never applies an entry twice or loses one). `snapshot`: a part of a
   * complete copy; `done` on its last part (items of the parent missing from it are removed).
   * Resolves to the applied cursor (entries at or below the current one are skipped: it
   * never moves backwards, but for a complete copy).
   */
  applyDown(parent: ParentRecord, entries: Entry[], to: number, snapshot: boolean, done: boolean): Promise<number>;
  /** A new link is open (a complete copy cut short on the last one starts over). */
  linkOpened?(): void;
  /** Forgets what the parent owns here (leave). */
  forgetParent(parentId: string): Promise<void>;
  /**
   * Whether this core holds the link (several cores on one PostgreSQL: the holder of the
   * `hierarchy.child` lease does; level: always). The others neither connect nor reconnect.
   */
  mayLink(): boolean;
}

/** A join token as `outpost hierarchy token create` prints it: `<id>.<secret>.<sha256 of the parent CA>`. */
export function parseJoinToken(token: string): { id: string; secret: string; fingerprint: string } {
  const m = /^(hjt_[\w-]{4,40})\.([\w-]{16,100})\.([0-9a-f]{64})$/.exec(token.trim());
  if (!m) throw new OutpostError(HierarchyErrors.TOKEN_INVALID, 'not a join token (expected <id>.<secret>.<CA fingerprint>, as `outpost hierarchy token create` prints it)', { status: 400 });
  return { id: m[1]!, secret: m[2]!, fingerprint: m[3]! };
}

interface Req {
  method: 'GET' | 'POST';
  body?: unknown;
  ca?: string;
  cert?: string;
  key?: string;
  /** Check the server's certificate is this core's (CN) and chains to `ca`; without `ca`, anything (only GET /ca, checked by fingerprint after). */
  expectCore?: string;
}

/** One request to a link listener. */
function linkRequest(url: string, path: string, r: Req): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    const req = request(
      u,
      {
        method: r.method,
        headers: r.body === undefined ? {} : { 'content-type': 'application/json' },
        rejectUnauthorized: r.ca !== undefined,
        ...(r.ca ? { ca: r.ca } : {}),
        ...(r.cert ? { cert: r.cert, key: r.key } : {}),
        checkServerIdentity: (_host: string, cert: PeerCertificate) => (r.expectCore === undefined || cert.subject?.CN === r.expectCore ? undefined : new Error(`the link listener is not core ${r.expectCore}'s`)),
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') });
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('the parent did not answer in 15 s')));
    req.on('error', reject);
    req.end(r.body === undefined ? undefined : JSON.stringify(r.body));
  });
}

export type LinkState = 'ok' | 'degraded' | 'failed';

/**
 * The child's side of its link: joins once (token), then keeps one WebSocket to the
 * parent's link listener (mutual TLS, the parent's CA pinned, its core id checked),
 * applies what comes down and sends its own summaries and results up. Reconnects by
 * itself; the journal on both sides makes a reconnection resume where it stopped.
 */
export class ChildSide {
  parent: ParentRecord | undefined;
  #ws: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #stopped = true;
  #chain: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | undefined;
  #backoff = 500;
  #full = false;
  #pumping = false;
  #again = false;
  connected = false;
  since = 0;
  lastSync: number | undefined;
  lastError: string | undefined;
  /** The last seq of this core the parent applied (its welcome, then its acks); undefined until welcomed. */
  upCursor: number | undefined;
  /** The last seq read for up: the next page starts after it. */
  upSent = 0;
  /** The parent's cursor once the pages in flight are applied: the `from` of the next page (a page with nothing of ours is not sent). */
  #upBase = 0;
  /** The `to` of each up page sent and not acked yet, oldest first. */
  upInFlight: number[] = [];
  /** Moves at each welcome: a page read for an earlier one is not sent. */
  #upEpoch = 0;
  parentHead = 0;
  bytesDown = 0;
  bytesUp = 0;
  refused = 0;

  constructor(readonly deps: ChildDeps) {}

  async load(): Promise<void> {
    this.parent = await this.deps.store.parent.get('link');
  }

  start(): void {
    this.#stopped = false;
    this.since = this.deps.now();
    this.#unsubscribe ??= this.deps.feed.onAppend(() => this.pumpUp());
    if (this.parent) this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearTimeout(this.#timer);
    clearInterval(this.#ping);
    this.#ws?.terminate();
    this.#ws = undefined;
    await this.#chain.catch(() => undefined);
  }

  /** Joins `url` (the parent's link listener) with a one-use token. */
  async join(url: string, token: string): Promise<ParentRecord> {
    if (this.parent) throw new OutpostError(HierarchyErrors.ALREADY_JOINED, `this core has a parent already (${this.parent.parentName} at ${this.parent.url}); leave first`, { status: 409 });
    const t = parseJoinToken(token);
    const { authority } = this.deps;
    let ca: { id: string; name: string; caPem: string };
    try {
      const r = await linkRequest(url, '/ca', { method: 'GET' });
      ca = r.body as typeof ca;
      if (r.status !== 200 || typeof ca?.caPem !== 'string' || typeof ca.id !== 'string') throw new Error(`unexpected answer ${r.status}`);
    } catch (err) {
      throw new OutpostError(HierarchyErrors.JOIN_FAILED, `cannot reach the parent's link listener at ${url}: ${(err as Error).message}`, { status: 502, cause: err });
    }
    if (certificateFingerprint(ca.caPem) !== t.fingerprint) throw new OutpostError(HierarchyErrors.CA_MISMATCH, `the core at ${url} is not the one the token was made on (its CA fingerprint differs)`, { status: 502 });
    if (ca.id === authority.coreId) throw new OutpostError(HierarchyErrors.SELF, 'a core cannot join itself', { status: 400 });
    const link = await issueLinkCert(authority);
    const r = await linkRequest(url, '/join', {
      method: 'POST',
      ca: ca.caPem,
      expectCore: ca.id,
      body: { token: `${t.id}.${t.secret}`, id: authority.coreId, name: this.deps.name, caPem: authority.certPem, certPem: link.certPem },
    }).catch((err: unknown) => {
      throw new OutpostError(HierarchyErrors.JOIN_FAILED, `joining ${url} failed: ${(err as Error).message}`, { status: 502, cause: err });
    });
    if (r.status !== 200) {
      const e = (r.body as { error?: { code?: string; message?: string } } | null)?.error;
      throw new OutpostError(e?.code ?? HierarchyErrors.JOIN_FAILED, `the parent refused the join: ${e?.message ?? r.status}`, { status: r.status === 401 ? 403 : 502 });
    }
    const parent: ParentRecord = { url, parentId: ca.id, parentName: ca.name, caPem: ca.caPem, certPem: link.certPem, keyPem: link.keyPem, joinedAt: this.deps.now(), downApplied: 0 };
    await this.deps.store.write([this.deps.store.put(this.deps.store.parent, 'link', parent)]);
    this.parent = parent;
    this.lastError = undefined;
    this.deps.log.info({ parent: parent.parentId, url }, 'joined a parent core');
    if (!this.#stopped) this.#connect();
    return parent;
  }

  /** Leaves the parent: tells it (when connected), forgets it; what it owned here becomes this core's. */
  async leave(): Promise<void> {
    const p = this.parent;
    if (!p) throw new OutpostError(HierarchyErrors.NOT_JOINED, 'this core has no parent', { status: 409 });
    this.#mustLink('leaving the parent');
    if (this.#ws?.readyState === WebSocket.OPEN) this.#send({ t: 'leave' });
    await new Promise((r) => setTimeout(r, 50));
    this.#ws?.terminate();
    this.#ws = undefined;
    clearTimeout(this.#timer);
    await this.#chain.catch(() => undefined);
    await this.deps.store.write([this.deps.store.del(this.deps.store.parent, 'link')]);
    this.parent = undefined;
    this.connected = false;
    await this.deps.forgetParent(p.parentId);
    this.deps.log.info({ parent: p.parentId }, 'left the parent core');
  }

  /** Sends what is pending now, and asks for what the parent has (`full`: a complete copy). */
  now(full = false): void {
    this.#mustLink('replicating now');
    if (full) {
      this.#full = true;
      this.#ws?.terminate();
      return;
    }
    if (this.#ws?.readyState === WebSocket.OPEN) this.#send({ t: 'now' });
    this.pumpUp();
  }

  /** Refuses what only the core holding the link can do (several cores on one PostgreSQL). */
  #mustLink(what: string): void {
    if (this.parent && !this.deps.mayLink()) throw new OutpostError(HierarchyErrors.LINK_ELSEWHERE, `${what} needs the link to the parent, which another core of this store holds (the hierarchy.child lease): ask that core`, { status: 409 });
  }

  /** This core took the link over (the lease): reads the parent as the store has it now and connects. */
  async resume(): Promise<void> {
    this.parent = await this.deps.store.parent.get('link');
    this.since = this.deps.now();
    if (!this.#stopped) this.#connect();
  }

  /** This core no longer holds the link: closes it (and does not reconnect until it holds it again). */
  pause(): void {
    if (!this.#ws) return;
    this.deps.log.info('closing the link to the parent: another core holds it now');
    this.#ws.terminate();
  }

  /** Another core of this store joined or left a parent. */
  remoteParent(p: ParentRecord | undefined): void {
    this.parent = p;
    if (!p) {
      this.#ws?.terminate();
      this.#ws = undefined;
      this.connected = false;
      return;
    }
    if (!this.#stopped) this.#connect();
  }

  state(): LinkState {
    if (this.connected) return 'ok';
    return this.deps.now() - this.since >= this.deps.config.failedAfter ? 'failed' : 'degraded';
  }

  /** Sends on `ws` (the link a message belongs to; default: the current one). */
  #send(m: ChildMessage, ws = this.#ws): void {
    const text = JSON.stringify(m);
    this.bytesUp += Buffer.byteLength(text);
    ws?.send(text);
  }

  #connect(): void {
    const p = this.parent;
    if (!p || this.#stopped || this.#ws || !this.deps.mayLink()) return;
    const url = new URL('/link', p.url.replace(/^http/, 'ws'));
    const tlsOptions = {
      ca: p.caPem,
      cert: p.certPem,
      key: p.keyPem,
      checkServerIdentity: (_host: string, cert: PeerCertificate) => (cert.subject?.CN === p.parentId ? undefined : new Error(`the link listener is not core ${p.parentId}'s`)),
    };
    // A handshake nobody answers (a black-holed path: the TCP connect may even succeed) is abandoned after two ping intervals, and retried.
    const ws = new WebSocket(url, { ...(tlsOptions as object), maxPayload: MAX_MESSAGE, handshakeTimeout: linkTimeout(this.deps.config) });
    this.#ws = ws;
    let alive = true;
    ws.on('open', () => {
      this.connected = true;
      this.#backoff = 500;
      this.lastSync = this.deps.now();
      this.upCursor = undefined;
      this.upInFlight = [];
      this.#upEpoch++;
      const full = this.#full;
      this.#full = false;
      // Hello once what the last link delivered is applied (or dropped): it tells the parent the cursor as written.
      this.#chain = this.#chain.then(() => {
        if (this.#ws !== ws) return;
        this.deps.linkOpened?.();
        this.#send({ t: 'hello', down: p.downApplied, full, name: this.deps.name }, ws);
      });
      clearInterval(this.#ping);
      const every = pingEvery(this.deps.config);
      this.#ping = setInterval(() => {
        if (!alive) {
          this.lastError = 'the parent stopped answering';
          ws.terminate();
          return;
        }
        alive = false;
        ws.ping();
      }, every);
      this.#ping.unref();
    });
    ws.on('pong', () => (alive = true));
    ws.on('message', (data: Buffer) => {
      alive = true;
      this.bytesDown += data.length;
      this.lastSync = this.deps.now();
      this.#chain = this.#chain
        .then(() => (this.#ws === ws ? this.#message(data, ws) : undefined))
        .catch((err: unknown) => {
          this.lastError = (err as Error).message;
          this.deps.log.warn({ err }, 'applying what the parent sent failed; reconnecting');
          // Nothing more of this link is applied (pages after the one that failed are in flight already).
          if (this.#ws === ws) this.#ws = undefined;
          ws.terminate();
        });
    });
    ws.on('unexpected-response', (_req, res) => {
      this.lastError = `the parent refused the link (HTTP ${res.statusCode}): removed from the hierarchy?`;
      ws.terminate();
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
    });
    ws.on('close', () => {
      clearInterval(this.#ping);
      if (this.#ws === ws) this.#ws = undefined;
      if (this.connected) this.since = this.deps.now();
      this.connected = false;
      if (this.#stopped || !this.parent || !this.deps.mayLink()) return;
      this.#timer = setTimeout(() => this.#connect(), this.#backoff);
      this.#timer.unref();
      this.#backoff = Math.min(this.#backoff * 2, maxBackoff(this.deps.config));
    });
  }

  async #message(data: Buffer, ws: WebSocket): Promise<void> {
    const parsed = parentMessage.safeParse(JSON.parse(data.toString('utf8')));
    if (!parsed.success) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, `a message of the parent is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
    const m = parsed.data;
    const p = this.parent;
    if (!p) return;
    switch (m.t) {
      case 'welcome': {
        p.editable = m.editable;
        // The parent applied more of this core than its journal holds (this core restored
        // from a backup): a complete copy up replaces what the parent has of it (cursor -1).
        const ahead = !(await headReaches(this.deps.feed, m.up, AHEAD_WAIT_MS));
        if (ahead) this.deps.log.warn({ cursor: m.up, head: this.deps.feed.head() }, "the parent is ahead of this core's journal (restored from a backup?): sending a complete copy up");
        const up = ahead ? -1 : m.up;
        this.#upEpoch++;
        this.upCursor = up;
        this.upSent = up;
        this.#upBase = up;
        this.upInFlight = [];
        this.pumpUp();
        return;
      }
      case 'down':
        this.parentHead = Math.max(this.parentHead, m.to);
        // A page after a gap (one before it was not applied): never applied; the next hello resumes from the cursor.
        if (!m.snapshot && m.from !== undefined && m.from > p.downApplied) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, `a page after ${m.from}, but this core applied up to ${p.downApplied}: a gap`);
        {
          const cursor = await this.deps.applyDown(p, m.entries, m.to, m.snapshot, m.done);
          if (!m.snapshot || m.done) {
            p.downApplied = cursor;
            this.#send({ t: 'ack', down: cursor }, ws);
          }
        }
        return;
      case 'ack':
        while (this.upInFlight.length > 0 && this.upInFlight[0]! <= m.up) this.upInFlight.shift();
        this.upCursor = Math.max(this.upCursor ?? m.up, m.up);
        // Nothing in flight: pages skipped as holding nothing of ours are applied as well.
        if (this.upInFlight.length === 0) this.upCursor = Math.max(this.upCursor, this.upSent);
        else if (this.upSent < this.upCursor) this.upSent = this.upCursor;
        this.#upBase = Math.max(this.#upBase, m.up);
        this.pumpUp();
        return;
      case 'refused':
        this.refused++;
        this.lastError = `the parent refused: ${m.reason}`;
        return;
    }
  }

  /** Sends this core's up entries after the parent's cursor, a page at a time. */
  pumpUp(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#pumpUp()
      .catch((err: unknown) => {
        this.lastError = (err as Error).message;
        this.deps.log.error({ err }, 'sending up failed');
      })
      .finally(() => {
        this.#pumping = false;
        if (this.#again) {
          this.#again = false;
          this.pumpUp();
        }
      });
  }

  async #pumpUp(): Promise<void> {
    const { feed, config, store } = this.deps;
    while (this.connected && this.upCursor !== undefined && this.upInFlight.length < config.window && this.#ws?.readyState === WebSocket.OPEN) {
      // The page belongs to this link and this welcome: after each wait, a reconnection or a welcome in between means read again.
      const ws = this.#ws;
      const epoch = this.#upEpoch;
      const from = this.upSent;
      const moved = (): boolean => this.#ws !== ws || this.#upEpoch !== epoch || this.upSent !== from;
      const entries = await feed.read(from, config.batch);
      if (moved()) continue;
      // The journal's oldest entry is asked for only when the read does not start right after the cursor (pruned).
      if (entries.length === 0 || entries[0]!.seq !== from + 1) {
        if (from < (await feed.oldest()) - 1) {
          // A complete copy once what is in flight is acked.
          if (this.upInFlight.length > 0) return;
          const head = feed.head();
          const all: Op[] = [];
          for (const sub of UP) for await (const [k, v] of store.raw(sub).iterator()) all.push({ k: `!${sub}!${k}`, v: JSON.stringify(v) });
          if (moved()) continue;
          this.upInFlight.push(head);
          this.upSent = head;
          this.#upBase = head;
          this.#send({ t: 'up', entries: [{ s: head, o: all }], to: head, snapshot: true }, ws);
          continue;
        }
        if (moved()) continue;
        if (entries.length === 0) return;
      }
      const p = page(entries, isUp, config.pageBytes);
      this.upSent = p.to;
      if (p.entries.length === 0) {
        // Nothing of ours in this page: move on without a round trip (the parent learns the cursor with the next page).
        if (this.upInFlight.length === 0) this.upCursor = p.to;
        continue;
      }
      this.upInFlight.push(p.to);
      const base = this.#upBase;
      this.#upBase = p.to;
      this.#send({ t: 'up', entries: p.entries, from: base, to: p.to, snapshot: false }, ws);
    }
  }
}
