import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { hashSecret, hexEqual, OutpostError, type Logger } from '@outpost/common';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authority } from '../ca/authority.js';
import { headReaches, type ChangeFeed } from '../journal.js';
import { linkTimeout, pingEvery, type HierarchyConfig } from './config.js';
import { HierarchyErrors } from './errors.js';
import type { ChildRecord, JoinTokenRecord } from './model.js';
import { AHEAD_WAIT_MS, childMessage, joinBody, page, type Entry, type Op, type ParentMessage } from './protocol.js';
import { DOWN, HierarchyStore, UP, splitRootKey } from './store.js';
import { certificateFingerprint } from '../ca/authority.js';
import { issueLinkCert, issuedFor, peerFingerprint, peerPem } from './tls.js';

const DOWN_SET: ReadonlySet<string> = new Set(DOWN);
const UP_SET: ReadonlySet<string> = new Set(UP);
const JSON_LIMIT = 64 * 1024;
const MAX_MESSAGE = 64 * 1024 * 1024;

export interface ParentDeps {
  store: HierarchyStore;
  config: HierarchyConfig;
  authority: Authority;
  name: string;
  feed: ChangeFeed;
  log: Logger;
  now(): number;
  /** The path of package content by sha256, when this core holds it. */
  contentPath(sha: string): Promise<string | undefined>;
  /** Where a child's package servers may fetch a package from here (see PackageService.upstreamOffer), when it is enabled here. */
  packageOffer(id: string): unknown;
  /** Runs after up ops were written (their keys). */
  upApplied?(ops: Op[]): void;
}

/** The core whose up item `key` (within `sub`) describes: its first segment for summaries, the second for results. */
function coreOfUpKey(sub: string, key: string): string | undefined {
  const parts = key.split('!');
  return sub === 'hier-up' ? parts[0] : parts[1];
}

/** A child's cursor moves past entries with nothing for it (a page of none) at most this often. */
export const CURSOR_PAGE_EVERY_MS = 1_000;

/**
 * One connected child: its WebSocket, what it acknowledged, what is in flight. Nothing is
 * sent down before the child's hello says where it is (`ready`): a page sent from a guessed
 * cursor would be applied on top of what the child has. Up to `window` pages are in flight,
 * each right after the one before (`from` = the last one's `to`). Entries with nothing for
 * the child are covered by the next page's `from`, or by a page of none at most once every
 * CURSOR_PAGE_EVERY_MS once caught up (so its cursor keeps up with the journal).
 */
