import { z } from '@outpost/common';
import { adminOptions, parseCommand, positiveInt } from '../args.js';
import { callApi, expectShape } from '../client/api.js';
import { resolveTarget } from '../client/target.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { printJson, printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

/** Usage of the network boot commands (computers, boot images, boots). */
export const BOOT_USAGE: Record<string, string> = {
  'computer add': `Usage: outpost computer add --mac MAC [--mac MAC...] [--uuid UUID] --image NAME [--job NAME] [--name NAME] [--json]

Predefines a computer: when it network-boots (PXE, UEFI, HTTP boot) it gets boot image
NAME, and the job is recorded for it. A discovered computer with that MAC becomes
predefined.`,
  'computer rm': `Usage: outpost computer rm ID|MAC|NAME [--json]`,
  'computer bind': `Usage: outpost computer bind ID|MAC|NAME (--agent ID | --none) [--json]

Binds the computer to the agent that runs on it (it becomes managed; the agent is
unbound from any other computer), or unbinds it (--none). An agent's own reports (its
MACs) never bind it: the first agent to enroll after a network boot the netboot service
served is bound by itself; any other binding is an administrator's, here. An agent
reboots to automation only the computer bound to it.`,
  'computer reboot-to': `Usage: outpost computer reboot-to ID|MAC|NAME | --mac MAC | --agent ID --image NAME [--job NAME] [--json]

Reboot to automation: the computer boots image NAME once, on its next network boot
(the one-shot is cleared as soon as it has fetched its script); later boots get what
they got before. A MAC the boot service does not know yet is recorded as a discovered
computer. --agent ID names the computer bound to that agent (outpost computer bind). This sets the boot; restarting the machine is up to you, or to a job with
the agent built-in task 'reboot-to-automation' (args: [IMAGE, JOB?]), which does both.`,
  computers: `Usage: outpost computers [--json]

Lists computers the boot service knows: discovered (they network-booted unknown),
predefined (registered with an image) and managed (an agent runs on them).`,
  'boot-image add': `Usage: outpost boot-image add NAME --package PKG (--script PATH | --kernel PATH [--initrd PATH...] [--cmdline TEXT]) [--description TEXT] [--json]

Defines a boot image from a package (outpost package add): an iPXE script in the
package to chain, or a kernel and initrds with a command line. Files are served to the
machines over HTTP by the netboot server, as ${'${outpost-base}'}/images/NAME/PATH.`,
  'boot-image rm': `Usage: outpost boot-image rm NAME [--json]`,
  'boot-images': `Usage: outpost boot-images [--json]   (also: outpost boot-image list)`,
  boots: `Usage: outpost boots [--mac MAC] [--limit N] [--json]

Recent network boots, newest first, with their timeline (DISCOVER, offer, 4011, TFTP
files with window and retransmits, script, HTTP files, handoff).`,
};

const help = (io: CliIo, cmd: string): number => {
  io.out(BOOT_USAGE[cmd]!);
  return 0;
};

const computerSchema = z.looseObject({ id: z.string(), macs: z.array(z.string()), kind: z.string(), name: z.string().optional(), image: z.string().optional(), job: z.string().optional(), boots: z.number().default(0), lastBootAt: z.string().optional(), once: z.looseObject({ image: z.string() }).optional(), pendingJob: z.looseObject({ job: z.string() }).optional(), lastJob: z.looseObject({ job: z.string(), run: z.string().optional(), error: z.string().optional() }).optional(), warnings: z.array(z.string()).optional() });

/** Where a computer's job stands: waiting for its agent after a boot, started (run id), or why it did not start. */
function jobState(c: z.infer<typeof computerSchema>): string {
  if (c.pendingJob) return 'waits for agent';
  if (c.lastJob?.run) return `run ${c.lastJob.run}`;
  if (c.lastJob?.error) return `not started: ${c.lastJob.error}`;
  return '';
}
const imageSchema = z.looseObject({ name: z.string(), package: z.string(), script: z.string().optional(), kernel: z.string().optional(), description: z.string().optional() });
const bootSchema = z.looseObject({
  id: z.string(),
  mac: z.string(),
  kind: z.string(),
  image: z.string().optional(),
  startedAt: z.string(),
  durationMs: z.number(),
  handedOff: z.boolean(),
  events: z.array(z.looseObject({ type: z.string(), offsetMs: z.number(), server: z.string().optional(), detail: z.record(z.string(), z.unknown()).optional() })),
});

