/**
 * Labels of the open series in the viewer: findings grouped by lesion, per-slice badges, and the
 * masks of the slice on screen for the chosen readers (one reader, the union of all, or a
 * consensus of at least k readers), with colour, opacity and per-group toggles.
 *
 * Reactive fields are the small view-model; masks live in a plain cache (Map), and `version` ticks
 * when the picture of the current slice has to be redrawn.
 */
import type { ApiClient } from '../../../shared/contract';
import type { SeriesLabels, SliceMasks } from '../../../shared/types';
import { toasts } from '../lib/toasts.svelte';
import { composeOverlay, nextLabelled, PALETTE, type OverlayStyle } from './label-overlay';
import { groupFindings, type LabelGroup } from './label-groups';

export type { LabelGroup };

export type ReaderMode = { kind: 'all' } | { kind: 'reader'; reader: string } | { kind: 'consensus'; k: number };

/** Slices of masks kept (the reformat views need every labelled slice's). */
const CACHE = 512;

export class ViewerLabelsState {
  labels = $state.raw<SeriesLabels | null>(null);
  groups = $state.raw<LabelGroup[]>([]);
  mode = $state.raw<ReaderMode>({ kind: 'all' });
  visible = $state(true);
  opacity = $state(0.35);
  outline = $state(true);
  colours = $state.raw<Record<string, string>>({});
  hidden = $state.raw<Record<string, boolean>>({});
  /** Ticks when the overlay of the slice on screen changed. */
  version = $state(0);
  /** Groups with a mask on the slice on screen. */
  onSlice = $state.raw<string[]>([]);
  /** Bounding box of what the overlay draws on the slice on screen (voxels), for tests and the status line. */
  drawnBox = $state.raw<{ i0: number; j0: number; i1: number; j1: number } | null>(null);

  /** Sorted display indices of labelled slices. */
  indices = $derived(this.labels ? this.labels.slices.map((s) => s.index).sort((a, b) => a - b) : []);

  private cache = new Map<string, SliceMasks>();
  private inflight = new Set<string>();
  private slice = -1;
  private disposed = false;
  private rgba: Uint8ClampedArray | null = null;
  private composed: { key: string; image: ImageData | null } | null = null;
  /** Ticks whenever the mask cache changes (a slice's masks arrive, or it is cleared). */
  private cacheTicks = 0;

  constructor(
    private readonly api: ApiClient,
    readonly seriesId: number,
    /** Asks the viewer to redraw. */
    private readonly redraw: () => void,
  ) {}

  async load(): Promise<void> {
    try {
      const l = await this.api.invoke('labels.series', this.seriesId);
      if (this.disposed) return;
      this.labels = l;
      this.groups = groupFindings(l.findings);
      const colours: Record<string, string> = {};
      this.groups.forEach((g, n) => (colours[g.key] = PALETTE[n % PALETTE.length]));
      this.colours = colours;
      this.cache.clear();
      this.cacheTicks++;
      if (this.slice >= 0) this.ensure(this.slice);
    } catch (e) {
      toasts.error('Labels', e);
    }
  }

  get readers(): string[] {
    return this.labels?.readers ?? [];
  }

  isLabelled(index: number): boolean {
    return this.indices.includes(index);
  }

  next(from: number, dir: 1 | -1): number | null {
    return nextLabelled(this.indices, from, dir);
  }

  private queryKey(): string {
    const m = this.mode;
    return m.kind === 'all' ? 'all' : m.kind === 'reader' ? `r:${m.reader}` : `k:${m.k}`;
  }

  /** Makes sure the masks of `index` are loaded (or loading); the overlay redraws when they arrive. */
  ensure(index: number): void {
    this.slice = index;
    if (!this.labels || !this.isLabelled(index)) {
      this.bump();
      return;
    }
    const key = `${this.queryKey()}/${index}`;
    if (this.cache.has(key)) {
      this.bump();
      return;
    }
    if (this.inflight.has(key)) return;
    this.inflight.add(key);
    const m = this.mode;
    const q = m.kind === 'all' ? {} : m.kind === 'reader' ? { reader: m.reader } : { consensusK: m.k };
    this.api.invoke('labels.masks', this.seriesId, index, q).then(
      (masks) => {
        this.inflight.delete(key);
        if (this.disposed) return;
        this.cache.set(key, masks);
        this.cacheTicks++;
        while (this.cache.size > CACHE) this.cache.delete(this.cache.keys().next().value!);
        if (this.slice === index && key === `${this.queryKey()}/${index}`) this.bump();
      },
      (e) => {
        this.inflight.delete(key);
        if (!this.disposed) toasts.error('Label masks', e);
      },
    );
  }

