import { newId, OutpostError, sublevel, serialRunner, type BatchOp, type Logger } from '@outpost/common';
import type { PackageRecord } from '../packages/model.js';
import type { CoreContext } from '../module.js';
import type { BootConfig } from './config.js';
import { BootErrors } from './errors.js';
import type { BootDecision, BootEvent, BootEventType, BootImageRecord, BootRecord, ComputerRecord } from './model.js';
import type { JobStarter } from './jobs.js';
import { imageScript, menuScript } from './script.js';
import type { BootStore } from './store.js';

export const normalizeMac = (m: string): string => m.toLowerCase().replace(/-/g, ':');

/** One event as a netboot server posts it. */
export interface EventInput {
  mac: string;
  at: number;
  type: BootEventType;
  uuid?: string | undefined;
  arch?: number | undefined;
  ip?: string | undefined;
  detail?: Record<string, string | number | boolean> | undefined;
  /** The netboot server's boot id. */
  boot?: string | undefined;
}

const notFound = (code: string, what: string): OutpostError => new OutpostError(code, what, { status: 404 });

/**
 * Boot decisions: computers (discovered, predefined, managed), boot images, one-shot
 * "reboot to automation", and the per-boot timeline. Mutations run one at a time.
 */
export class BootService {
  /** Changes that must not interleave go through this, one at a time. */
  readonly #serial = serialRunner();
  readonly #byMac = new Map<string, string>();
  readonly #byUuid = new Map<string, string>();
  /** Open boot per MAC (the newest). */
  readonly #openBoot = new Map<string, string>();
  readonly counters = { decisions: 0, events: 0, discovered: 0, discoveredRefused: 0, eventsRefused: 0, oneShotsUsed: 0, otherProxyWarnings: 0, jobsPending: 0, jobsStarted: 0, jobsFailed: 0, agentsBound: 0, bindingsRefused: 0, automationRefused: 0 };
  /** When the last `maxDiscovered` warning was logged (one per minute at most). */
  #warnedFullAt = -Infinity;
  /** Starts a booted computer's job once its agent enrolls (the tasks module); none: jobs stay pending. */
  jobs: JobStarter | undefined;

  constructor(
    readonly store: BootStore,
    private readonly ctx: CoreContext,
    private readonly config: BootConfig,
    private readonly log: Logger,
  ) {
    for (const c of store.computers.values()) this.#index(c);
    for (const b of [...store.boots.values()].sort((a, z) => a.startedAt - z.startedAt)) this.#openBoot.set(b.mac, b.id);
  }

  /** Another core changed a computer, an image or a boot timeline. */
  remote(sub: 'boot-computers' | 'boot-images' | 'boot-boots', key: string, value: unknown): void {
    const s = this.store;
    if (sub === 'boot-images') {
      if (value) s.images.set(key, value as BootImageRecord);
      else s.images.delete(key);
      return;
    }
    if (sub === 'boot-boots') {
      const b = value as BootRecord | undefined;
      if (b) {
        s.boots.set(key, b);
        const open = this.#openBoot.get(b.mac);
        if (open === undefined || (s.boots.get(open)?.startedAt ?? 0) <= b.startedAt) this.#openBoot.set(b.mac, b.id);
      } else s.boots.delete(key);
      return;
    }
    const old = s.computers.get(key);
    if (old) {
      this.#unindex(old);
      if (old.kind === 'discovered') s.discovered--;
      s.computers.delete(key);
    }
    const c = value as ComputerRecord | undefined;
    if (c) {
      s.computers.set(key, c);
      if (c.kind === 'discovered') s.discovered++;
      this.#index(c);
    }
  }

