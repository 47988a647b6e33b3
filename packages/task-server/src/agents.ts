import { timingSafeEqual } from 'node:crypto';
import { parseCredential, taskBearerSecret, type BatchOp } from '@outpost/common';
import type { TsStore } from './store.js';

interface AgentEntry {
  key: Buffer;
  /** The bearer secret the agent must present (derived from the key). */
  secret: Buffer;
}

export type AuthResult = { ok: true; id: string } | { ok: false; reason: 'malformed' | 'unknown' | 'bad-secret'; id?: string };

/**
 * The agents assigned to this task server: their task keys (from the core), the
 * addresses their tickles go to (learned from their fetches), and bearer checks.
 */
export class AgentBook {
  readonly #agents = new Map<string, AgentEntry>();
  readonly #addrs = new Map<string, string>();

  constructor(private readonly store: TsStore) {}

  get size(): number {
    return this.#agents.size;
  }

  async load(): Promise<void> {
    for await (const [id, key] of this.store.keys.iterator()) this.#set(id, key);
    for await (const [id, addr] of this.store.addrs.iterator()) this.#addrs.set(id, addr);
  }

  #set(id: string, keyB64: string): void {
    const key = Buffer.from(keyB64, 'base64');
    this.#agents.set(id, { key, secret: Buffer.from(taskBearerSecret(key)) });
  }

  has(id: string): boolean {
    return this.#agents.has(id);
  }

  key(id: string): Buffer | undefined {
    return this.#agents.get(id)?.key;
  }

  /**
   * Adds or replaces keys; with `complete`, forgets agents not listed (moved away,
   * deleted, or blocked by an admin). Returns the agents it forgot.
   */
  async update(items: Array<{ id: string; key: string }>, complete: boolean): Promise<string[]> {
    const removed: string[] = [];
    const ops: BatchOp[] = [];
    const seen = new Set<string>();
    for (const { id, key } of items) {
      seen.add(id);
      const cur = this.#agents.get(id);
      if (cur && cur.key.toString('base64') === key) continue;
      this.#set(id, key);
      ops.push(this.store.put(this.store.keys, id, key));
    }
    if (complete) {
      for (const id of [...this.#agents.keys()]) {
        if (seen.has(id)) continue;
        removed.push(id);
        this.#agents.delete(id);
        this.#addrs.delete(id);
        ops.push(this.store.del(this.store.keys, id), this.store.del(this.store.addrs, id));
      }
    }
    await this.store.write(ops);
    return removed;
  }

  /** Checks `Bearer <agentId>.<secret>`. */
  verify(token: string): AuthResult {
    const cred = parseCredential(token);
    if (!cred) return { ok: false, reason: 'malformed' };
    const a = this.#agents.get(cred.id);
    if (!a) return { ok: false, reason: 'unknown', id: cred.id };
    const given = Buffer.from(cred.secret);
    return given.length === a.secret.length && timingSafeEqual(given, a.secret) ? { ok: true, id: cred.id } : { ok: false, reason: 'bad-secret', id: cred.id };
  }

  addr(id: string): string | undefined {
    return this.#addrs.get(id);
  }

  /** Remembers where the agent listens for tickles; written only when it changes. */
  async setAddr(id: string, addr: string): Promise<void> {
    if (this.#addrs.get(id) === addr) return;
    this.#addrs.set(id, addr);
    await this.store.write([this.store.put(this.store.addrs, id, addr)]);
  }
}
