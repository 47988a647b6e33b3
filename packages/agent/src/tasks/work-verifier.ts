import type { KeyObject } from 'node:crypto';
import { agentRunStepSchema, cancelBody, runBody, runDigest, verifyTicket, verifyWork, workRunSchema, z, type WorkRefusalReason } from '@outpost/common';
import type { RunSpec } from './types.js';

const stepsSchema = z.array(agentRunStepSchema).max(256);

/** A run the core signed for this agent, or a cancel the core signed. */
export type WorkVerdict =
  | { ok: true; cancel: false; run: RunSpec; digest: string; expired: boolean }
  | { ok: true; cancel: true; runId: string }
  | { ok: false; reason: WorkRefusalReason; runId: string | undefined; detail: string };

/** Signature checks remembered (by run digest): one Ed25519 verification per run, not per fetch. */
const CACHE_MAX = 4_096;

/**
 * Checks work as it arrives, before anything is journaled or run: the core's signature
 * with the pinned work key (`sig` over `{ v: 1, run, job, steps, expiresAt, nonce }`),
 * this agent's `ticket` (an HMAC only the core and this agent can make), and expiry; a
 * cancel only with the core's `cancelSig`. Never throws: anything malformed is a refusal.
 * Replays (a run already journaled or done) are the caller's check: it holds the journals.
 */
export class WorkVerifier {
  readonly #sigOk: Map<string, boolean>;

  constructor(
    private readonly key: KeyObject,
    private readonly agentId: string,
    private readonly ticketKey: Buffer,
    sigCache: Map<string, boolean> = new Map(),
  ) {
    this.#sigOk = sigCache;
  }

  /** A verifier for another agent sharing this one's signature cache (the swarm's thousands of agents). */
  forAgent(agentId: string, ticketKey: Buffer): WorkVerifier {
    return new WorkVerifier(this.key, agentId, ticketKey, this.#sigOk);
  }

  check(raw: unknown, now: number): WorkVerdict {
    const rawId = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
    const runId = typeof rawId === 'string' && rawId.length > 0 && rawId.length <= 64 ? rawId : undefined;
    const has = (k: string): boolean => typeof raw === 'object' && raw !== null && typeof (raw as Record<string, unknown>)[k] === 'string';
    const parsed = workRunSchema.safeParse(raw);
    if (!parsed.success) {
      const unsigned = !has('sig') && !has('cancelSig');
      return { ok: false, reason: unsigned ? 'unsigned' : 'bad-signature', runId, detail: unsigned ? 'no signature' : 'not a well-formed signed run' };
    }
    const w = parsed.data;
    if (w.cancelled) {
      if (w.cancelSig === undefined) return { ok: false, reason: 'unsigned', runId: w.id, detail: 'cancel without a signature' };
      if (!this.#verified(`cancel\0${w.id}`, cancelBody(w.id), w.cancelSig)) return { ok: false, reason: 'bad-signature', runId: w.id, detail: 'cancel signature' };
      return { ok: true, cancel: true, runId: w.id };
    }
    const body = runBody({ run: w.id, job: w.job, steps: w.steps, expiresAt: w.expiresAt, nonce: w.nonce });
    if (body === undefined) return { ok: false, reason: 'bad-signature', runId: w.id, detail: 'steps are not plain JSON' };
    const digest = runDigest(body);
    if (!this.#verified(digest, body, w.sig)) return { ok: false, reason: 'bad-signature', runId: w.id, detail: 'run signature' };
    if (!verifyTicket(this.ticketKey, digest, this.agentId, w.ticket)) return { ok: false, reason: 'bad-ticket', runId: w.id, detail: 'ticket is not this agent\'s' };
    // Signed by the core, but not a run this agent understands (a newer core's task kind).
    const steps = stepsSchema.safeParse(w.steps);
    if (!steps.success) return { ok: false, reason: 'bad-signature', runId: w.id, detail: 'signed steps this agent cannot read' };
    return { ok: true, cancel: false, run: { id: w.id, job: w.job, steps: steps.data, expiresAt: w.expiresAt, cancelled: false }, digest, expired: w.expiresAt <= now };
  }

  #verified(cacheKey: string, body: string, sig: string): boolean {
    const key = `${cacheKey}\0${sig}`;
    let ok = this.#sigOk.get(key);
    if (ok === undefined) {
      ok = verifyWork(this.key, body, sig);
      if (this.#sigOk.size >= CACHE_MAX) this.#sigOk.clear();
      this.#sigOk.set(key, ok);
    }
    return ok;
  }
}
