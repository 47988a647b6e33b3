/** What the hierarchy module keeps (sublevels `hier-*`). See README.md here. */

/** A one-use join token (parent). Key: id. The secret is kept hashed. */
export interface JoinTokenRecord {
  id: string;
  hash: string;
  createdAt: number;
  expiresAt: number;
  usedAt?: number | undefined;
  usedBy?: string | undefined;
  note?: string | undefined;
}

/** A child core (parent). Key: the child's core id. */
export interface ChildRecord {
  id: string;
  name: string;
  /** The child's CA (trusted for this link only) and the fingerprint of the link certificate it issued itself. */
  caPem: string;
  certFingerprint: string;
  joinedAt: number;
  removedAt?: number | undefined;
  /** The last journal seq the child said it applied (down). */
  downAcked: number;
  /** The last of the child's journal seqs applied here (up), written with what it carried. */
  upApplied: number;
  /** Up entries that arrived again after they were applied (a page resent after a reconnection), skipped. */
  skipped?: number | undefined;
  lastSeen?: number | undefined;
  lastError?: string | undefined;
  bytesDown: number;
  bytesUp: number;
  /** The cores this child speaks for: itself and those below it (their summaries and results come through it only). */
  cores: string[];
}

/** This core's parent (child). Key: `link`. */
export interface ParentRecord {
  url: string;
  parentId: string;
  parentName: string;
  caPem: string;
  /** This core's link certificate (issued by its own CA) and key. */
  certPem: string;
  keyPem: string;
  joinedAt: number;
  /** The last of the parent's journal seqs applied here, written with what it carried. */
  downApplied: number;
  /** What the parent lets this core change on the items it owns (it says so at each connection). */
  editable?: string[] | undefined;
}

/** Who owns a replicated item (child). Key: `<sublevel>!<key>`. */
export interface OriginRecord {
  core: string;
  editable: string[];
}

/** A run of one job on agents of several cores. Key: id (`hr_...`). */
export interface HierRunRecord {
  id: string;
  job: string;
  target: { all?: boolean | undefined; cores?: string[] | undefined; site?: string | undefined };
  /** The core that started it. */
  origin: string;
  createdAt: number;
  expiresMs?: number | undefined;
  by?: string | undefined;
}

/** One agent's result of a hierarchy run. Key: `<run>!<core>!<agent>`. */
export interface ResultRecord {
  core: string;
  agent: string;
  name?: string | undefined;
  state: string;
  exit?: number | undefined;
  at: number;
}

/** What a child core tells its parent about one of its things. Key: `<core>!<kind>!<id>`. */
export type SummaryKind = 'core' | 'site' | 'site-server' | 'agent' | 'package';
export type Summary = Record<string, unknown> & { core: string; kind: SummaryKind; id: string };
