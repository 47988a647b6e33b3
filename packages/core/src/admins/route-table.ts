import type { Router } from '@koa/router';
import type { AppState, RouteDeclaration } from '@outpost/common';

export interface RouteEntry {
  method: string;
  path: string;
  /** What the route's guard declares; undefined: it declares nothing (a defect a test catches). */
  declares: RouteDeclaration | undefined;
  /** How many guards declared something (exactly one is right). */
  declarations: number;
}

interface LayerLike {
  methods: string[];
  path: string | RegExp;
  stack: ((...args: never[]) => unknown)[];
}

/** Every route of `router` with its declaration, read from the guard middleware it carries. */
export function routeTable(router: Router<AppState>): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const layer of (router as unknown as { stack: LayerLike[] }).stack) {
    const methods = layer.methods.filter((m) => m !== 'HEAD');
    if (methods.length === 0) continue;
    const decls = layer.stack.map((mw) => (mw as { declares?: RouteDeclaration }).declares).filter((d): d is RouteDeclaration => d !== undefined);
    for (const method of methods) out.push({ method, path: String(layer.path), declares: decls[0], declarations: decls.length });
  }
  return out;
}