  private bump(): void {
    this.composed = null;
    this.version++;
    this.redraw();
  }

  setMode(m: ReaderMode): void {
    this.mode = m;
    this.ensure(this.slice);
  }

  setVisible(v: boolean): void {
    this.visible = v;
    this.bump();
  }

  toggle(): void {
    this.setVisible(!this.visible);
  }

  setOpacity(o: number): void {
    this.opacity = Math.max(0, Math.min(1, o));
    this.bump();
  }

  setOutline(v: boolean): void {
    this.outline = v;
    this.bump();
  }

  setColour(group: string, colour: string): void {
    this.colours = { ...this.colours, [group]: colour };
    this.bump();
  }

  setHidden(group: string, hidden: boolean): void {
    this.hidden = { ...this.hidden, [group]: hidden };
    this.bump();
  }

  /** The masks of slice `index` for the chosen readers, if loaded (see ensureAll). */
  masksAt(index: number): SliceMasks | undefined {
    return this.cache.get(`${this.queryKey()}/${index}`);
  }

  /** Loads the masks of every labelled slice (for the reformat views), a few requests at a time. */
  async ensureAll(): Promise<void> {
    const todo = this.indices.filter((k) => !this.cache.has(`${this.queryKey()}/${k}`)).slice(0, CACHE);
    const m = this.mode;
    const q = m.kind === 'all' ? {} : m.kind === 'reader' ? { reader: m.reader } : { consensusK: m.k };
    const key = this.queryKey();
    const next = async (): Promise<void> => {
      for (let k = todo.shift(); k !== undefined && !this.disposed; k = todo.shift()) {
        if (this.inflight.has(`${key}/${k}`)) continue;
        try {
          const masks = await this.api.invoke('labels.masks', this.seriesId, k, q);
          if (this.disposed || key !== this.queryKey()) return;
          this.cache.set(`${key}/${k}`, masks);
          this.cacheTicks++;
        } catch (e) {
          if (!this.disposed) toasts.error('Label masks', e);
          return;
        }
      }
    };
    await Promise.all([next(), next(), next()]);
    if (!this.disposed) this.bump();
  }

  /**
   * Changes whenever a picture made of the masks may change: the readers, the loaded masks, the
   * style or visibility (the reformat views keep their picture while it stays the same).
   */
  masksKey(): string {
    return `${this.queryKey()}/${this.version}/${this.cacheTicks}`;
  }

  overlayStyle(): OverlayStyle {
    return this.style();
  }

  private style(): OverlayStyle {
    return { opacity: this.opacity, outline: this.outline, colours: this.colours, hidden: this.hidden };
  }

  /** The overlay of the slice on screen as an ImageData (one pixel per voxel), or null when there is nothing to draw. */
  image(): ImageData | null {
    const masks = this.slice >= 0 ? this.cache.get(`${this.queryKey()}/${this.slice}`) : undefined;
    const key = `${this.queryKey()}/${this.slice}/${this.version}`;
    if (this.composed && this.composed.key === key) return this.composed.image;
    let image: ImageData | null = null;
    let box: ViewerLabelsState['drawnBox'] = null;
    const onSlice = masks ? masks.groups.filter((g) => g.mask.some((v) => v !== 0)).map((g) => g.group) : [];
    if (masks && this.visible && masks.groups.length > 0) {
      const n = masks.width * masks.height * 4;
      if (!this.rgba || this.rgba.length !== n) this.rgba = new Uint8ClampedArray(n);
      box = composeOverlay(
        masks.groups.map((g) => ({ key: g.group, mask: g.mask })),
        masks.width,
        masks.height,
        this.style(),
        this.rgba,
      );
      if (box) image = new ImageData(this.rgba as Uint8ClampedArray<ArrayBuffer>, masks.width, masks.height);
    }
    this.composed = { key, image };
    if (JSON.stringify(box) !== JSON.stringify(this.drawnBox)) this.drawnBox = box;
    if (onSlice.join('|') !== this.onSlice.join('|')) this.onSlice = onSlice;
    return image;
  }

  dispose(): void {
    this.disposed = true;
    this.cache.clear();
  }
}
