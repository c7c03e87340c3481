/**
 * State of the library page: folders, the running indexing job, the series table with its cohort
 * filter, counts and skipped files. One instance for the app's lifetime (kept across page
 * switches, so the filters stay). Lists are `$state.raw`: replaced whole, never deeply proxied.
 * The series table's rows come a page at a time, sorted in SQL (`library.seriesPage`).
 */
import type { ApiClient } from '../../../shared/contract';
import type { AppInfo, CohortCounts, FolderRow, IndexProgress, LibraryStats, SeriesRow, SkippedFile } from '../../../shared/types';
import type { SeriesPageRequest, SeriesSortKey, SortDir } from '../../../shared/series-page';
import { FIRST_SERIES_PAGE } from '../../../shared/presets';
import { toasts } from '../lib/toasts.svelte';
import { folderPathProblem } from '../lib/paths';
import { LabelsState } from '../labels/labels-state.svelte';
import { FirstMinuteState } from './first-minute-state.svelte';
import { noFilters, paperCohort, toCohortFilter, type FilterForm } from './cohort';
import { isRunning } from './progress';

/** How many skipped files the panel lists. */
export const SKIPPED_LIMIT = 1000;

/**
 * Rows of the series table asked for at a time (the first page holds the first screenful and its
 * margin); the first request is FIRST_SERIES_PAGE's, whose pages `ctssl serve` reads at start.
 */
export const SERIES_PAGE = FIRST_SERIES_PAGE.limit;

export class LibraryState {
  info = $state.raw<AppInfo | null>(null);
  folders = $state.raw<FolderRow[]>([]);
  stats = $state.raw<LibraryStats | null>(null);
  /**
   * The rows of the sorted series list loaded so far, by their index in it (a sparse array of
   * `total` entries: the table asks for the pages it draws, `library.seriesPage`, sorted in SQL).
   */
  rows = $state.raw<(SeriesRow | undefined)[]>([]);
  /** How many series match the filter (the sorted list's length: `rows` holds that many entries). */
  total = $derived(this.rows.length);
  counts = $state.raw<CohortCounts | null>(null);
  skipped = $state.raw<SkippedFile[]>([]);
  progress = $state.raw<IndexProgress | null>(null);
  form = $state<FilterForm>(paperCohort());
  sortKey = $state<SeriesSortKey>(FIRST_SERIES_PAGE.sort.key);
  sortDir = $state<SortDir>(FIRST_SERIES_PAGE.sort.dir);
  selectedId = $state<number | null>(null);
  /** A request that changes the library is on its way (buttons disable). */
  pending = $state(false);
  /** A series query is waiting (debounce) or running; the counts on screen may be stale. */
  querying = $state(false);
  /** Why the typed folder path cannot be sent (shown under the field). */
  pathProblem = $state<string | null>(null);

  running = $derived(isRunning(this.progress));

  /** Settles once the first series query has answered (or failed): the app waits for it before warming the viewer's chunk. */
  readonly firstList: Promise<void>;
  /**
   * The first rows are painted (set in the frame after the first query answered or failed): until
   * then the page draws the rows alone, without its side panels (folders, labels, stats, skipped
   * files) and without the table's margin of rows off screen (bench/index-scale.ts).
   */
  firstRowsPainted = $state(false);
  private firstListSettled = false;
  private firstListResolve: () => void = () => {};

  private querySeq = 0;
  /** Settles when the latest series query's first page has been answered (or failed). */
  private rowsShown: Promise<void> = Promise.resolve();
  /** The filter and sort of the list in `rows`, and the pages asked for (by page index) in this query. */
  private listRequest: Omit<SeriesPageRequest, 'offset' | 'limit'> | null = null;
  private pages = new Map<number, Promise<void>>();
  private inFlight = 0;
  private lastQuery = '';
  private queryTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshedJob: string | null = null;
  private started = false;

  /** Imported label files; a change re-runs the cohort query (the "Labels" filter depends on it). */
  readonly labels: LabelsState;
  /** "Try it on a synthetic cohort" on an empty library (kept across page switches while it runs). */
  readonly firstMinute: FirstMinuteState;

  constructor(private readonly api: ApiClient) {
    this.firstList = new Promise((r) => (this.firstListResolve = r));
    this.labels = new LabelsState(api, () => void this.runQuery(true));
    this.firstMinute = new FirstMinuteState(api);
  }

