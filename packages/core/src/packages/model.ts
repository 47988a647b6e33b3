/** One file of a package: where it goes, how big it is, what its bytes hash to. */
export interface FileEntry {
  /** Relative POSIX path inside the package (`bin/tool`, never `..`, `.` or absolute). */
  path: string;
  size: number;
  /** Lower-case hex sha256 of the content. */
  sha256: string;
}

export type PackageState = 'incomplete' | 'ready';

export interface PackageRecord {
  /** Stable: derived from name and version. */
  id: string;
  name: string;
  version: string;
  files: FileEntry[];
  /** sha256 over the sorted manifest: identifies the content. */
  manifestHash: string;
  size: number;
  state: PackageState;
  /** Why a file is not in yet (oversized, truncated, hash mismatch), by path. */
  problems: Record<string, string>;
  /** `install`: the install files the install module publishes to stage them to sites (see install/stage.ts). */
  source: 'upload' | 'drop-folder' | 'install';
  createdAt: number;
  readyAt?: number | undefined;
  enabled: boolean;
  /** Package servers to stage to, in wave order. */
  targets: string[];
  /** Most servers staging at once; 0: no limit. */
  maxServers: number;
  enabledAt?: number | undefined;
  /**
   * A package a parent core sent down whose content this core need not hold: the id of that
   * parent. It is enabled and staged while `state` is still `incomplete`: the unconstrained
   * package servers fetch it from the parent's package servers (see hierarchy/upstream.ts),
   * and this core fetches it from the parent only as a fallback.
   */
  upstream?: string | undefined;
}

/** Whether a package can be enabled and staged: its content is here, or comes from upstream. */
export const stageable = (pkg: PackageRecord): boolean => pkg.state === 'ready' || pkg.upstream !== undefined;

export type ServerPackageState = 'pending' | 'downloading' | 'ready' | 'failed';

/** One (package, package server) pair. Key in level: `packageId!serverId`. */
export interface ServerStatusRecord {
  packageId: string;
  serverId: string;
  /** False while the stagger holds it back (not yet told to the server). */
  released: boolean;
  state: ServerPackageState;
  bytesDone: number;
  bytesTotal: number;
  error?: string | undefined;
  nextRetryAt?: number | undefined;
  attempt?: number | undefined;
  /** Base URL of the package on that server (files at `<codebase>/<path>`), once ready. */
  codebase?: string | undefined;
  releasedAt?: number | undefined;
  readyAt?: number | undefined;
  updatedAt: number;
}

/** An agent's report of a download. Key: `packageId!agentId`. */
export interface DownloadRecord {
  packageId: string;
  agentId: string;
  state: 'ok' | 'failed';
  codebase?: string | undefined;
  error?: string | undefined;
  bytes?: number | undefined;
  at: number;
}
