import type { BootImageRecord } from './model.js';

/*
 * iPXE scripts the core decides. `${outpost-base}` is set by the netboot server that
 * serves the script (its own HTTP base URL), so image files come from the nearest
 * server; `images/<name>/<path>` there serves the boot image package's files.
 */

const safe = (s: string): string => s.replace(/[^\w.:@/=,+-]/g, '_');

function header(lines: Record<string, string | undefined>): string[] {
  const out = ['#!ipxe'];
  for (const [k, v] of Object.entries(lines)) if (v !== undefined) out.push(`set outpost-${k} ${safe(v)}`);
  return out;
}

/** Boots one image: chain its script, or kernel + initrd + cmdline. */
export function imageScript(image: BootImageRecord, vars: { computer?: string | undefined; kind: string; job?: string | undefined }): string {
  const lines = header({ computer: vars.computer, kind: vars.kind, image: image.name, job: vars.job });
  const base = `\${outpost-base}/images/${encodeURIComponent(image.name)}`;
  lines.push(`echo Outpost: ${vars.kind} computer, booting image ${safe(image.name)}${vars.job ? `, job ${safe(vars.job)}` : ''}`);
  if (image.script) {
    lines.push(`chain ${base}/${image.script} || goto failed`);
  } else if (image.kernel) {
    const args = [image.cmdline ?? '', vars.computer ? `outpost.computer=${safe(vars.computer)}` : '', vars.job ? `outpost.job=${safe(vars.job)}` : ''].filter(Boolean).join(' ');
    lines.push(`kernel ${base}/${image.kernel} ${args} || goto failed`);
    for (const i of image.initrd ?? []) lines.push(`initrd ${base}/${i} || goto failed`);
    lines.push('boot || goto failed');
  } else {
    lines.push('goto failed');
  }
  lines.push(':failed', 'echo Outpost: boot image failed, booting from the local disk', 'sleep 5', 'exit 1', '');
  return lines.join('\n');
}

/** The default menu for an unknown computer: the boot images, and the local disk. */
export function menuScript(images: readonly BootImageRecord[], opts: { mac: string; defaultImage?: string | undefined; timeoutMs: number }): string {
  const lines = header({ kind: 'unknown' });
  lines.push(`echo Outpost: unknown computer ${safe(opts.mac)}, recorded as discovered`);
  const def = images.find((i) => i.name === opts.defaultImage);
  lines.push('menu Outpost network boot');
  lines.push('item --gap Boot images');
  images.forEach((img, n) => lines.push(`item img${n} ${safe(img.name)}${img.description ? ` - ${safe(img.description)}` : ''}`));
  lines.push('item --gap', 'item local Boot from the local disk');
  const defKey = def ? `img${images.indexOf(def)}` : 'local';
  lines.push(`choose --timeout ${Math.max(0, Math.round(opts.timeoutMs))} --default ${defKey} target || goto local`);
  lines.push('goto ${target}');
  images.forEach((img, n) => {
    const base = `\${outpost-base}/images/${encodeURIComponent(img.name)}`;
    lines.push(`:img${n}`);
    if (img.script) lines.push(`chain ${base}/${img.script} || goto local`);
    else if (img.kernel) {
      lines.push(`kernel ${base}/${img.kernel} ${img.cmdline ?? ''} || goto local`);
      for (const i of img.initrd ?? []) lines.push(`initrd ${base}/${i} || goto local`);
      lines.push('boot || goto local');
    } else lines.push('goto local');
  });
  lines.push(':local', 'echo Outpost: booting from the local disk', 'exit 1', '');
  return lines.join('\n');
}
