/** Shared by the benchmarks: project root and updating one section of docs/benchmarks.md. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'docs', 'benchmarks.md');
const HEADER = '# Benchmarks\n\nEach section is rewritten by the benchmark named in it; numbers are from the machine and date stated.\n';

/** Replaces (or appends) the `## title` section, keeping the others. */
export function replaceSection(title: string, body: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  const heading = `## ${title}`;
  const start = text.indexOf(heading + '\n');
  const section = `${heading}\n\n${body.trim()}\n`;
  if (start < 0) {
    writeFileSync(file, text.trimEnd() + '\n\n' + section);
    return;
  }
  const next = text.indexOf('\n## ', start + heading.length);
  const end = next < 0 ? text.length : next + 1;
  writeFileSync(file, text.slice(0, start) + section + (next < 0 ? '' : '\n' + text.slice(end)));
}
