import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Files under dir whose path matches re, sorted. */
export function globSync(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(p)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}