  /** Subscribes to indexing progress and loads everything. Safe to call more than once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.api.on('index.progress', (p) => this.onProgress(p));
    void this.api.invoke('app.info').then(
      (i) => (this.info = i),
      (e) => toasts.error('App info', e),
    );
    void this.api.invoke('library.progress').then(
      (p) => {
        // An event may have arrived first; keep the newer one.
        if (p && (!this.progress || this.progress.jobId !== p.jobId)) this.progress = p;
        if (p && !isRunning(p)) this.refreshedJob = p.jobId;
      },
      (e) => toasts.error('Indexing progress', e),
    );
    void this.refreshAll();
  }

  private firstListDone(): void {
    if (this.firstListSettled) return;
    this.firstListSettled = true;
    this.firstListResolve();
    requestAnimationFrame(() => setTimeout(() => (this.firstRowsPainted = true)));
  }

  private onProgress(p: IndexProgress): void {
    this.progress = p;
    if (!isRunning(p) && this.refreshedJob !== p.jobId) {
      this.refreshedJob = p.jobId;
      if (p.phase === 'error') toasts.error('Indexing', new Error(p.message ?? 'indexing failed'));
      // (The job sends its end event after attaching the DICOM SEG objects it found as label sources.)
      void this.refreshAll();
    }
  }

  /**
   * Everything the services may have changed: the series query first, and the folders, stats,
   * skipped files and label sources once its first rows are here (the services run requests that
   * arrive together back to back before answering, and counting a million files' folders takes
   * longer than the first page: the table is what the page is for).
   */
  async refreshAll(): Promise<void> {
    const query = this.runQuery(true);
    await this.rowsShown;
    await Promise.all([query, this.refreshFolders(), this.labels.refresh()]);
  }

  async refreshFolders(): Promise<void> {
    try {
      const [folders, stats, skipped] = await Promise.all([
        this.api.invoke('library.folders'),
        this.api.invoke('library.stats'),
        this.api.invoke('library.skipped', SKIPPED_LIMIT),
      ]);
      this.folders = folders;
      this.stats = stats;
      this.skipped = skipped;
    } catch (e) {
      toasts.error('Library', e);
    }
  }

  /** Debounced series query after a filter change (typing in the text field fires often). */
  scheduleQuery(): void {
    this.querying = true;
    if (this.queryTimer) clearTimeout(this.queryTimer);
    this.queryTimer = setTimeout(() => {
      this.queryTimer = null;
      void this.runQuery(false);
    }, 150);
  }

  /**
   * Runs the series and counts queries: the first page of the sorted list, then the counts; answers
   * to older queries are dropped. The rows already shown stay until the new first page replaces them.
   */
  async runQuery(force: boolean): Promise<void> {
    const filter = toCohortFilter(this.form);
    const request = { filter, sort: { key: this.sortKey, dir: this.sortDir } };
    const key = JSON.stringify(request);
    if (!force && key === this.lastQuery) {
      if (!this.queryTimer && this.inFlight === 0) this.querying = false;
      return;
    }
    this.lastQuery = key;
    this.inFlight++;
    const seq = ++this.querySeq;
    this.querying = true;
    let shown: () => void = () => {};
    this.rowsShown = new Promise((r) => (shown = r));
    try {
      // The first page alone, then the counts: the services run the requests that arrive together
      // back to back before answering, so the rows would wait for the counts (each filter counted alone).
      // User Timing marks of the first request (bench/index-scale.ts reads them).
      if (seq === 1) performance.mark('ctssl-library:first-page-asked');
      const page = await this.api.invoke('library.seriesPage', { ...request, offset: 0, limit: SERIES_PAGE }).finally(shown);
      if (seq === 1) performance.mark('ctssl-library:first-page-answered');
      if (seq !== this.querySeq) return;
      this.listRequest = request;
      this.pages = new Map([[0, Promise.resolve()]]);
      const rows = new Array<SeriesRow | undefined>(page.total);
      page.rows.forEach((r, i) => (rows[i] = r));
      this.rows = rows;
      this.firstListDone();
      const counts = await this.api.invoke('library.cohortCounts', filter);
      if (seq !== this.querySeq) return;
      this.counts = counts;
    } catch (e) {
      if (seq === this.querySeq) {
        this.lastQuery = '';
        toasts.error('Series', e);
      }
    } finally {
      this.inFlight--;
      if (seq === this.querySeq && !this.queryTimer) this.querying = false;
      this.firstListDone();
    }
  }

