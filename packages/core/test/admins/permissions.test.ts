import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ALL_PERMISSIONS, BUILT_IN_ROLES, PERMISSIONS } from '../../src/admins/permissions.js';

describe('permissions', () => {
  it('documents every permission in src/admins/README.md, with the same description, and nothing extra', async () => {
    const readme = await readFile(fileURLToPath(new URL('../../src/admins/README.md', import.meta.url)), 'utf8');
    const section = readme.slice(readme.indexOf('| permission | allows |'), readme.indexOf('Built-in roles'));
    const rows = [...section.matchAll(/^\| `([a-z-]+\.[a-z]+)` \| (.+?) \|$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(Object.fromEntries(rows)).toEqual(PERMISSIONS);
  });

  it('gives owner everything, admin all but administrators, operator and viewer no change beyond the operator three', () => {
    expect([...BUILT_IN_ROLES.owner!.permissions].sort()).toEqual([...ALL_PERMISSIONS].sort());
    expect(BUILT_IN_ROLES.admin!.permissions.some((p) => p.startsWith('admins.'))).toBe(false);
    expect(BUILT_IN_ROLES.admin!.permissions).toHaveLength(ALL_PERMISSIONS.length - 2);
    expect(BUILT_IN_ROLES.viewer!.permissions.every((p) => p.endsWith('.read'))).toBe(true);
    expect(BUILT_IN_ROLES.viewer!.permissions).not.toContain('audit.read');
    const extra = BUILT_IN_ROLES.operator!.permissions.filter((p) => !BUILT_IN_ROLES.viewer!.permissions.includes(p));
    expect(extra.sort()).toEqual(['boot.act', 'packages.enable', 'runs.start']);
  });
});
