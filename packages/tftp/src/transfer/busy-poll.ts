/*
 * Adaptive busy polling for one event loop (the user-space cousin of Linux's
 * net.core.busy_poll).
 *
 * In lockstep TFTP (one DATA, wait for its ACK, next DATA) the round trip, not the CPU,
 * sets the rate, and most of that round trip is the two sleeping processes being woken:
 * the kernel parks the event loop in epoll_wait after each send, and the ACK that arrives
 * microseconds later has to wake it (an inter-processor interrupt and a context switch,
 * dearer still under a hypervisor). While a sender expects an ACK soon it "kicks" this
 * poller: for the next `budgetUs` microseconds the loop keeps a setImmediate pending, so
 * libuv polls with a zero timeout instead of sleeping and picks the ACK up as soon as it
 * lands. Other I/O, timers and transfers run as usual in between (each turn is a full
 * loop iteration); when nothing kicks it for `budgetUs` the loop sleeps again.
 *
 * The cost is CPU, bounded: at most one core's worth per event loop, only while
 * transfers are running, and a sender whose peer answers slower than the budget stops
 * kicking (it would spin for nothing); see BlockSender. With more than `maxTransfers`
 * transfers on the loop it never spins: the loop seldom sleeps then anyway, and the CPU
 * is better left to the other transfers (and, on a small box, to the clients).
 */
export class BusyPoll {
  private until = 0;
  private running = false;
  private stopped = false;
  private readonly budgetMs: number;
  /** Loop turns spent polling (for tests and metrics). */
  turns = 0;
  /** Kicks received. */
  kicks = 0;

  private transfers = 0;

  constructor(
    budgetUs: number,
    private readonly maxTransfers = 8,
  ) {
    this.budgetMs = budgetUs / 1000;
  }

  /** A transfer that may kick starts (attach) or ends (detach). */
  attach(): void {
    this.transfers++;
  }

  detach(): void {
    this.transfers--;
  }

  /** Budget in ms: a peer slower than this is not worth spinning for. */
  get budget(): number {
    return this.budgetMs;
  }

  /** Whether a kick now would spin (false with more than `maxTransfers` transfers): a sender skips timing its peer otherwise. */
  get spinnable(): boolean {
    return this.budgetMs > 0 && !this.stopped && this.transfers <= this.maxTransfers;
  }

  /** True while the loop is being kept awake. */
  get active(): boolean {
    return this.running;
  }

  /** Keep the loop polling for the next budget from `now` (performance.now()). */
  kick(now: number): void {
    if (!this.spinnable) return;
    this.kicks++;
    this.until = now + this.budgetMs;
    if (!this.running) {
      this.running = true;
      setImmediate(this.turn);
    }
  }

  /** Stops for good (server stop): the pending turn ends the spin. */
  stop(): void {
    this.stopped = true;
  }

  private readonly turn = (): void => {
    if (!this.stopped && performance.now() < this.until) {
      this.turns++;
      setImmediate(this.turn);
    } else this.running = false;
  };
}
