import { publicRoute, readJson, z, type AppState } from '@outpost/common';
import type { Router } from '@koa/router';
import type { Enrollment } from '../enrollment.js';
import { hostAddress, mac, name, services, tickleAddress } from './schemas.js';

const agentEnroll = z
  .object({
    token: z.string().min(1).max(512),
    name,
    macs: z.array(mac).max(64).default([]),
    ips: z.array(hostAddress).max(256).default([]),
    os: z.string().max(256).optional(),
    csr: z.string().min(1).max(16_384).optional(),
  })
  .strict();
const siteServerEnroll = z.object({ token: z.string().min(1).max(512), name, address: hostAddress.optional(), tickleAddress: tickleAddress.optional(), services, csr: z.string().min(1).max(16_384).optional() }).strict();

/** `POST /api/v1/enroll`: no bearer; the enrollment token is in the body. */
export function enrollRoutes(router: Router<AppState>, enrollment: Enrollment): void {
  router.post('/api/v1/enroll', publicRoute(), async (ctx) => {
    const body = await readJson(ctx, z.union([siteServerEnroll, agentEnroll]));
    const result = await enrollment.enroll('services' in body ? { kind: 'site-server', ...body, sourceIp: ctx.ip } : { kind: 'agent', ...body });
    ctx.status = 201;
    ctx.body = result;
  });
}
