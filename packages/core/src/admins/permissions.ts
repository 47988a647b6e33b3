/**
 * What an administrator may do, one permission per kind of action. Every admin API route
 * declares exactly one (see guard.ts); roles are sets of them. The list is documented in
 * the core README ("Administrators"), and a test fails when the two disagree.
 */
export const PERMISSIONS = {
  'sites.read': 'list and show sites and their subnets',
  'sites.write': 'add, change and remove sites',
  'agents.read': 'list and show agents (and their runs and boot state)',
  'agents.write': 'change, move and remove agents, ask them to heartbeat',
  'site-servers.read': 'list and show site servers, their grants and health',
  'site-servers.write': 'change grants of site servers, approve and remove them',
  'tokens.read': 'list enrollment tokens (never their secrets)',
  'tokens.write': 'create and delete enrollment tokens for agents and site servers',
  'packages.read': 'list and show packages, their files and staging status',
  'packages.write': 'add, change and remove packages',
  'packages.enable': 'enable and disable packages, staged or at once',
  'tasks.read': 'list and show tasks and jobs',
  'tasks.write': 'add, change and remove tasks and jobs',
  'runs.read': 'list and show runs and their per-agent results',
  'runs.start': 'run jobs (on agents inside the scope) and cancel runs',
  'boot.read': 'list and show computers, boot images and boot timelines',
  'boot.write': 'add, change and remove computers and boot images',
  'boot.act': 'boot actions: reboot to automation, bind a computer to an agent',
  'ca.read': 'list certificates, blocked principals, quarantine and gateway connections',
  'ca.write': 'revoke certificates, block and unblock principals, release quarantine',
  'stats.read': 'read the core statistics',
  'console.read': 'open the console (its snapshot and live events)',
  'admins.read': 'list and show administrators and roles',
  'admins.write': 'add, change and remove administrators, their tokens and custom roles',
  'audit.read': 'query, stream and verify the audit log',
  'hierarchy.read': 'show the parent and child cores and their links',
  'hierarchy.write': 'make join tokens, join and leave a parent, remove children, replicate now',
} as const;

export type Permission = keyof typeof PERMISSIONS;
export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as Permission[];

export function isPermission(p: string): p is Permission {
  return Object.hasOwn(PERMISSIONS, p);
}

const reads = ALL_PERMISSIONS.filter((p) => p.endsWith('.read'));

/**
 * The built-in roles. `owner`: everything. `admin`: everything but administrators and
 * roles. `operator`: what `viewer` sees, plus running and cancelling jobs, enabling and
 * disabling packages, and boot actions. `viewer`: read only, without administrators,
 * enrollment tokens and the audit log.
 */
export const BUILT_IN_ROLES: Record<string, { description: string; permissions: readonly Permission[] }> = {
  owner: { description: 'everything, including administrators and the CA', permissions: ALL_PERMISSIONS },
  admin: { description: 'everything but administrators and roles', permissions: ALL_PERMISSIONS.filter((p) => !p.startsWith('admins.')) },
  operator: {
    description: 'read, run and cancel jobs, enable and disable packages, boot actions',
    permissions: [...reads.filter((p) => !['admins.read', 'tokens.read', 'audit.read'].includes(p)), 'runs.start', 'packages.enable', 'boot.act'],
  },
  viewer: { description: 'read only', permissions: reads.filter((p) => !['admins.read', 'tokens.read', 'audit.read'].includes(p)) },
};