/** `outpost computer add|rm ...` */
export async function computerCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return help(io, 'computer add');
  if (sub === 'list') return computersCommand(rest, io);
  if (sub === 'rm') {
    const { values, positionals } = parseCommand('computer rm', { args: rest, allowPositionals: true, options: adminOptions });
    if (values.help) return help(io, 'computer rm');
    if (!positionals[0]) throw new UsageError('missing the computer ID, MAC or NAME', 'computer rm');
    await callApi(await resolveTarget(values, io), 'DELETE', `/boot/computers/${encodeURIComponent(positionals[0])}`);
    io.out(`computer ${positionals[0]} removed`);
    return 0;
  }
  if (sub === 'reboot-to') return rebootToCommand(rest, io);
  if (sub === 'bind') return bindCommand(rest, io);
  if (sub !== 'add') throw new UsageError(`unknown sub-command 'computer ${sub}' (expected add, rm, list, reboot-to, bind)`);
  const cmd = 'computer add';
  const { values } = parseCommand(cmd, { args: rest, options: { ...adminOptions, mac: { type: 'string', multiple: true }, uuid: { type: 'string' }, image: { type: 'string' }, job: { type: 'string' }, name: { type: 'string' } } });
  if (values.help) return help(io, cmd);
  if (!values.mac?.length && !values.uuid) throw new UsageError('give --mac MAC (or --uuid UUID)', cmd);
  if (!values.image) throw new UsageError('give --image NAME (a boot image: outpost boot-images)', cmd);
  const body = { macs: values.mac ?? [], image: values.image, ...(values.uuid ? { uuid: values.uuid } : {}), ...(values.job ? { job: values.job } : {}), ...(values.name ? { name: values.name } : {}) };
  const created = expectShape(computerSchema, await callApi(await resolveTarget(values, io), 'POST', '/boot/computers', body), 'computer');
  if (values.json) printJson(io, created);
  else io.out(`computer ${created.id} (${created.macs.join(', ')}) predefined: image ${created.image ?? ''}${created.job ? `, job ${created.job}` : ''}`);
  if (!values.json) for (const w of created.warnings ?? []) io.err(`warning: ${w}`);
  return 0;
}

/** `outpost computer reboot-to REF|--mac M|--agent ID --image NAME [--job NAME]`: a one-shot boot into an image. */
async function rebootToCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'computer reboot-to';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: { ...adminOptions, mac: { type: 'string' }, agent: { type: 'string' }, image: { type: 'string' }, job: { type: 'string' } } });
  if (values.help) return help(io, cmd);
  const who = [positionals[0], values.mac, values.agent].filter((v) => v !== undefined);
  if (who.length !== 1 || positionals.length > 1) throw new UsageError('name exactly one computer: ID|MAC|NAME, --mac MAC or --agent ID', cmd);
  if (!values.image) throw new UsageError('give --image NAME (a boot image: outpost boot-images)', cmd);
  const body = {
    image: values.image,
    ...(positionals[0] !== undefined ? { computer: positionals[0] } : {}),
    ...(values.mac !== undefined ? { mac: values.mac } : {}),
    ...(values.agent !== undefined ? { agent: values.agent } : {}),
    ...(values.job ? { job: values.job } : {}),
  };
  const c = expectShape(computerSchema, await callApi(await resolveTarget(values, io), 'POST', '/boot/automation', body), 'computer');
  if (values.json) printJson(io, c);
  else io.out(`computer ${c.id} (${c.macs.join(', ')}) boots image ${c.once?.image ?? values.image}${values.job ? ` (job ${values.job})` : ''} once, on its next network boot`);
  return 0;
}

/** `outpost computer bind REF --agent ID | --none`: an admin's binding of a computer to its agent. */
async function bindCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'computer bind';
  const { values, positionals } = parseCommand(cmd, { args: [...argv], allowPositionals: true, options: { ...adminOptions, agent: { type: 'string' }, none: { type: 'boolean' } } });
  if (values.help) return help(io, cmd);
  if (positionals.length !== 1) throw new UsageError('name one computer: ID|MAC|NAME', cmd);
  if ((values.agent === undefined) === (values.none !== true)) throw new UsageError('give --agent ID or --none', cmd);
  const c = expectShape(computerSchema, await callApi(await resolveTarget(values, io), 'PUT', `/boot/computers/${encodeURIComponent(positionals[0]!)}/agent`, { agent: values.agent ?? null }), 'computer');
  if (values.json) printJson(io, c);
  else io.out(values.agent !== undefined ? `computer ${c.id} (${c.macs.join(', ')}) bound to agent ${values.agent}` : `computer ${c.id} (${c.macs.join(', ')}) unbound: ${c.kind}`);
  return 0;
}

