/**
 * The app's pages and their URL fragments (#/library, #/viewer/12). Hash routing works the same
 * in Electron (file://) and in a browser on `ctssl serve`, and a reload stays on the page.
 *
 * To add a page: add its id to `PageId`, an entry to `navPages`, and its component to the page
 * table in App.svelte.
 */

export type PageId = 'library' | 'viewer';

export interface Route {
  page: PageId;
  /** Series shown by the viewer (library series id). */
  seriesId?: number;
}

export interface NavPage {
  id: PageId;
  label: string;
  /** Tooltip. */
  hint: string;
}

/** Navigation entries, in order. Later: Pretrain, Evaluate, Fine-tune, Export. */
export const navPages: readonly NavPage[] = [
  { id: 'library', label: 'Library', hint: 'Folders, indexing, series and cohort filters' },
  { id: 'viewer', label: 'Viewer', hint: 'Scroll through a series in Hounsfield units' },
];

const pageIds = new Set<string>(navPages.map((p) => p.id));

/** Route of a location hash; anything unknown (including "#token=...") is the library. */
export function parseHash(hash: string): Route {
  // Anything after '&' (e.g. the token of a first visit, #/viewer/7&token=...) is not part of the route.
  const parts = hash.replace(/^#\/?/, '').split('&')[0].split('/').filter(Boolean);
  const page = parts[0] ?? '';
  if (!pageIds.has(page)) return { page: 'library' };
  if (page === 'viewer') {
    const id = Number(parts[1]);
    return Number.isInteger(id) && id >= 0 && parts[1] !== undefined ? { page: 'viewer', seriesId: id } : { page: 'viewer' };
  }
  return { page: page as PageId };
}

export function routeHash(r: Route): string {
  if (r.page === 'viewer' && r.seriesId !== undefined) return `#/viewer/${r.seriesId}`;
  return `#/${r.page}`;
}