  #index(c: ComputerRecord): void {
    for (const m of c.macs) this.#byMac.set(m, c.id);
    if (c.uuid) this.#byUuid.set(c.uuid.toLowerCase(), c.id);
  }

  #unindex(c: ComputerRecord): void {
    for (const m of c.macs) if (this.#byMac.get(m) === c.id) this.#byMac.delete(m);
    if (c.uuid && this.#byUuid.get(c.uuid.toLowerCase()) === c.id) this.#byUuid.delete(c.uuid.toLowerCase());
  }

  // ------------------------------------------------------------ computers

  /** A computer by id, MAC, UUID or name. */
  computer(ref: string): ComputerRecord {
    const id = this.store.computers.has(ref) ? ref : (this.#byMac.get(normalizeMac(ref)) ?? this.#byUuid.get(ref.toLowerCase()));
    const c = id !== undefined ? this.store.computers.get(id) : [...this.store.computers.values()].find((x) => x.name === ref);
    if (!c) throw notFound(BootErrors.COMPUTER_NOT_FOUND, `no computer '${ref}'`);
    return c;
  }

  #find(mac: string, uuid: string | undefined): ComputerRecord | undefined {
    const id = this.#byMac.get(mac) ?? (uuid ? this.#byUuid.get(uuid.toLowerCase()) : undefined);
    return id === undefined ? undefined : this.store.computers.get(id);
  }

  /** Whether a boot image boots from this package (referenced by id, name or name@version). */
  bootsFrom(pkg: { id: string; name: string; version: string }): boolean {
    for (const i of this.store.images.values()) if (i.package === pkg.id || i.package === pkg.name || i.package === `${pkg.name}@${pkg.version}`) return true;
    return false;
  }

  image(name: string): BootImageRecord {
    const i = this.store.images.get(name);
    if (!i) throw notFound(BootErrors.IMAGE_NOT_FOUND, `no boot image '${name}'`);
    return i;
  }

  /** Registers a computer (MAC and/or UUID) with a boot image and an optional job: it becomes predefined. */
  addComputer(input: { macs: string[]; uuid?: string | undefined; name?: string | undefined; image: string; job?: string | undefined }): Promise<{ computer: ComputerRecord; created: boolean }> {
    return this.#serial(async () => {
      this.image(input.image);
      const macs = [...new Set(input.macs.map(normalizeMac))];
      const owners = new Set<ComputerRecord>();
      for (const m of macs) {
        const c = this.#find(m, undefined);
        if (c) owners.add(c);
      }
      const byUuid = input.uuid ? this.#find('', input.uuid) : undefined;
      if (byUuid) owners.add(byUuid);
      if (owners.size > 1) throw new OutpostError(BootErrors.COMPUTER_EXISTS, 'those MACs/UUID belong to different computers', { status: 409, details: { computers: [...owners].map((c) => c.id) } });
      const existing = [...owners][0];
      if (existing && existing.kind !== 'discovered') {
        throw new OutpostError(BootErrors.COMPUTER_EXISTS, `computer ${existing.id} (${existing.macs.join(', ')}) is already ${existing.kind}`, { status: 409, details: { id: existing.id } });
      }
      const now = this.ctx.clock.now();
      const c: ComputerRecord = {
        ...(existing ?? { id: newId('pc'), createdAt: now, boots: 0 }),
        macs: [...new Set([...(existing?.macs ?? []), ...macs])],
        uuid: input.uuid ?? existing?.uuid,
        name: input.name ?? existing?.name,
        kind: 'predefined',
        image: input.image,
        job: input.job,
        updatedAt: now,
      };
      if (existing) this.#unindex(existing);
      this.#index(c);
      await this.store.write([this.store.putComputer(c)]);
      this.log.info({ computer: c.id, macs: c.macs, image: c.image, job: c.job }, 'computer predefined');
      return { computer: c, created: !existing };
    });
  }

  deleteComputer(ref: string): Promise<void> {
    return this.#serial(async () => {
      const c = this.computer(ref);
      this.#unindex(c);
      await this.store.write([this.store.delComputer(c.id)]);
    });
  }

  /**
   * "Reboot to automation": the computer (by agent id, MAC or computer ref) boots `image`
   * once, on its next network boot; cleared when it has fetched its script. By agent, it
   * is the computer bound to that agent (an admin's binding, or the boot a netboot server
   * observed before the agent enrolled), never one found by the MACs the agent reports.
   */
  automation(input: { agent?: string | undefined; mac?: string | undefined; computer?: string | undefined; image: string; job?: string | undefined }, by: string): Promise<ComputerRecord> {
    return this.#serial(async () => {
      this.image(input.image);
      const now = this.ctx.clock.now();
      let c: ComputerRecord | undefined;
      let macs: string[] = [];
      if (input.agent !== undefined) {
        const a = this.ctx.registry.store.agents.get(input.agent);
        if (!a) throw new OutpostError('CORE_AGENT_NOT_FOUND', `no agent '${input.agent}'`, { status: 404 });
        c = this.#boundTo(a.id);
        if (!c) {
          this.counters.automationRefused++;
          this.log.warn({ agent: a.id, by, image: input.image }, 'reboot to automation refused: no computer is bound to the agent');
          throw new OutpostError(BootErrors.NOT_BOUND, `no computer is bound to agent ${a.id}: an admin binds one (PUT /boot/computers/:ref/agent), or the agent enrolls after the computer network-booted`, { status: 409, details: { agent: a.id } });
        }
      } else if (input.computer !== undefined) c = this.computer(input.computer);
      else if (input.mac !== undefined) {
        macs = [normalizeMac(input.mac)];
        c = this.#find(macs[0]!, undefined);
      } else throw new OutpostError(BootErrors.NO_IDENTITY, 'give an agent, a MAC or a computer', { status: 400 });
      const next: ComputerRecord = {
        ...(c ?? { id: newId('pc'), createdAt: now, boots: 0, kind: 'discovered' }),
        macs: [...new Set([...(c?.macs ?? []), ...macs])],
        once: { image: input.image, job: input.job, requestedAt: now, by },
        updatedAt: now,
      };
      if (c) this.#unindex(c);
      this.#index(next);
      await this.store.write([this.store.putComputer(next)]);
      this.log.info({ computer: next.id, image: input.image, job: input.job, by }, 'reboot to automation requested');
      return next;
    });
  }

  /** The computer bound to `agentId`, if any. */
  #boundTo(agentId: string): ComputerRecord | undefined {
    return [...this.store.computers.values()].find((x) => x.agentId === agentId);
  }

  /**
   * An admin binds `agent` to the computer (it becomes managed), or unbinds it (`null`:
   * predefined when it has an image, else discovered). An agent is bound to one computer
   * at most: binding it here unbinds it from any other.
   */
  bind(ref: string, agent: string | null, by: string): Promise<ComputerRecord> {
    return this.#serial(async () => {
      const c = this.computer(ref);
      const now = this.ctx.clock.now();
      const ops: BatchOp[] = [];
      let next: ComputerRecord;
      if (agent === null) {
        next = { ...c, kind: c.image ? 'predefined' : 'discovered', agentId: undefined, updatedAt: now };
      } else {
        if (!this.ctx.registry.store.agents.has(agent)) throw new OutpostError('CORE_AGENT_NOT_FOUND', `no agent '${agent}'`, { status: 404 });
        const other = this.#boundTo(agent);
        if (other && other.id !== c.id) ops.push(this.store.putComputer({ ...other, kind: other.image ? 'predefined' : 'discovered', agentId: undefined, updatedAt: now }));
        next = { ...c, kind: 'managed', agentId: agent, observedBootAt: undefined, updatedAt: now };
      }
      ops.push(this.store.putComputer(next));
      await this.store.write(ops);
      this.log.info({ computer: c.id, agent, previous: c.agentId, by }, agent === null ? 'computer unbound from its agent' : 'computer bound to an agent');
      return next;
    });
  }

  // ------------------------------------------------------------ images

  addImage(input: Omit<BootImageRecord, 'createdAt'>): Promise<BootImageRecord> {
    return this.#serial(async () => {
      if (this.store.images.has(input.name)) throw new OutpostError(BootErrors.IMAGE_EXISTS, `boot image '${input.name}' exists`, { status: 409 });
      const img: BootImageRecord = { ...input, createdAt: this.ctx.clock.now() };
      await this.store.write([this.store.putImage(img)]);
      return img;
    });
  }

  deleteImage(name: string): Promise<void> {
    return this.#serial(async () => {
      this.image(name);
      const users = [...this.store.computers.values()].filter((c) => c.image === name || c.once?.image === name);
      if (users.length > 0) throw new OutpostError(BootErrors.IMAGE_IN_USE, `boot image '${name}' is assigned to ${users.length} computer(s)`, { status: 409, details: { computers: users.map((c) => c.id) } });
      await this.store.write([this.store.delImage(name)]);
    });
  }

  /**
   * The package of a boot image, read from the packages module's sublevel (read-only;
   * fresh on every call): id, version, state and files. Undefined when it does not exist.
   */
  async packageOf(ref: string): Promise<Pick<PackageRecord, 'id' | 'name' | 'version' | 'state' | 'files'> | undefined> {
    const pkgs = sublevel<PackageRecord>(this.ctx.db, 'packages');
    const byId = await pkgs.get(ref);
    const at = ref.lastIndexOf('@');
    let found = byId;
    if (!found) {
      for (const p of await pkgs.values().all()) {
        const match = at > 0 ? p.name === ref.slice(0, at) && p.version === ref.slice(at + 1) : p.name === ref;
        if (match && p.state === 'ready' && (!found || p.createdAt > found.createdAt)) found = p;
      }
    }
    return found ? { id: found.id, name: found.name, version: found.version, state: found.state, files: found.files } : undefined;
  }

  // ------------------------------------------------------------ decisions

  /**
   * What `mac` boots now. With `consume` (a netboot server serving the script on a boot it
   * answered itself, or an admin), a one-shot is used up, the boot is recorded and the
   * computer's `observedBootAt` set, and an unknown MAC is recorded as discovered (up to
   * `maxDiscovered`). Without it nothing changes.
   */
  decide(input: { mac: string; uuid?: string | undefined; arch?: number | undefined; consume?: boolean }): Promise<BootDecision> {
    return this.#serial(async () => {
      this.counters.decisions++;
      const mac = normalizeMac(input.mac);
      let c = this.#find(mac, input.uuid);
      const unknown = c === undefined;
      const ops: BatchOp[] = [];
      // An unknown MAC beyond maxDiscovered gets the menu, and nothing is recorded.
      const record = input.consume === true && (c !== undefined || this.#mayDiscover(mac));
      if (!c && record) {
        c = this.#discovered(mac, input.uuid);
        ops.push(this.store.putComputer(c));
      }
      let d: BootDecision;
      const once = c?.once;
      const onceImage = once ? this.store.images.get(once.image) : undefined;
      if (c && once && onceImage) {
        d = { mac, computerId: c.id, kind: c.kind === 'discovered' ? 'predefined' : c.kind, image: onceImage.name, job: once.job, ttlMs: 0, script: imageScript(onceImage, { computer: c.id, kind: c.kind, job: once.job }) };
        if (record) {
          this.counters.oneShotsUsed++;
          ops.push(this.store.putComputer({ ...c, once: undefined, updatedAt: this.ctx.clock.now() }));
        }
      } else if (c && c.kind !== 'discovered' && c.image && this.store.images.has(c.image)) {
        const img = this.store.images.get(c.image)!;
        d = { mac, computerId: c.id, kind: c.kind, image: img.name, job: c.job, ttlMs: this.config.decisionTtl, script: imageScript(img, { computer: c.id, kind: c.kind, job: c.job }) };
      } else {
        const images = [...this.store.images.values()].sort((a, b) => a.name.localeCompare(b.name));
        d = { mac, computerId: c?.id, kind: c && !unknown ? (c.kind === 'discovered' ? 'discovered' : c.kind) : 'unknown', ttlMs: this.config.decisionTtl, script: menuScript(images, { mac, defaultImage: this.config.defaultImage, timeoutMs: this.config.menuTimeout }) };
      }
      if (record && c) {
        const now = this.ctx.clock.now();
        const b = this.#bootFor(mac, now);
        // A computer first seen in this very boot was unknown when it booted.
        const firstSeen = c.kind === 'discovered' && c.createdAt >= b.startedAt;
        ops.push(this.store.putBoot({ ...b, kind: firstSeen ? 'unknown' : d.kind, computerId: d.computerId, image: d.image, job: d.job }));
        // The job runs once the machine is up: when an agent enrolls from one of its MACs.
        const pendingJob = d.job !== undefined ? { job: d.job, image: d.image, boot: b.id, at: now } : undefined;
        if (pendingJob) {
          this.counters.jobsPending++;
          this.log.info({ computer: c.id, mac, job: d.job, boot: b.id }, 'job pending until the computer\'s agent enrolls');
        }
        const cur = this.store.computers.get(c.id) ?? c;
        ops.push(this.store.putComputer({ ...cur, lastBootAt: now, observedBootAt: now, ...(pendingJob ? { pendingJob } : {}) }));
        this.#trimBoots(ops);
      }
      await this.store.write(ops);
      return d;
    });
  }

  /**
   * An agent enrolled. It is bound to a computer (which becomes managed) only when a
   * netboot server observed that computer's boot within `jobWait` (see `observedBootAt`)
   * and no other live agent is bound to it: the agent's MACs alone are data, they bind
   * nothing. The job the boot left pending (a predefined computer's job, or a one-shot's)
   * then starts on it, once per boot (run `once` key `boot:<boot id>`).
   */
  agentEnrolled(agent: { id: string; macs: readonly string[] }): Promise<{ computer?: string; run?: string }> {
    return this.#serial(async () => {
      const macs = agent.macs.map(normalizeMac);
      const ids = new Set(macs.map((m) => this.#byMac.get(m)).filter((x): x is string => x !== undefined));
      if (ids.size === 0) return {};
      const now = this.ctx.clock.now();
      // More than one computer shares the agent's MACs (a NIC moved): the most recently booted.
      const observed = [...ids]
        .map((id) => this.store.computers.get(id)!)
        .filter((c) => c.observedBootAt !== undefined && now - c.observedBootAt <= this.config.jobWait)
        .sort((a, b) => b.observedBootAt! - a.observedBootAt!);
      const c = observed.find((x) => !this.#liveAgentOn(x, agent.id));
      if (!c) {
        this.counters.bindingsRefused++;
        this.log.info({ agent: agent.id, computers: [...ids], observed: observed.map((x) => x.id) }, observed.length === 0 ? 'agent enrolled: not bound (no boot of a computer with its MACs was observed within jobWait)' : 'agent enrolled: not bound (another live agent is bound to the computer)');
        return {};
      }
      const ops: BatchOp[] = [];
      let next: ComputerRecord = { ...c, kind: 'managed', agentId: agent.id, observedBootAt: undefined, updatedAt: now };
      this.counters.agentsBound++;
      this.log.info({ computer: c.id, agent: agent.id, previous: c.agentId }, 'agent enrolled after an observed boot: bound to the computer');
      let run: string | undefined;
      const p = c.pendingJob;
      if (p) {
        let error: string | undefined;
        if (now - p.at > this.config.jobWait) error = `the agent enrolled ${Math.round((now - p.at) / 1000)} s after the boot, later than jobWait`;
        else if (!this.jobs) error = 'this core runs no tasks module';
        else {
          try {
            run = await this.jobs.start(p.job, agent.id, `boot:${p.boot}`);
          } catch (err) {
            error = (err as Error).message;
          }
        }
        if (run) this.counters.jobsStarted++;
        else this.counters.jobsFailed++;
        next = { ...next, pendingJob: undefined, lastJob: { job: p.job, at: now, agent: agent.id, ...(run ? { run } : {}), ...(error ? { error } : {}) } };
        const b = this.store.boots.get(p.boot);
        if (run && b) ops.push(this.store.putBoot({ ...b, run }));
        if (run) this.log.info({ computer: c.id, agent: agent.id, job: p.job, run, boot: p.boot }, 'agent enrolled: the boot\'s job started');
        else this.log.warn({ computer: c.id, agent: agent.id, job: p.job, boot: p.boot, error }, 'agent enrolled: the boot\'s job did not start');
      }
      ops.push(this.store.putComputer(next));
      await this.store.write(ops);
      return { computer: c.id, ...(run ? { run } : {}) };
    });
  }

  /**
   * True when an agent other than `self` is bound to `c` and still live: it exists and the
   * core heard from it after the observed boot (a machine that network-booted is not
   * running its old agent, so an old agent still talking is on another machine).
   */
  #liveAgentOn(c: ComputerRecord, self: string): boolean {
    if (c.agentId === undefined || c.agentId === self) return false;
    if (!this.ctx.registry.store.agents.has(c.agentId)) return false;
    const last = this.ctx.registry.store.contacts.get(c.agentId)?.last;
    return last !== undefined && last >= (c.observedBootAt ?? 0);
  }

  /** Whether a new unknown MAC may be recorded (under `maxDiscovered`); counted and warned (once a minute) when not. */
  #mayDiscover(mac: string): boolean {
    if (this.store.discovered < this.config.maxDiscovered) return true;
    this.counters.discoveredRefused++;
    const now = this.ctx.clock.now();
    if (now - this.#warnedFullAt >= 60_000) {
      this.#warnedFullAt = now;
      this.log.warn({ mac, max: this.config.maxDiscovered, refused: this.counters.discoveredRefused }, 'maxDiscovered computers reached: new unknown MACs are not recorded');
    }
    return false;
  }

  #discovered(mac: string, uuid: string | undefined): ComputerRecord {
    const now = this.ctx.clock.now();
    const c: ComputerRecord = { id: newId('pc'), macs: [mac], uuid, kind: 'discovered', createdAt: now, updatedAt: now, boots: 0 };
    this.#index(c);
    this.counters.discovered++;
    this.log.info({ computer: c.id, mac, uuid }, 'computer discovered');
    return c;
  }

  /** Keep at most keepBoots timelines: the oldest go. */
  #trimBoots(ops: BatchOp[]): void {
    const excess = this.store.boots.size - this.config.keepBoots;
    if (excess <= 0) return;
    for (const id of [...this.store.boots.keys()].sort().slice(0, excess)) ops.push(this.store.delBoot(id));
  }

  /** The open boot of `mac`, or a new one when none is open (handed off, or idle past `bootGap`). */
  #bootFor(mac: string, at: number, startsBoot = false): BootRecord {
    const id = this.#openBoot.get(mac);
    const b = id !== undefined ? this.store.boots.get(id) : undefined;
    if (b && !(startsBoot && b.handedOff) && at - b.lastAt <= this.config.bootGap) return b;
    const c = this.#find(mac, undefined);
    const nb: BootRecord = {
      id: `bt_${String(at).padStart(14, '0')}_${newId('').slice(-8)}`,
      mac,
      computerId: c?.id,
      kind: c ? (c.kind === 'discovered' ? 'discovered' : c.kind) : 'unknown',
      startedAt: at,
      lastAt: at,
      handedOff: false,
      events: [],
      droppedEvents: 0,
    };
    this.#openBoot.set(mac, nb.id);
    return nb;
  }

  // ------------------------------------------------------------ timeline

  /** Appends events from a netboot server to the boots they belong to. */
  recordEvents(server: string, items: readonly EventInput[]): Promise<{ accepted: number }> {
    return this.#serial(async () => {
      const touched = new Map<string, BootRecord>();
      const ops: BatchOp[] = [];
      const refused0 = this.counters.eventsRefused;
      for (const e of items) {
        this.counters.events++;
        const mac = normalizeMac(e.mac);
        if (e.type === 'other-proxy') {
          this.counters.otherProxyWarnings++;
          this.log.warn({ server, mac, detail: e.detail }, 'another proxyDHCP server answers the same clients');
        }
        // An unknown MAC's events are recorded with it as a discovered computer, up to maxDiscovered.
        const c = this.#find(mac, e.uuid);
        if (!c && !this.#mayDiscover(mac)) {
          this.counters.eventsRefused++;
          continue;
        }
        // store.boots is updated per event, so a batch continues the boot it started.
        let b = this.#bootFor(mac, e.at, e.type === 'discover');
        if (!c) ops.push(this.store.putComputer(this.#discovered(mac, e.uuid)));
        // Two lines per boot at info, with the core's boot id and the netboot server's.
        if (b.events.length === 0) this.log.info({ boot: b.id, netbootBoot: e.boot, mac, server, kind: b.kind, event: e.type }, 'boot started');
        if (e.type === 'handoff' && !b.handedOff) this.log.info({ boot: b.id, netbootBoot: e.boot, mac, server, kind: b.kind }, 'boot handed off');
        const event: BootEvent = { at: e.at, type: e.type, server, ...(e.detail ? { detail: e.detail } : {}) };
        const events = b.events.length < this.config.eventsPerBoot ? [...b.events, event] : b.events;
        b = {
          ...b,
          events,
          droppedEvents: b.droppedEvents + (events === b.events ? 1 : 0),
          lastAt: Math.max(b.lastAt, e.at),
          arch: b.arch ?? e.arch,
          uuid: b.uuid ?? e.uuid,
          ip: e.ip ?? b.ip,
          handedOff: b.handedOff || e.type === 'handoff',
          ...(e.boot && !b.netbootIds?.includes(e.boot) ? { netbootIds: [...(b.netbootIds ?? []), e.boot].slice(-8) } : {}),
        };
        touched.set(mac, b);
        this.store.boots.set(b.id, b);
        if (e.type === 'handoff') {
          const comp = this.#find(mac, e.uuid);
          if (comp) ops.push(this.store.putComputer({ ...comp, boots: comp.boots + 1, lastBootAt: e.at }));
        }
      }
      for (const b of touched.values()) ops.push(this.store.putBoot(b));
      this.#trimBoots(ops);
      await this.store.write(ops);
      return { accepted: items.length - (this.counters.eventsRefused - refused0) };
    });
  }

  boot(id: string): BootRecord {
    const b = this.store.boots.get(id);
    if (!b) throw notFound(BootErrors.BOOT_NOT_FOUND, `no boot '${id}'`);
    return b;
  }

  /** Newest first. */
  boots(filter: { mac?: string | undefined; computer?: string | undefined; limit: number; visible?: (b: BootRecord) => boolean }): BootRecord[] {
    const mac = filter.mac ? normalizeMac(filter.mac) : undefined;
    return [...this.store.boots.values()]
      .filter((b) => (mac === undefined || b.mac === mac) && (filter.computer === undefined || b.computerId === filter.computer) && (filter.visible?.(b) ?? true))
      .sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : -1))
      .slice(0, filter.limit);
  }
}
