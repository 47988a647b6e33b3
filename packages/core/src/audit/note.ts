import type { AuditNote, RouteContext } from '@outpost/common';

/** Adds to what this request's audit entry records (see AuditNote), keeping what is there. */
export function noteAudit(ctx: Pick<RouteContext, 'state'>, fields: AuditNote): void {
  ctx.state.audit = { ...ctx.state.audit, ...fields };
}