class Session {
  /** The last seq the child applied (its hello, then its acks; -1: a complete copy asked for). */
  cursor = 0;
  /** The last seq read: the next read starts after it. */
  sent = 0;
  /** The `to` of the last page sent: the `from` of the next. */
  base = 0;
  /** The `to` of each page sent and not acked yet, oldest first. */
  inFlight: number[] = [];
  ready = false;
  connectedAt: number;
  /** Moves at each hello: a page read for an earlier one is not sent. */
  #epoch = 0;
  #pumping = false;
  #again = false;
  #lastPage = 0;
  #cursorTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly child: ChildRecord,
    readonly ws: WebSocket,
    readonly side: ParentSide,
  ) {
    this.connectedAt = side.deps.now();
    ws.on('close', () => clearTimeout(this.#cursorTimer));
  }

  send(m: ParentMessage): void {
    const text = JSON.stringify(m);
    this.child.bytesDown += Buffer.byteLength(text);
    this.ws.send(text);
  }

  /** The child says where it is: everything in flight is forgotten, pages start after `down`. */
  hello(down: number): void {
    this.#epoch++;
    this.cursor = down;
    this.sent = down;
    this.base = down;
    this.inFlight = [];
    this.ready = true;
  }

  /** The child applied up to `down`: the pages it covers leave the window (a stale ack moves nothing back). */
  acked(down: number): void {
    while (this.inFlight.length > 0 && this.inFlight[0]! <= down) this.inFlight.shift();
    this.cursor = Math.max(this.cursor, down);
    // A child ahead of what was sent here (its cursor as written says so): send after it.
    if (this.sent < this.cursor) this.sent = this.cursor;
    if (this.base < this.cursor) this.base = this.cursor;
  }

  /** Sends what the child has not had yet, up to `window` pages ahead of its acks. */
  pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#pump()
      .catch((err: unknown) => {
        this.child.lastError = (err as Error).message;
        this.side.deps.log.error({ err, child: this.child.id }, 'sending down failed');
      })
      .finally(() => {
        this.#pumping = false;
        if (this.#again) {
          this.#again = false;
          this.pump();
        }
      });
  }

  async #pump(): Promise<void> {
    const { feed, config } = this.side.deps;
    while (this.ready && this.inFlight.length < config.window && this.ws.readyState === this.ws.OPEN) {
      const epoch = this.#epoch;
      const from = this.sent;
      const entries = await feed.read(from, config.batch);
      // A hello moved the cursor while reading: read again from where the child is.
      if (epoch !== this.#epoch || from !== this.sent) continue;
      // The journal's oldest entry is asked for only when the read does not start right after the cursor (pruned).
      if (entries.length === 0 || entries[0]!.seq !== from + 1) {
        if (from < (await feed.oldest()) - 1) {
          // A complete copy once what is in flight is acked (it replaces the child's cursor).
          if (this.inFlight.length > 0) return;
          await this.snapshot();
          continue;
        }
        if (epoch !== this.#epoch || from !== this.sent) continue;
        if (entries.length === 0) {
          if (this.base < this.sent) this.#cursorPage();
          return;
        }
      }
      const p = page(entries, isDown, config.pageBytes);
      this.sent = p.to;
      // Nothing for the child: the next page's `from` covers these entries.
      if (p.entries.length > 0) this.#page(p.entries, p.to);
    }
  }

  #page(entries: Entry[], to: number): void {
    this.inFlight.push(to);
    this.send({ t: 'down', entries, from: this.base, to, snapshot: false, done: true });
    this.base = to;
    this.#lastPage = performance.now();
  }

  /** Caught up with entries read but not sent (nothing for the child): a page of none moves its cursor, at most once every CURSOR_PAGE_EVERY_MS. */
  #cursorPage(): void {
    const wait = this.#lastPage + CURSOR_PAGE_EVERY_MS - performance.now();
    if (wait <= 0) {
      this.#page([], this.sent);
      return;
    }
    if (this.#cursorTimer) return;
    this.#cursorTimer = setTimeout(() => {
      this.#cursorTimer = undefined;
      this.pump();
    }, Math.min(wait, CURSOR_PAGE_EVERY_MS));
    this.#cursorTimer.unref();
  }

  /** Every down item as of the journal's head now (the child's cursor is older than the journal). */
  async snapshot(): Promise<void> {
    const { feed, store, config } = this.side.deps;
    const head = feed.head();
    this.side.deps.log.info({ child: this.child.id, cursor: this.cursor, head }, 'sending a complete copy');
    let part: Op[] = [];
    let bytes = 0;
    const flush = (done: boolean): void => {
      this.send({ t: 'down', entries: [{ s: head, o: part }], to: head, snapshot: true, done });
      part = [];
      bytes = 0;
    };
    for (const sub of DOWN) {
      for await (const [k, v] of store.raw(sub).iterator()) {
        const op = { k: `!${sub}!${k}`, v: JSON.stringify(v) };
        part.push(op);
        bytes += op.k.length + op.v.length;
        if (part.length >= config.batch || bytes >= config.pageBytes) flush(false);
      }
    }
    flush(true);
    this.inFlight.push(head);
    this.sent = head;
    this.base = head;
    this.#lastPage = performance.now();
  }
}

const isDown = (key: string): boolean => {
  const split = splitRootKey(key);
  return split !== undefined && DOWN_SET.has(split[0]);
};

/**
 * The parent's side of links: a TLS listener of its own (join, replication, package
 * content), the join tokens, one session per connected child. A child is known by the
 * link certificate it issued itself at join (its fingerprint and its CA are recorded);
 * nothing else gets past the listener but `GET /ca` and `POST /join`.
 */