/** `outpost computers` */
export async function computersCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('computers', { args: [...argv], options: adminOptions });
  if (values.help) return help(io, 'computers');
  const raw = await callApi(await resolveTarget(values, io), 'GET', '/boot/computers');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  const list = expectShape(z.looseObject({ items: z.array(computerSchema) }), raw, 'computer list');
  if (list.items.length === 0) {
    io.out('no computers; outpost computer add --mac MAC --image NAME, or network-boot one');
    return 0;
  }
  printLines(io, formatTable(['ID', 'KIND', 'MACS', 'NAME', 'IMAGE', 'JOB', 'JOB STATE', 'ONE-SHOT', 'BOOTS', 'LAST BOOT'], list.items.map((c) => [c.id, c.kind, c.macs.join(','), c.name ?? '', c.image ?? '', c.job ?? '', jobState(c), c.once?.image ?? '', String(c.boots), formatTime(c.lastBootAt)])));
  return 0;
}

/** `outpost boot-image add|rm|list ...` */
export async function bootImageCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return help(io, 'boot-image add');
  if (sub === 'list') return bootImagesCommand(rest, io);
  if (sub === 'rm') {
    const { values, positionals } = parseCommand('boot-image rm', { args: rest, allowPositionals: true, options: adminOptions });
    if (values.help) return help(io, 'boot-image rm');
    if (!positionals[0]) throw new UsageError('missing the boot image NAME', 'boot-image rm');
    await callApi(await resolveTarget(values, io), 'DELETE', `/boot/images/${encodeURIComponent(positionals[0])}`);
    io.out(`boot image ${positionals[0]} removed`);
    return 0;
  }
  if (sub !== 'add') throw new UsageError(`unknown sub-command 'boot-image ${sub}' (expected add, rm, list)`);
  const cmd = 'boot-image add';
  const { values, positionals } = parseCommand(cmd, { args: rest, allowPositionals: true, options: { ...adminOptions, package: { type: 'string' }, script: { type: 'string' }, kernel: { type: 'string' }, initrd: { type: 'string', multiple: true }, cmdline: { type: 'string' }, description: { type: 'string' } } });
  if (values.help) return help(io, cmd);
  const name = positionals[0];
  if (!name) throw new UsageError('missing the boot image NAME', cmd);
  if (!values.package) throw new UsageError('give --package PKG', cmd);
  if ((values.script === undefined) === (values.kernel === undefined)) throw new UsageError('give exactly one of --script PATH, --kernel PATH', cmd);
  const body = { name, package: values.package, ...(values.script ? { script: values.script } : {}), ...(values.kernel ? { kernel: values.kernel } : {}), ...(values.initrd ? { initrd: values.initrd } : {}), ...(values.cmdline ? { cmdline: values.cmdline } : {}), ...(values.description ? { description: values.description } : {}) };
  const created = await callApi(await resolveTarget(values, io), 'POST', '/boot/images', body);
  if (values.json) printJson(io, created);
  else io.out(`boot image ${name} added (package ${values.package})`);
  return 0;
}

/** `outpost boot-images` */
export async function bootImagesCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand('boot-images', { args: [...argv], options: adminOptions });
  if (values.help) return help(io, 'boot-images');
  const raw = await callApi(await resolveTarget(values, io), 'GET', '/boot/images');
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  const list = expectShape(z.looseObject({ items: z.array(imageSchema) }), raw, 'boot image list');
  if (list.items.length === 0) {
    io.out('no boot images; outpost boot-image add NAME --package PKG --script boot.ipxe');
    return 0;
  }
  printLines(io, formatTable(['NAME', 'PACKAGE', 'BOOTS', 'DESCRIPTION'], list.items.map((i) => [i.name, i.package, i.script ? `script ${i.script}` : `kernel ${i.kernel ?? ''}`, i.description ?? ''])));
  return 0;
}

/** `outpost boots` */
export async function bootsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = 'boots';
  const { values } = parseCommand(cmd, { args: [...argv], options: { ...adminOptions, mac: { type: 'string' }, limit: { type: 'string' } } });
  if (values.help) return help(io, cmd);
  const limit = positiveInt(values.limit, 'limit', cmd) ?? 20;
  const q = new URLSearchParams({ limit: String(limit), ...(values.mac ? { mac: values.mac } : {}) });
  const raw = await callApi(await resolveTarget(values, io), 'GET', `/boot/boots?${q}`);
  if (values.json) {
    printJson(io, raw);
    return 0;
  }
  const list = expectShape(z.looseObject({ items: z.array(bootSchema) }), raw, 'boot list');
  if (list.items.length === 0) {
    io.out('no boots yet');
    return 0;
  }
  for (const b of list.items) {
    io.out(`${b.startedAt}  ${b.mac}  ${b.kind}${b.image ? ` → ${b.image}` : ''}  ${b.handedOff ? 'handed off' : 'in progress'}  ${(b.durationMs / 1000).toFixed(1)}s  ${b.id}`);
    for (const e of b.events) {
      const detail = Object.entries(e.detail ?? {})
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      io.out(`  +${(e.offsetMs / 1000).toFixed(3).padStart(8)}s  ${e.type.padEnd(12)} ${detail}`);
    }
  }
  return 0;
}
