import { isIP } from 'node:net';
import { UsageError } from '../errors.js';

/** A site server's granted services as the core's API takes them. */
export interface ServiceGrant {
  task?: true;
  package?: { constrained: boolean };
  netboot?: true;
  gateway?: true;
}

/** `--service`, `--address`, `--name`, `--site`: repeatable options of a grant. */
export const grantOptions = {
  service: { type: 'string', multiple: true },
  address: { type: 'string', multiple: true },
  name: { type: 'string', multiple: true },
  site: { type: 'string', multiple: true },
} as const;

export const SERVICE_CHOICES = 'task|package:constrained|package:unconstrained|netboot|gateway';
const SERVICE_NAMES = ['task', 'package', 'netboot', 'gateway'] as const;

/** Adds one `--service` value to `services`. */
export function addService(services: ServiceGrant, value: string, command: string): void {
  if (value === 'task' || value === 'netboot' || value === 'gateway') services[value] = true;
  else if (value === 'package:constrained' || value === 'package:unconstrained') services.package = { constrained: value === 'package:constrained' };
  else throw new UsageError(`--service must be one of ${SERVICE_CHOICES.split('|').join(', ')}, got '${value}'`, command);
}

/** Removes one `--no-service` value (a service name) from `services`. */
export function dropService(services: ServiceGrant, value: string, command: string): void {
  const name = value.split(':')[0]!;
  if (!(SERVICE_NAMES as readonly string[]).includes(name)) throw new UsageError(`--no-service must be one of ${SERVICE_NAMES.join(', ')}, got '${value}'`, command);
  delete services[name as (typeof SERVICE_NAMES)[number]];
}

/** `--address` values: IP literals only (names go in --name). */
export function addressesOf(values: readonly string[] | undefined, command: string): string[] | undefined {
  if (values === undefined) return undefined;
  for (const a of values) if (isIP(a.replace(/^\[(.*)\]$/, '$1')) === 0) throw new UsageError(`--address must be an IP address, got '${a}' (DNS names go in --name)`, command);
  return [...values];
}

/** `task, package:constrained, ...` for tables. */
export function describeGrant(services: Record<string, unknown> | undefined): string {
  return Object.entries(services ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([name, v]) => (name === 'package' && typeof v === 'object' && v !== null && 'constrained' in v ? `package:${(v as { constrained: unknown }).constrained ? 'constrained' : 'unconstrained'}` : name))
    .join(',');
}