export class ParentSide {
  #server: Server | undefined;
  #wss: WebSocketServer | undefined;
  readonly sessions = new Map<string, Session>();
  /** Links each child opened since this core started (one that keeps growing: a flapping link). */
  readonly linksOpened = new Map<string, number>();
  /** Package content bytes read for each child on `GET /content/<sha256>` since start. */
  readonly contentServed = new Map<string, number>();
  readonly children = new Map<string, ChildRecord>();
  /** Per child: its messages are handled one at a time, across its reconnections (an old link's last message never races a new one's). */
  readonly #chains = new Map<string, Promise<void>>();
  #unsubscribe: (() => void) | undefined;
  /** Every connection to the listener, handshake or not: a stop closes them all (a half-open one would hold it). */
  readonly #sockets = new Set<Socket>();
  #joining: Promise<unknown> = Promise.resolve();
  url = '';

  constructor(readonly deps: ParentDeps) {}

  async load(): Promise<void> {
    for (const [id, c] of await this.deps.store.list(this.deps.store.children)) this.children.set(id, c);
  }

  async listen(): Promise<void> {
    const { config, authority } = this.deps;
    const listen = config.listen;
    if (!listen) return;
    const names = ['localhost', '127.0.0.1', ...listen.names];
    if (config.publicUrl) names.push(new URL(config.publicUrl).hostname);
    if (listen.host !== '0.0.0.0' && listen.host !== '::') names.push(listen.host);
    const { certPem, keyPem } = await issueLinkCert(authority, [...new Set(names)]);
    // A client that never finishes its TLS handshake is dropped after the link's timeout (not Node's 120 s).
    const server = createServer({ cert: certPem + authority.certPem, key: keyPem, requestCert: true, rejectUnauthorized: false, handshakeTimeout: linkTimeout(config) }, (req, res) => {
      this.#http(req, res).catch((err: unknown) => {
        const e = err instanceof OutpostError ? err : new OutpostError(HierarchyErrors.BAD_MESSAGE, (err as Error).message);
        if (!(err instanceof OutpostError)) this.deps.log.error({ err }, 'link listener request failed');
        if (!res.headersSent) {
          res.writeHead(e.status ?? 500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: e.code, message: e.message } }));
        } else res.destroy();
      });
    });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const child = req.url === '/link' ? this.childOf(req.socket as TLSSocket) : undefined;
      if (!child) {
        socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.#session(child, ws));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
    this.#server = server;
    this.#wss = wss;
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : listen.port;
    this.url = config.publicUrl ?? `https://${listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host}:${port}`;
    this.#unsubscribe = this.deps.feed.onAppend(() => {
      for (const s of this.sessions.values()) s.pump();
    });
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    for (const s of this.sessions.values()) s.ws.terminate();
    this.sessions.clear();
    this.#wss?.close();
    const closed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    await this.persistAll();
  }

  /** The child a TLS client is, by the link certificate it presented; undefined for anyone else (removed children included). */
  childOf(socket: TLSSocket): ChildRecord | undefined {
    const peer = socket.getPeerCertificate?.();
    const fp = peerFingerprint(peer);
    if (!fp) return undefined;
    for (const c of this.children.values()) {
      if (c.removedAt === undefined && hexEqual(c.certFingerprint, fp) && issuedFor(peerPem(peer), c.caPem, c.id, this.deps.now())) return c;
    }
    return undefined;
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://link');
    if (req.method === 'GET' && url.pathname === '/ca') {
      json(res, 200, { id: this.deps.authority.coreId, name: this.deps.name, caPem: this.deps.authority.certPem });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/join') {
      const body = joinBody.safeParse(await readBody(req));
      if (!body.success) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, `bad join request: ${body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { status: 400 });
      const run = this.#joining.then(() => this.join(body.data));
      this.#joining = run.catch(() => undefined);
      json(res, 200, await run);
      return;
    }
    const content = /^\/content\/([0-9a-f]{64})$/.exec(url.pathname);
    if (req.method === 'GET' && content) {
      const child = this.childOf(req.socket as TLSSocket);
      if (!child) throw new OutpostError(HierarchyErrors.LINK_REFUSED, 'not a child core of this core', { status: 403 });
      const path = await this.deps.contentPath(content[1]!);
      if (!path) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'no such content', { status: 404 });
      // `Range: bytes=N-` only: a child resuming its partial after a restart.
      const range = req.headers.range;
      const from = range === undefined ? 0 : /^bytes=(\d{1,15})-$/.exec(range)?.[1];
      if (from === undefined) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'only a Range of the form bytes=N- is served', { status: 416 });
      const size = (await stat(path)).size;
      const start = Number(from);
      if (start > size) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, `the range starts past the end (${size} bytes)`, { status: 416 });
      res.writeHead(range === undefined ? 200 : 206, {
        'content-type': 'application/octet-stream',
        'content-length': String(size - start),
        ...(range === undefined ? {} : { 'content-range': `bytes ${start}-${size - 1}/${size}` }),
      });
      if (start === size) res.end();
      else {
        const stream = createReadStream(path, { start });
        stream.on('data', (c) => this.contentServed.set(child.id, (this.contentServed.get(child.id) ?? 0) + c.length));
        stream.pipe(res);
      }
      return;
    }
    const sources = /^\/sources\/(pk_[0-9a-f]{1,64})$/.exec(url.pathname);
    if (req.method === 'GET' && sources) {
      if (!this.childOf(req.socket as TLSSocket)) throw new OutpostError(HierarchyErrors.LINK_REFUSED, 'not a child core of this core', { status: 403 });
      const offer = this.deps.packageOffer(sources[1]!);
      if (!offer) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'no such package enabled here', { status: 404 });
      json(res, 200, offer);
      return;
    }
    throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'not found', { status: 404 });
  }

  /** A child joins with a one-use token: its CA and link certificate are recorded, the token is spent. */
  async join(body: { token: string; id: string; name: string; caPem: string; certPem: string }): Promise<{ parent: string; name: string }> {
    const { store, authority } = this.deps;
    const [id, secret] = body.token.split('.');
    const tok = id ? await store.tokens.get(id) : undefined;
    if (!tok || !secret || !hexEqual(tok.hash, hashSecret(secret))) throw new OutpostError(HierarchyErrors.TOKEN_INVALID, 'the join token is not valid here', { status: 401 });
    if (tok.usedAt !== undefined) throw new OutpostError(HierarchyErrors.TOKEN_USED, 'the join token was used already', { status: 401 });
    if (tok.expiresAt <= this.deps.now()) throw new OutpostError(HierarchyErrors.TOKEN_EXPIRED, 'the join token expired', { status: 401 });
    if (body.id === authority.coreId || body.caPem.trim() === authority.certPem.trim()) throw new OutpostError(HierarchyErrors.SELF, 'a core cannot join itself', { status: 400 });
    if (!issuedFor(body.certPem, body.caPem, body.id, this.deps.now())) throw new OutpostError(HierarchyErrors.LINK_REFUSED, "the link certificate is not the joining core's (issued by its CA, CN = its id)", { status: 400 });
    const old = this.children.get(body.id);
    const child: ChildRecord = {
      id: body.id,
      name: body.name,
      caPem: body.caPem,
      certFingerprint: certificateFingerprint(body.certPem),
      joinedAt: this.deps.now(),
      downAcked: 0,
      upApplied: 0,
      bytesDown: 0,
      bytesUp: 0,
      cores: [body.id],
    };
    const used: JoinTokenRecord = { ...tok, usedAt: this.deps.now(), usedBy: body.id };
    await store.write([store.put(store.tokens, tok.id, used), store.put(store.children, child.id, child)]);
    this.sessions.get(body.id)?.ws.terminate();
    this.children.set(child.id, child);
    this.deps.log.info({ child: child.id, name: child.name, rejoined: old !== undefined }, 'a child core joined');
    return { parent: authority.coreId, name: this.deps.name };
  }

  /** Forgets a child: its link certificate stops working at once (open connections are closed). */
  async remove(id: string): Promise<ChildRecord> {
    const c = this.children.get(id);
    if (!c || c.removedAt !== undefined) throw new OutpostError(HierarchyErrors.CHILD_NOT_FOUND, `no child core '${id}'`, { status: 404 });
    const removed = { ...c, removedAt: this.deps.now() };
    this.children.set(id, removed);
    this.sessions.get(id)?.ws.terminate();
    this.sessions.delete(id);
    await this.deps.store.write([this.deps.store.put(this.deps.store.children, id, removed)]);
    return removed;
  }

  /** Sends what is pending to every child now. */
  now(): void {
    for (const s of this.sessions.values()) s.pump();
  }

  async persistAll(): Promise<void> {
    const { store } = this.deps;
    const ops = [...this.children.values()].map((c) => store.put(store.children, c.id, c));
    await store.write(ops).catch(() => undefined);
  }

  #session(child: ChildRecord, ws: WebSocket): void {
    this.linksOpened.set(child.id, (this.linksOpened.get(child.id) ?? 0) + 1);
    this.sessions.get(child.id)?.ws.terminate();
    const s = new Session(child, ws, this);
    this.sessions.set(child.id, s);
    ws.on('message', (data: Buffer) => {
      child.bytesUp += data.length;
      child.lastSeen = this.deps.now();
      const chain = (this.#chains.get(child.id) ?? Promise.resolve())
        .then(() => {
          // A message of a link replaced since (the child reconnected): the new link's hello decides what happens next.
          if (this.sessions.get(child.id) !== s) return;
          return this.#message(s, data);
        })
        .catch((err: unknown) => {
          child.lastError = (err as Error).message;
          this.deps.log.warn({ err, child: child.id }, 'a message of a child was refused; closing its link');
          ws.close(1008, String((err as Error).message).slice(0, 120));
        });
      this.#chains.set(child.id, chain);
    });
    ws.on('close', () => {
      if (this.sessions.get(child.id) === s) this.sessions.delete(child.id);
      void this.deps.store.write([this.deps.store.put(this.deps.store.children, child.id, child)]).catch(() => undefined);
    });
    ws.on('error', () => undefined);
    // A link cut in the middle (no FIN, no RST) shows as silence: no pong for two intervals ends the session.
    let alive = true;
    const every = pingEvery(this.deps.config);
    const ping = setInterval(() => {
      if (!alive) {
        child.lastError = 'the child stopped answering';
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, every);
    ping.unref();
    ws.on('pong', () => {
      alive = true;
      child.lastSeen = this.deps.now();
    });
    ws.on('ping', () => {
      alive = true;
      child.lastSeen = this.deps.now();
    });
    ws.on('close', () => clearInterval(ping));
  }

  async #message(s: Session, data: Buffer): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString('utf8'));
    } catch {
      throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'a link message is not JSON');
    }
    const parsed = childMessage.safeParse(raw);
    if (!parsed.success) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, `a link message is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
    const m = parsed.data;
    const child = s.child;
    switch (m.t) {
      case 'hello': {
        // A child ahead of this core's journal (this core restored from a backup): its items
        // and cursor describe changes this core no longer has, and new ones would reuse their
        // seqs. A complete copy replaces both.
        const ahead = !m.full && !(await headReaches(this.deps.feed, m.down, AHEAD_WAIT_MS));
        if (ahead) this.deps.log.warn({ child: child.id, cursor: m.down, head: this.deps.feed.head() }, "a child is ahead of this core's journal (restored from a backup?): sending a complete copy");
        s.hello(m.full || ahead ? -1 : m.down);
        if (m.name !== child.name) child.name = m.name;
        child.lastError = undefined;
        s.send({ t: 'welcome', parent: this.deps.authority.coreId, up: child.upApplied, editable: this.deps.config.editable });
        s.pump();
        return;
      }
      case 'ack':
        if (!s.ready) return;
        s.acked(m.down);
        child.downAcked = s.cursor;
        s.pump();
        return;
      case 'now':
        s.pump();
        return;
      case 'leave':
        await this.remove(child.id);
        return;
      case 'up':
        await this.#up(s, m.entries, m.from, m.to, m.snapshot);
        return;
    }
  }

  /**
   * Writes a child's up ops with its new cursor in one batch. A child authors only what
   * describes itself and the cores below it: an op for this core, for a core another
   * child brought, or outside the up sublevels is refused (and reported to it).
   */
  async #up(s: Session, entries: Entry[], from: number | undefined, to: number, snapshot: boolean): Promise<void> {
    const { store, authority } = this.deps;
    const child = s.child;
    if (to <= child.upApplied && !snapshot) {
      s.send({ t: 'ack', up: child.upApplied });
      return;
    }
    // A page after a gap (one before it was lost or not written): never applied; the link is dropped and the next hello resumes from the cursor.
    if (!snapshot && from !== undefined && from > child.upApplied) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, `an up page after ${from}, but the parent applied up to ${child.upApplied}: a gap`);
    const owners = new Map<string, string>();
    for (const c of this.children.values()) if (c.removedAt === undefined) for (const core of c.cores) owners.set(core, c.id);
    const ops = [];
    const applied: Op[] = [];
    const refused: string[] = [];
    const cores = new Set(child.cores);
    for (const e of entries) {
      // Applied already (a page resent after a reconnection overlaps what was written): never twice.
      if (!snapshot && e.s <= child.upApplied) {
        child.skipped = (child.skipped ?? 0) + 1;
        continue;
      }
      for (const op of e.o) {
        const split = splitRootKey(op.k);
        if (!split || !UP_SET.has(split[0])) {
          refused.push(`${op.k}: not a summary or a result`);
          continue;
        }
        const core = coreOfUpKey(split[0], split[1]);
        const owner = core === undefined ? undefined : owners.get(core);
        if (!core || core === authority.coreId || (owner !== undefined && owner !== child.id)) {
          refused.push(`${op.k}: describes core ${core ?? '?'}, which is not below this child`);
          continue;
        }
        let value: unknown;
        if (op.v !== undefined) {
          try {
            value = JSON.parse(op.v);
          } catch {
            refused.push(`${op.k}: not JSON`);
            continue;
          }
        }
        cores.add(core);
        const sub = store.raw(split[0]);
        ops.push(value === undefined ? store.del(sub, split[1]) : store.put(sub, split[1], value));
        applied.push(op);
      }
    }
    if (snapshot) {
      // A complete copy (the child's journal no longer covers the cursor, or the child was
      // restored from a backup): it replaces what the child sent before, so its items that
      // are not in it go, and the cursor becomes the copy's, lower or not.
      const kept = new Set(applied.map((op) => op.k));
      const mine = new Set([...child.cores, ...cores]);
      for (const sub of UP) {
        for await (const [k] of store.raw(sub).iterator()) {
          const core = coreOfUpKey(sub, k);
          const key = `!${sub}!${k}`;
          if (core === undefined || !mine.has(core) || kept.has(key)) continue;
          ops.push(store.del(store.raw(sub), k));
          applied.push({ k: key });
        }
      }
    }
    const next: ChildRecord = { ...child, upApplied: to, cores: [...cores] };
    if (refused.length) next.lastError = `refused ${refused.length} up item(s): ${refused.slice(0, 3).join('; ')}`;
    await store.write([...ops, store.put(store.children, child.id, next)]);
    Object.assign(child, next);
    if (refused.length) {
      this.deps.log.warn({ child: child.id, refused: refused.length, first: refused[0] }, 'a child sent items it may not author');
      s.send({ t: 'refused', reason: next.lastError! });
    }
    s.send({ t: 'ack', up: to });
    if (applied.length) this.deps.upApplied?.(applied);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > JSON_LIMIT) throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'the request is too large', { status: 413 });
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new OutpostError(HierarchyErrors.BAD_MESSAGE, 'the request is not JSON', { status: 400 });
  }
}
