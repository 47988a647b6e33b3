/** Usage of `outpost admin ...` and `outpost role ...`. */
export const ADMIN_USAGE: Record<string, string> = {
  admin: `Usage: outpost admin <add|list|show|set|rm|password|token> ...

  admin add NAME --role ROLE... [--site SITE...] [--password-stdin] [--expires D]
  admin list
  admin show NAME
  admin set NAME [--role ROLE...] [--site SITE...|--all-sites]
  admin rm NAME
  admin password NAME --password-stdin [--current-stdin]
  admin token create NAME --name TOKEN-NAME [--expires D]
  admin token list NAME
  admin token rm NAME ID

Administrators are people with roles (outpost role list) and, optionally, a scope: the
sites whose agents, site servers, computers and runs they see and act on.
Run 'outpost admin <sub-command> --help' for details.`,

  'admin add': `Usage: outpost admin add NAME --role ROLE... [--site SITE...] [--password-stdin] [--expires D] [--json]

Adds an administrator.
  --role ROLE       a role it holds (repeat, or a,b): owner, admin, operator, viewer or
                    a custom role (outpost role list)
  --site SITE       scope it to these sites (repeat, or a,b); none: every site
  --password-stdin  read its console password from the first line of standard input
                    (printf '%s\\n' "$PASSWORD" | outpost admin add ...)
  --expires D       lifetime of its first API token, e.g. 30d (default: the core's, 90d)
Without --password-stdin it gets a first API token, printed here and shown only once.
Nobody grants more than they hold: a role or scope beyond yours is CORE_FORBIDDEN.`,

  'admin list': `Usage: outpost admin list [--json]

Lists administrators: roles, scope, how they sign in, live API tokens, lock-outs. The
bootstrap owner 'admin' (the core's admin-token file) is not listed: it always exists.`,

  'admin show': `Usage: outpost admin show NAME [--json]

Shows one administrator and its API tokens (ids and names, never the secrets).`,

  'admin set': `Usage: outpost admin set NAME [--role ROLE...] [--site SITE...|--all-sites] [--json]

Changes an administrator's roles (the list given replaces the old one) or scope
(--site: the sites given replace the old ones; --all-sites: every site).`,

  'admin rm': `Usage: outpost admin rm NAME [--json]

Removes an administrator with its API tokens and console sessions.`,

  'admin password': `Usage: outpost admin password NAME --password-stdin [--current-stdin] [--json]

Sets an administrator's console password, read from the first line of standard input;
its console sessions end. Changing your own without admins.write needs your current
password too: with --current-stdin the first line is the current password and the
second the new one (printf '%s\\n%s\\n' "$OLD" "$NEW" | outpost admin password me ...).`,

  'admin token': `Usage: outpost admin token <create|list|rm> ...

  admin token create NAME --name TOKEN-NAME [--expires D]
  admin token list NAME
  admin token rm NAME ID`,

  'admin token create': `Usage: outpost admin token create NAME --name TOKEN-NAME [--expires D] [--json]

Creates an API token for administrator NAME (yours needs no permission). It is printed
here and shown only once; use it as OUTPOST_TOKEN or --token.
  --name TOKEN-NAME  what it is for, e.g. laptop or ci
  --expires D        lifetime, e.g. 12h, 30d (default: the core's, 90d)`,

  'admin token list': `Usage: outpost admin token list NAME [--json]

Lists an administrator's API tokens: id, name, created, expires (never the secrets).`,

  'admin token rm': `Usage: outpost admin token rm NAME ID [--json]

Revokes one of an administrator's API tokens (ID from outpost admin token list).`,

  role: `Usage: outpost role <add|list|rm|permissions> ...

  role add NAME --allow PERMISSION... [--description TEXT]
  role list
  role rm NAME
  role permissions

Run 'outpost role <sub-command> --help' for details.`,

  'role add': `Usage: outpost role add NAME --allow PERMISSION... [--description TEXT] [--json]

Adds a custom role: a set of permissions (outpost role permissions lists them). Give
--allow once per permission, or several after one --allow (or a,b). You cannot grant a
permission you do not hold.`,

  'role list': `Usage: outpost role list [--json]

Lists the roles, built-in (owner, admin, operator, viewer) and custom, with their
permissions.`,

  'role rm': `Usage: outpost role rm NAME [--json]

Removes a custom role; refused while administrators hold it (CORE_ROLE_IN_USE).`,

  'role permissions': `Usage: outpost role permissions [--json]

Lists every permission a role can hold, with what it allows.`,
};
