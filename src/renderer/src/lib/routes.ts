/**
 * The app's pages and their URL fragments (#/library, #/viewer/12, #/pretrain/3). Hash routing
 * works the same in Electron (file://) and in a browser on `ctssl serve`, and a reload stays on
 * the page.
 *
 * To add a page: add its id to `PageId`, an entry to `navPages`, and its component to the page
 * table in App.svelte.
 */

export type PageId = 'library' | 'viewer' | 'pretrain' | 'finetune' | 'experiments' | 'probe' | 'evaluate' | 'share';

export interface Route {
  page: PageId;
  /** Series shown by the viewer (library series id). */
  seriesId?: number;
  /** Run selected on the pretrain, fine-tune or evaluate page. */
  runId?: number;
  /** Experiment shown by the experiments page (its folder name, e.g. 20260101120000-pe-grid). */
  experimentId?: string;
}

export interface NavPage {
  id: PageId;
  label: string;
  /** Tooltip. */
  hint: string;
}

/** Navigation entries, in order. */
export const navPages: readonly NavPage[] = [
  { id: 'library', label: 'Library', hint: 'Folders, indexing, series, labels and cohort filters' },
  { id: 'viewer', label: 'Viewer', hint: 'Scroll through a series in Hounsfield units, with label overlays' },
  { id: 'pretrain', label: 'Pretrain', hint: 'Self-supervised pretraining runs: start, watch, compare' },
  { id: 'finetune', label: 'Fine-tune', hint: 'Fine-tune a classifier or U-Net on labelled slices from a pretrained encoder, random weights or the CNN baseline' },
  { id: 'experiments', label: 'Experiments', hint: 'The experiment grid: initialisations x training fractions x seeds, with plots and confidence intervals' },
  { id: 'probe', label: 'Bias probe', hint: 'Does an encoder predict sex, ethnic group or age group? (the paper’s Figure 6)' },
  { id: 'evaluate', label: 'Evaluate', hint: 'Pretext-task metrics on held-out scans (the paper’s Table II)' },
  { id: 'share', label: 'Share', hint: 'Export a run as a weights package, import packages' },
];

/** Experiment ids as the contract accepts them (experiments.report/stop). */
const EXPERIMENT_ID = /^[\w.-]{1,200}$/;

const pageIds = new Set<string>(navPages.map((p) => p.id));

function idPart(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Route of a location hash; anything unknown (including "#token=...") is the library. */
export function parseHash(hash: string): Route {
  // Anything after '&' (e.g. the token of a first visit, #/viewer/7&token=...) is not part of the route.
  const parts = hash.replace(/^#\/?/, '').split('&')[0].split('/').filter(Boolean);
  const page = parts[0] ?? '';
  if (!pageIds.has(page)) return { page: 'library' };
  const id = idPart(parts[1]);
  if (page === 'viewer') return id !== undefined ? { page: 'viewer', seriesId: id } : { page: 'viewer' };
  if (page === 'pretrain' || page === 'evaluate' || page === 'finetune') return id !== undefined ? { page, runId: id } : { page };
  if (page === 'experiments') {
    const e = parts[1] !== undefined && EXPERIMENT_ID.test(parts[1]) ? parts[1] : undefined;
    return e !== undefined ? { page, experimentId: e } : { page };
  }
  return { page: page as PageId };
}

export function routeHash(r: Route): string {
  if (r.page === 'viewer' && r.seriesId !== undefined) return `#/viewer/${r.seriesId}`;
  if ((r.page === 'pretrain' || r.page === 'evaluate' || r.page === 'finetune') && r.runId !== undefined) return `#/${r.page}/${r.runId}`;
  if (r.page === 'experiments' && r.experimentId !== undefined && EXPERIMENT_ID.test(r.experimentId)) return `#/experiments/${r.experimentId}`;
  return `#/${r.page}`;
}
