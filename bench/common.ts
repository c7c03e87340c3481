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

/** Busy and total CPU ticks of the whole machine, from /proc/stat (null where there is none). */
function cpuTicks(): { busy: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/**
 * How busy the machine was just before a benchmark started: the share of all cores' time that was
 * not idle over `ms` milliseconds (null where /proc/stat is missing). Unlike the load average, it
 * is not raised by the decay of earlier work nor, taken before the run, by the benchmark itself.
 */
export async function busyBefore(ms = 2000): Promise<number | null> {
  const a = cpuTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTicks();
  return a && b && b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : null;
}

/** A run counts as on a quiet machine when other work kept the cores under 10 % busy before it. */
export const QUIET_BUSY = 0.1;

/**
 * The one sentence every benchmark writes about the machine's load: the load averages at start and
 * end, how busy the cores were before the run, and whether that makes it a quiet or a shared run.
 */
export function loadSentence(start: number[], end: number[], busy: number | null): string {
  const avg = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');
  const before = busy == null ? 'the cores\' use before the run not measured (no /proc/stat)' : `the cores ${Math.round(busy * 100)} % busy in the 2 s before the run`;
  const quiet = busy != null && busy < QUIET_BUSY;
  return `Load average (1 / 5 / 15 min) ${avg(start)} at the start, ${avg(end)} at the end; ${before}. ${quiet ? 'The machine was quiet: no other work ran when the run started (the load averages include the decay of earlier work and this benchmark\'s own processes).' : '**The machine was shared with other work**, so absolute numbers are low and noisy and multi-threaded engines lose most; compare the ratios to the references measured in the same run.'}`;
}