  /** Asks for the pages of rows `from` to `to - 1` not loaded or asked for yet (the table calls it with the rows it draws). */
  want(from: number, to: number): void {
    const last = Math.min(to, this.total) - 1;
    for (let p = Math.floor(Math.max(0, from) / SERIES_PAGE); p * SERIES_PAGE <= last; p++) void this.loadPage(p);
  }

  /** Row `i` of the sorted list, loading its page when needed; undefined when the list changed meanwhile or has no such row. */
  async rowAt(i: number): Promise<SeriesRow | undefined> {
    if (i < 0 || i >= this.total) return undefined;
    if (!this.rows[i]) await this.loadPage(Math.floor(i / SERIES_PAGE));
    return this.rows[i];
  }

  private loadPage(p: number): Promise<void> {
    const request = this.listRequest;
    if (!request) return Promise.resolve();
    const pending = this.pages.get(p);
    if (pending) return pending;
    const seq = this.querySeq;
    const done = this.api.invoke('library.seriesPage', { ...request, offset: p * SERIES_PAGE, limit: SERIES_PAGE }).then(
      (page) => {
        if (seq !== this.querySeq || this.listRequest !== request) return;
        const rows = this.rows.slice();
        rows.length = page.total;
        page.rows.forEach((r, i) => (rows[page.offset + i] = r));
        this.rows = rows;
      },
      (e) => {
        if (seq === this.querySeq) {
          this.pages.delete(p);
          toasts.error('Series', e);
        }
      },
    );
    this.pages.set(p, done);
    return done;
  }

  resetToPaperCohort(): void {
    this.form = paperCohort();
  }

  clearFilters(): void {
    this.form = noFilters();
  }

  /** Sorts the table by a column (again: the other way), in SQL: the list is asked for again. */
  sortBy(key: SeriesSortKey): void {
    if (this.sortKey === key) this.sortDir = this.sortDir === 'asc' ? 'desc' : 'asc';
    else {
      this.sortKey = key;
      this.sortDir = 'asc';
    }
    void this.runQuery(false);
  }

  /** Adds a typed folder path (server mode, or Electron without the picker). Returns true when indexing started. */
  async addFolderPath(raw: string): Promise<boolean> {
    this.pathProblem = folderPathProblem(raw);
    if (this.pathProblem) return false;
    return this.addFolder(raw.trim());
  }

  /** Electron: the native picker, then add. */
  async pickAndAdd(): Promise<boolean> {
    this.pending = true;
    try {
      const path = await this.api.invoke('library.pickFolder');
      if (!path) return false;
      return await this.addFolder(path);
    } catch (e) {
      toasts.error('Add folder', e);
      return false;
    } finally {
      this.pending = false;
    }
  }

  private async addFolder(path: string): Promise<boolean> {
    this.pending = true;
    try {
      await this.api.invoke('library.addFolder', path);
      void this.refreshFolders();
      return true;
    } catch (e) {
      toasts.error('Add folder', e);
      return false;
    } finally {
      this.pending = false;
    }
  }

  async reindex(): Promise<void> {
    this.pending = true;
    try {
      await this.api.invoke('library.reindex');
    } catch (e) {
      toasts.error('Re-index', e);
    } finally {
      this.pending = false;
    }
  }

  async cancel(): Promise<void> {
    const p = this.progress;
    if (!p || !isRunning(p)) return;
    try {
      await this.api.invoke('library.cancel', p.jobId);
    } catch (e) {
      toasts.error('Cancel indexing', e);
    }
  }

  async removeFolder(folder: FolderRow): Promise<void> {
    this.pending = true;
    try {
      const summary = await this.api.invoke('library.removeFolder', folder.id);
      toasts.notice('Folder removed', `${folder.path}: ${summary.series} series remain in the library.`);
      await this.refreshAll();
    } catch (e) {
      toasts.error('Remove folder', e);
    } finally {
      this.pending = false;
    }
  }
}
