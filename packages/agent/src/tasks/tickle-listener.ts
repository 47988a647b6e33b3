import { createSocket, type Socket } from 'node:dgram';
import { DatagramType, openDatagram, ReplayGuard, type DropReason, type Logger } from '@outpost/common';

/**
 * The agent's UDP listener for task-server tickles (50124 by default): a tickle is
 * accepted only when signed with this agent's task key by its task server, fresh and
 * not a replay, and names this agent. Everything else is dropped and counted.
 */
export class TickleListener {
  readonly stats: { received: number; accepted: number; dropped: Partial<Record<DropReason | 'unexpected-type' | 'not-for-me', number>> } = {
    received: 0,
    accepted: 0,
    dropped: {},
  };
  readonly #guard = new ReplayGuard({ maxSenders: 64 });
  #socket: Socket | undefined;

  constructor(
    private readonly expect: () => { sender: string; key: Buffer; agentId: string } | undefined,
    private readonly onTickle: () => void,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return this.#socket?.address().port ?? 0;
  }

  /**
   * Binds `host:port`; when that port is taken (another agent on the box, a test run)
   * it takes any free port instead: the agent tells its task server the port it has.
   */
  async start(host: string, port: number): Promise<void> {
    let s: Socket;
    try {
      s = await this.#bind(host, port);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
      s = await this.#bind(host, 0);
      this.log.warn({ wanted: port, port: s.address().port }, 'tickle port in use; listening on another (the task server is told)');
    }
    s.on('error', (err) => this.log.warn({ err }, 'tickle socket error'));
    s.on('message', (msg) => this.#onMessage(msg));
    this.#socket = s;
  }

  async #bind(host: string, port: number): Promise<Socket> {
    const s = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(port, host, () => {
          s.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      s.close();
      throw err;
    }
    return s;
  }

  #drop(reason: DropReason | 'unexpected-type' | 'not-for-me'): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
  }

  #onMessage(msg: Buffer): void {
    this.stats.received++;
    const want = this.expect();
    const r = openDatagram(msg, (sender) => (want && sender === want.sender ? want.key : undefined), this.#guard);
    if (!r.ok) return this.#drop(r.reason);
    if (r.value.type !== DatagramType.TICKLE) return this.#drop('unexpected-type');
    if (r.value.payload.length > 0 && r.value.payload.toString('latin1') !== want?.agentId) return this.#drop('not-for-me');
    this.stats.accepted++;
    this.onTickle();
  }

  async stop(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
