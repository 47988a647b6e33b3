import { createSocket, type Socket } from 'node:dgram';
import PQueue from 'p-queue';
import { DatagramStamper, DatagramType, encodeDatagram, TickleFlags, type Logger } from '@outpost/common';
import type { Via } from './protocol.js';

export interface AgentTicklerOptions {
  /** Sender id in the datagrams: the task server's id. */
  senderId: () => string;
  /** Tickles per second. */
  /** Address the sending socket binds (loopback when agents can only reach us there); default any. */
  bindAddress?: string;
  rate: number;
  /** Fraction of UDP tickles dropped on purpose (fault injection). */
  dropRate: number;
  random?: () => number;
}

/** How to reach one agent right now. */
export interface AgentRoute {
  key: Buffer | undefined;
  addr: string | undefined;
  /** Pushes a wake-up over the agent's WebSocket; false when it has none. */
  push: () => boolean;
}

/**
 * Wakes agents, rate-limited by a p-queue (`rate` per second, in 10 slices a second; one
 * queued task per slice drains up to `rate / 10` agents from the waiting set, so 50,000
 * wake-ups are 50 tasks, not 50,000 promises):
 * over the agent's WebSocket when it holds one, else a signed UDP TICKLE to the address
 * it fetched from (payload: its id, so one socket can serve many agents). Agents with
 * neither are left to their poll slot. `onSent` is told how each agent was reached.
 */
export class AgentTickler {
  readonly stats = { queued: 0, udp: 0, ws: 0, unreachable: 0, dropped: 0, errors: 0 };
  readonly #queue: PQueue;
  readonly #stamper = new DatagramStamper();
  readonly #pending = new Set<string>();
  readonly #perSlice: number;
  #drainQueued = false;
  #socket: Socket | undefined;

  constructor(
    private readonly options: AgentTicklerOptions,
    private readonly route: (agent: string) => AgentRoute,
    private readonly onSent: (agents: Array<[string, Via]>) => void,
    private readonly log: Logger,
  ) {
    this.#perSlice = Math.max(1, Math.ceil(options.rate / 10));
    this.#queue = new PQueue({ concurrency: 1, intervalCap: 1, interval: 100 });
  }

  async open(): Promise<void> {
    const s = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ port: 0, ...(this.options.bindAddress ? { address: this.options.bindAddress } : {}) }, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (err) => this.log.debug({ err }, 'agent tickle socket error'));
    this.#socket = s;
  }

  get backlog(): number {
    return this.#pending.size;
  }

  /** Queues a wake-up for each agent (one in the queue per agent at a time). */
  wake(agents: Iterable<string>): void {
    for (const a of agents) {
      if (this.#pending.has(a)) continue;
      this.#pending.add(a);
      this.stats.queued++;
    }
    this.#scheduleDrain();
  }

  #scheduleDrain(): void {
    if (this.#drainQueued || this.#pending.size === 0) return;
    this.#drainQueued = true;
    void this.#queue
      .add(() => {
        this.#drainQueued = false;
        const slice: string[] = [];
        for (const a of this.#pending) {
          if (slice.length >= this.#perSlice) break;
          slice.push(a);
        }
        this.#send(slice);
        this.#scheduleDrain();
      })
      .catch((err: unknown) => {
        this.#drainQueued = false;
        this.log.warn({ err }, 'tickle failed');
      });
  }

  #send(agents: string[]): void {
    const sent: Array<[string, Via]> = [];
    const random = this.options.random ?? Math.random;
    for (const a of agents) {
      this.#pending.delete(a);
      const r = this.route(a);
      if (r.push()) {
        this.stats.ws++;
        sent.push([a, 'ws']);
        continue;
      }
      const m = r.addr ? /^(.+):(\d{1,5})$/.exec(r.addr) : null;
      if (!m || !r.key || !this.#socket) {
        this.stats.unreachable++;
        continue;
      }
      sent.push([a, 'udp']);
      if (this.options.dropRate > 0 && random() < this.options.dropRate) {
        this.stats.dropped++;
        continue;
      }
      const d = encodeDatagram(
        { type: DatagramType.TICKLE, flags: TickleFlags.WORK, ...this.#stamper.next(), sender: this.options.senderId(), payload: Buffer.from(a, 'latin1') },
        r.key,
      );
      this.#socket.send(d, Number(m[2]), m[1], (err) => {
        if (err) this.stats.errors++;
      });
      this.stats.udp++;
    }
    if (sent.length) this.onSent(sent);
  }

  async close(): Promise<void> {
    this.#queue.clear();
    this.#pending.clear();
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
