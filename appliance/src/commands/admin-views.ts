import { z } from '@outpost/common';
import type { CliIo } from '../io.js';
import { printLines } from '../output.js';
import { formatTable, formatTime } from '../table.js';

// What the core answers about administrators (packages/core/src/admins/README.md), and
// how the admin commands print it.

export const adminTokenSchema = z.looseObject({ id: z.string(), name: z.string(), createdAt: z.string(), expiresAt: z.string(), expired: z.boolean() });
export const adminSchema = z.looseObject({
  name: z.string(),
  roles: z.array(z.string()),
  sites: z.array(z.string()).optional(),
  password: z.boolean(),
  sso: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lockedUntil: z.string().optional(),
  tokens: z.array(adminTokenSchema),
});
export const issuedSchema = z.looseObject({ id: z.string(), name: z.string(), token: z.string(), expiresAt: z.string() });

export type Admin = z.output<typeof adminSchema>;

export const scopeText = (a: Pick<Admin, 'sites'>): string => (a.sites ? `sites ${a.sites.join(', ')}` : 'every site');
export const signInText = (a: Admin): string => (a.sso ? 'sso' : a.password ? 'password' : 'token only');
export const adminPath = (name: string): string => `/admins/${encodeURIComponent(name)}`;

export function printTokens(io: CliIo, a: Admin): void {
  if (a.tokens.length === 0) {
    io.out(`${a.name} has no API tokens; create one with: outpost admin token create ${a.name} --name NAME`);
    return;
  }
  printLines(io, formatTable(['TOKEN ID', 'NAME', 'CREATED', 'EXPIRES'], a.tokens.map((t) => [t.id, t.name, formatTime(t.createdAt), `${formatTime(t.expiresAt)}${t.expired ? ' (expired)' : ''}`])));
}

/** Prints a just-issued API token, with the warning that it is shown once. */
export function printIssued(io: CliIo, issued: z.output<typeof issuedSchema>, admin: string, url: string): void {
  printLines(io, formatTable(['TOKEN', 'NAME', 'EXPIRES'], [[issued.token, issued.name, formatTime(issued.expiresAt)]]));
  io.out('');
  io.out(`The token is shown only this once. ${admin} uses it as OUTPOST_TOKEN (or --token):`);
  io.out(`  OUTPOST_URL=${url} OUTPOST_TOKEN=<the token> outpost site list`);
}
