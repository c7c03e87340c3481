/**
 * A model card as readable sections (titles, key/value tables, tables, lists, text): the one
 * layout that both the package's model-card.md (src/host/export-package.ts) and the app's Share
 * page render, so that neither prints raw JSON. Pure.
 */
import type { ModelCard } from './results';

export type CardSection =
  | { title: string; kind: 'text'; text: string }
  | { title: string; kind: 'list'; items: string[] }
  /** `head` names the columns; every row has as many cells. */
  | { title: string; kind: 'table'; head: string[]; rows: string[][]; caption?: string };

/** The words of the sections' fixed labels (the package's privacy scan knows them as its own). */
export const CARD_WORDS = 'scanners and protocol studies licence author split patients series slices train validation held out total stage task mask steps epochs setting value metric mean sd per volume image loss final';

const counted = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const num = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : String(Number(v.toFixed(digits))));
const text = (v: unknown): string => (v === null || v === undefined || v === '' ? '—' : typeof v === 'number' ? num(v, 6) : String(v));

/** Nested objects as dotted keys: { trainedWith: { backend } } -> trainedWith.backend. */
function flatten(o: Record<string, unknown>, prefix = ''): [string, string][] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) ? flatten(v as Record<string, unknown>, `${prefix}${k}.`) : [[`${prefix}${k}`, Array.isArray(v) ? v.map(text).join(', ') : text(v)] as [string, string]],
  );
}

export function modelCardSections(c: ModelCard): CardSection[] {
  const d = c.data;
  const s = d.bySplit;
  const t = c.training;
  const pm = c.pretextMetrics;
  const sections: CardSection[] = [
    { title: 'Licence', kind: 'table', head: ['setting', 'value'], rows: [['licence', c.licence], ...(c.author ? [['author', c.author]] : [])] },
    { title: 'Intended use', kind: 'text', text: c.intendedUse },
    {
      title: 'Training data (no identifiers)',
      kind: 'table',
      head: ['split', 'patients', 'series', 'slices'],
      caption: `${counted(d.patients, 'patient')}, ${counted(d.studies, 'study', 'studies')}, ${counted(d.series, 'series', 'series')}, ${counted(d.slices, 'slice')}`,
      rows: [
        ['train', String(s.train.patients), String(s.train.series), String(s.train.slices)],
        ['validation', String(s.val.patients), String(s.val.series), String(s.val.slices)],
        ['held out', String(s.test.patients), String(s.test.series), String(s.test.slices)],
        ['total', String(d.patients), String(d.series), String(d.slices)],
      ],
    },
    {
      title: 'Scanners and protocol',
      kind: 'list',
      items: [
        `Scanners: ${d.scanners.map((x) => `${x.manufacturer} ${x.model} (${x.series} series)`).join(', ') || 'unknown'}`,
        `Slice thickness: ${d.sliceThicknessMm.min ?? '?'}–${d.sliceThicknessMm.max ?? '?'} mm`,
        `Study years: ${d.studyYears.from ?? '?'}–${d.studyYears.to ?? '?'}`,
      ],
    },
    {
      title: 'Task',
      kind: 'table',
      head: ['setting', 'value'],
      rows: Object.entries(c.task)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, text(v)]),
    },
    {
      title: 'Curriculum',
      kind: 'table',
      head: ['stage', 'task', 'mask', 'steps', 'epochs'],
      rows: c.curriculum.map((x, i) => [String(i + 1), x.task, x.maskPercent ? `${x.maskPercent}%${x.maskDefinition ? ` (${x.maskDefinition})` : ''}` : '—', text(x.steps), text(x.epochs)]),
    },
    {
      title: 'Training settings',
      kind: 'table',
      head: ['setting', 'value'],
      rows: [
        ...(t.recipe ? [['recipe', t.recipe === 'reference' ? "reference (the authors' public code)" : 'ours']] : []),
        ['optimizer', t.optimizer],
        ['lr', text(t.lr)],
        ['batchSize', text(t.batchSize)],
        ['steps', text(t.steps)],
        ['seed', text(t.seed)],
        ['lossWeights', Object.entries(t.lossWeights).map(([k, v]) => `${k} ${text(v)}`).join(', ') || '—'],
        ['fractions', `train ${text(t.fractions.train)} / validation ${text(t.fractions.val)} / held out ${text(t.fractions.test)}`],
      ],
    },
    pm && Object.keys(pm.perVolume).length
      ? {
          title: `Pretext metrics (${pm.volumes ?? '?'} ${pm.split === 'test' ? 'held out' : (pm.split ?? '')} volumes)`,
          kind: 'table',
          head: ['metric', 'mean', 'sd'],
          rows: Object.entries(pm.perVolume).map(([k, v]) => [k, num(v.mean), num(v.sd)]),
        }
      : { title: 'Pretext metrics', kind: 'text', text: 'Not evaluated (run `ctssl eval-ssl` before exporting).' },
    {
      title: 'Final training losses',
      kind: 'table',
      head: ['loss', 'value'],
      rows: Object.entries(c.finalTrainingLosses).map(([k, v]) => [k, num(v)]),
    },
    { title: 'Downstream results', kind: 'text', text: 'None recorded.' },
    { title: 'Known limitations', kind: 'list', items: c.limitations },
    { title: 'Reproducibility', kind: 'table', head: ['setting', 'value'], rows: flatten(c.ledger as unknown as Record<string, unknown>) },
  ];
  return sections;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** The card as Markdown: headings, tables and lists (model-card.md). */
export function modelCardMarkdown(c: ModelCard): string {
  const out = [`# ${c.name}`, ''];
  for (const s of modelCardSections(c)) {
    out.push(`## ${s.title}`, '');
    if (s.kind === 'text') out.push(s.text);
    else if (s.kind === 'list') out.push(...s.items.map((i) => `- ${i}`));
    else {
      if (s.caption) out.push(s.caption, '');
      out.push(`| ${s.head.map(cell).join(' | ')} |`, `|${s.head.map(() => '---').join('|')}|`, ...s.rows.map((r) => `| ${r.map(cell).join(' | ')} |`));
    }
    out.push('');
  }
  out.push('File checksums: checksums.json (SHA-256).', '');
  return out.join('\n');
}
