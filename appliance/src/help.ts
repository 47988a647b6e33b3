import { FUTURE_SECTIONS, SERVICE_SECTIONS } from './config/schema.js';
import { PACKAGE_USAGE } from './commands/packages.js';
import { BOOT_USAGE } from './commands/boot.js';
import { ADMIN_USAGE } from './commands/admins-usage.js';
import { AUDIT_USAGE } from './commands/audit.js';
import { CORE_USAGE } from './commands/core.js';
import { INSTALL_USAGE } from './commands/agent-install.js';

/** Usage text per command; `''` is the top level. */
const USAGE: Record<string, string> = {
  '': `Usage: outpost <command> [options]

Run services:
  start [--config FILE]            run the services FILE names, in this process

Administer a core over its HTTP API:
  site add NAME --subnet CIDR...   add a site (a set of IPv4/IPv6 subnets)
  site list                        list sites
  site rm NAME                     remove a site
  token create --for agent|site-server [--uses N] [--expires DURATION]
               [--service S]... [--address IP]... [--name DNS]... [--site NAME]...
                                   create an enrollment token (a site server's with its grant)
  agents [--state S] [--site NAME] list agents
  agent install-command [--site S] [--uses N] [--expires D]
                                   print the one line that installs and enrolls an agent
  agent push HOST... --ssh-user U [--ssh-key F] [--port P] [--concurrency N]
                                   install and enroll agents over SSH
  site-servers                     list site servers
  site-server set ID [--service S]... [--no-service NAME]... [--address IP]... [--name DNS]... [--site NAME]...
                                   change what a site server is granted
  task add NAME [--timeout D] [--server] -- PROGRAM ARGS... | --script FILE | --builtin B
                                   define a task (--server: the core runs it)
  task edit NAME ... | task rm NAME | task clone NAME NEW
                                   change, remove or copy a task
  tasks                            list tasks
  job add NAME --step TASK[:continue|:stop|:retry=N]...
                                   define a job (ordered steps)
  job edit NAME [--step S...] | job rm NAME | job clone NAME NEW
                                   change, remove or copy a job
  jobs                             list jobs
  job run NAME --agents ID...|--site NAME|--all|--core ID... [--expires D]
                                   run a job; prints the run id (with child cores:
                                   --all, --site and --core run over the hierarchy)
  run show ID                      a run's states, hop times, failures, agents not reached
  run cancel ID                    cancel a run
  package add DIR --name NAME [--version V]
                                   upload a directory as a package (resumable)
  package enable NAME [--servers ID...|--site NAME] [--max-servers N]
                                   stage it to package servers
  package disable NAME | package rm NAME
                                   take it off the servers | delete it everywhere
  package show NAME                per server: state, bytes, last error, retry, codebase
  packages                         list packages
  computer add --mac MAC --image NAME [--job NAME]
                                   predefine a computer for network boot
  computer reboot-to ID|MAC|NAME|--mac MAC --image NAME [--job NAME]
                                   boot it into an image once (reboot to automation)
  computer bind ID|MAC|NAME --agent ID|--none
                                   bind the computer to the agent on it (or unbind)
  computers                        computers the boot service knows
  boot-image add NAME --package PKG --script PATH | --kernel PATH [--initrd PATH...]
                                   define a boot image; boot-images lists them
  boots [--mac MAC]                recent network boots with their timelines
  audit [--since D] [--admin NAME] [--action A] [--result R] [--limit N]
                                   the audit log: changes, sign-ins, refused requests
  audit verify                     check the audit log's hash chain
  hierarchy token create | hierarchy join PARENT_URL --token T
                                   make a child core of this one | join a parent core
  hierarchy status | hierarchy replicate --now [--full] | hierarchy agents
                                   links (state, lag, bytes), push now, agents below
  hierarchy leave | hierarchy remove CHILD_ID
                                   leave the parent | forget a child at once
  core migrate --to postgres URL   copy a stopped core's records into PostgreSQL, verified
                                   (--to level --from URL: back into its data dir)

Administrators and roles:
  admin add NAME --role ROLE... [--site SITE...] [--password-stdin]
                                   add an administrator (prints its first API token once)
  admin list | admin show NAME     administrators, their roles, scopes and API tokens
  admin set NAME [--role R...] [--site S...|--all-sites]
                                   change roles or scope
  admin rm NAME                    remove an administrator
  admin password NAME --password-stdin
                                   set a console password (read from standard input)
  admin token create NAME --name T [--expires D] | admin token list NAME
  admin token rm NAME ID           an administrator's API tokens (shown once when created)
  role add NAME --allow PERMISSION... | role list | role rm NAME
                                   custom roles
  role permissions                 what each permission allows

Tools:
  tftp serve DIR [options]         serve a directory over TFTP

Options of the admin commands:
  --json         print the API's JSON, for scripts
  --url URL      the core's URL (else env OUTPOST_URL); repeat it, or give
                 OUTPOST_URL=URL1,URL2, for several cores: tried in order
  --token TOKEN  an admin token (else env OUTPOST_TOKEN)
  --config FILE  find the local core and its admin token through this config
                 (default: ./configs/all-in-one.yaml, /etc/outpost/outpost.yaml,
                 /etc/outpost/core.yaml: the first that exists and runs a core)

Run 'outpost <command> --help' for a command's options; 'outpost --version' prints the version.
Exit status: 0 done, 1 error (printed as "error CODE: message"), 2 bad command line.`,

  start: `Usage: outpost start [--config FILE]

Runs the services the config names in one process, in this order: ${SERVICE_SECTIONS.join(', ')}
(later releases add ${FUTURE_SECTIONS.join(', ')}). A local agent or site service
without coreUrl uses the in-process core, and without an identity or token it is
enrolled with a one-use token minted for it.
SIGINT/SIGTERM stop the services in reverse order; exit status 0.

  --config FILE  YAML or JSON config; OUTPOST_<SECTION>__<KEY>=value environment
                 variables override keys (OUTPOST_CORE__HTTP__PORT=9090).
                 Default: ./configs/all-in-one.yaml, else /etc/outpost/outpost.yaml`,

  site: `Usage: outpost site <add|list|rm> ...

  site add NAME --subnet CIDR... [--description TEXT]
  site list
  site rm NAME

Run 'outpost site <sub-command> --help' for details.`,

  'site add': `Usage: outpost site add NAME --subnet CIDR... [--description TEXT] [--json]

Adds a site. Give --subnet once per subnet, or several subnets after one --subnet
(outpost site add hq --subnet 10.1.0.0/16 2001:db8::/48). Where subnets of two sites
overlap, the most specific prefix wins.`,

  'site list': `Usage: outpost site list [--json]

Lists sites: name, subnets, site servers serving them and agents in them.`,

  'site rm': `Usage: outpost site rm NAME [--json]

Removes a site. Agents and site servers stay; they are no longer in it.`,

  token: `Usage: outpost token create --for agent|site-server [--uses N] [--expires DURATION] [--note TEXT] [--service task|package:constrained|package:unconstrained|netboot|gateway]... [--address IP]... [--name DNS]... [--site NAME]... [--json]`,

  'token create': `Usage: outpost token create --for agent|site-server [--uses N] [--expires DURATION] [--note TEXT] [--service task|package:constrained|package:unconstrained|netboot|gateway]... [--address IP]... [--name DNS]... [--site NAME]... [--json]

Creates an enrollment token: an agent or site server presents it once to enroll.
  --for KIND          agent or site-server
  --uses N            how many enrollments it allows (default 1)
  --expires DURATION  lifetime, e.g. 30m, 24h, 7d (default: the core's, 24h)
  --note TEXT         a note kept with the token
A site server's token carries its grant: it gets only that, never what it claims.
  --service S         a service it may run (at least one; repeat for more)
  --address IP        an address approved for its URLs and certificate (repeat);
                      none: the address it enrolls from
  --name DNS          a DNS name approved for its URLs and certificate (repeat)
  --site NAME         a site it serves (repeat)
The token is shown only once.`,

  agents: `Usage: outpost agents [--state online|poll-only|offline] [--site NAME] [--limit N] [--json]

Lists agents with their state (online: push-reachable; poll-only: reached only when
it polls; offline), last contact, sites and addresses. Without --limit, all of them.`,

  'site-servers': `Usage: outpost site-servers [--json]

Lists site servers with their services (running and granted), sites, state, load and
approved addresses.`,

  'site-server': `Usage: outpost site-server set ID [--service S]... [--no-service NAME]... [--address IP]... [--name DNS]... [--site NAME]... [--json]`,

  'site-server set': `Usage: outpost site-server set ID [--service S]... [--no-service NAME]... [--address IP]... [--name DNS]... [--site NAME]... [--json]

Changes what a site server is granted. What falls outside the new grant stops at once
(selection, gateway routes, task assignment).
  --service S         grant a service: task, package:constrained, package:unconstrained,
                      netboot or gateway (repeat for more)
  --no-service NAME   take a service away: task, package, netboot or gateway
  --address IP        the approved addresses (the list given replaces the old one)
  --name DNS          the approved DNS names (replaces the old list)
  --site NAME         the sites it serves (replaces the old list)`,

  tftp: `Usage: outpost tftp serve DIR [--port N] [--address A] [options]

Serves DIR over TFTP in the foreground until SIGINT or SIGTERM (port 69 needs root or
CAP_NET_BIND_SERVICE; --port 6969 does not). Run 'outpost tftp --help' for every option.`,
};

/** The usage text of a command (`'site add'`), or of the top level. */
export function usage(command?: string): string {
  return USAGE[command ?? ''] ?? PACKAGE_USAGE[command ?? ''] ?? BOOT_USAGE[command ?? ''] ?? ADMIN_USAGE[command ?? ''] ?? AUDIT_USAGE[command ?? ''] ?? CORE_USAGE[command ?? ''] ?? INSTALL_USAGE[command ?? ''] ?? USAGE['']!;
}
