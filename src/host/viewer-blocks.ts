/**
 * The server side of the viewer's slice blocks, for every door (Electron IPC, `ctssl serve`'s
 * socket): a warm cache of decoded slices and of their packed wire form, filled ahead of the
 * requests once a series is opened, so a block is answered from memory.
 *
 * - `open(seriesId)`: the series' VolumeInfo; starts decoding the series in the background (middle
 *   slice outward, as the viewer asks), a block at a time, yielding between blocks.
 * - `packed(seriesId, start, count, encoding)`: slices [start, start + count) in the wire form of
 *   src/shared/slice-packing.ts ('int16': raw little-endian; 'deflate': row deltas, deflate-raw level 1
 *   per slice, compressed on libuv's thread pool; 'delta8': byte differences, made on request and kept).
 *   A request for slices the warm-up has not reached decodes them at once.
 * - `slices(...)`: the same slices as one Int16Array (the `viewer.slices` channel, the CLI, tests).
 *
 * The cache holds whole series, least recently used first out, up to CTSSL_VIEWER_CACHE_MB
 * (default 1024) MB. An entry is keyed by the series' planes (instance, path, size and mtime of each
 * file as indexed), so re-indexing a changed file drops it.
 */
import { deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { ApiError } from '../shared/contract';
import { delta8EncodeSlice, deltaEncodeSlice, type SliceEncoding } from '../shared/slice-packing';
import type { PackedSlices, VolumeInfo } from '../shared/types';
import type { Database } from '../library/db/sqlite';
import { openVolumeInfo } from '../library/volumes/slice-blocks';
import { loadLayoutBlock, seriesLayout, type SeriesLayout } from '../library/volumes/volume';

const deflate = promisify(deflateRaw);

/** Slices decoded per step of the background warm-up. */
const WARM_BLOCK = 16;

interface Entry {
  seriesId: number;
  signature: string;
  layout: SeriesLayout;
  width: number;
  height: number;
  slices: (Int16Array | undefined)[];
  deflated: (Uint8Array | undefined)[];
  delta8: (Uint8Array | undefined)[];
  /** Decodes in progress, by first slice. */
  pending: Map<number, Promise<void>>;
  bytes: number;
  warming: boolean;
  /** A client asked for 'deflate': the warm-up deflates too. */
  wantDeflate: boolean;
  /** A client asked for 'delta8': the warm-up makes it too. */
  wantDelta8: boolean;
  dropped: boolean;
}

export class ViewerBlocks {
  private entries = new Map<number, Entry>();
  private readonly limit: number;

  constructor(
    private readonly db: Database,
    limitBytes = Number(process.env.CTSSL_VIEWER_CACHE_MB ?? 1024) * 2 ** 20,
  ) {
    this.limit = Number.isFinite(limitBytes) && limitBytes > 0 ? limitBytes : 2 ** 30;
  }

  /** VolumeInfo of the series, and the background warm-up of its slices. */
  open(seriesId: number): VolumeInfo {
    const info = openVolumeInfo(this.db, seriesId);
    const e = this.entry(seriesId, info.dims);
    if (!e.warming) void this.warm(e, Math.floor((info.dims[2] - 1) / 2));
    return info;
  }

  async packed(seriesId: number, start: number, count: number, encoding: SliceEncoding): Promise<PackedSlices> {
    const e = await this.range(seriesId, start, count);
    if (encoding === 'deflate') e.wantDeflate = true;
    if (encoding === 'delta8') e.wantDelta8 = true;
    const n = Math.min(count, e.slices.length - start);
    const parts: Uint8Array[] = [];
    for (let k = start; k < start + n; k++) {
      const s = e.slices[k]!;
      if (encoding === 'int16') parts.push(new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
      else if (encoding === 'delta8') parts.push(e.delta8[k] ?? this.delta8Slice(e, k));
      else parts.push(e.deflated[k] ?? (await this.deflateSlice(e, k)));
    }
    const total = parts.reduce((a, p) => a + p.length, 0);
    const bytes = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      bytes.set(p, o);
      o += p.length;
    }
    return { seriesId, start, count: n, width: e.width, height: e.height, encoding, sizes: parts.map((p) => p.length), bytes };
  }

  async slices(seriesId: number, start: number, count: number): Promise<{ start: number; count: number; data: Int16Array }> {
    const e = await this.range(seriesId, start, count);
    const n = Math.min(count, e.slices.length - start);
    const plane = e.width * e.height;
    const data = new Int16Array(plane * n);
    for (let k = 0; k < n; k++) data.set(e.slices[start + k]!, k * plane);
    return { start, count: n, data };
  }

  /** Drops every cached series (tests; a library reset). */
  clear(): void {
    for (const e of this.entries.values()) e.dropped = true;
    this.entries.clear();
  }

  private signature(seriesId: number): string {
    const rows = this.db
      .prepare(`SELECT i.id, f.size, f.mtime_ms FROM instances i JOIN files f ON f.id = i.file_ref WHERE i.series_ref = ? ORDER BY i.id`)
      .raw()
      .all(seriesId) as unknown[][];
    return rows.map((r) => r.join(':')).join(',');
  }

  private entry(seriesId: number, dims?: [number, number, number]): Entry {
    const signature = this.signature(seriesId);
    let e = this.entries.get(seriesId);
    if (e && e.signature !== signature) {
      this.drop(e);
      e = undefined;
    }
    if (!e) {
      const layout = seriesLayout(this.db, seriesId);
      const [width, height] = dims ?? [0, 0];
      e = {
        seriesId,
        signature,
        layout,
        width,
        height,
        slices: new Array(layout.planes.length),
        deflated: new Array(layout.planes.length),
        delta8: new Array(layout.planes.length),
        pending: new Map(),
        bytes: 0,
        warming: false,
        wantDeflate: false,
        wantDelta8: false,
        dropped: false,
      };
    }
    // Most recently used last.
    this.entries.delete(seriesId);
    this.entries.set(seriesId, e);
    return e;
  }

  private drop(e: Entry): void {
    e.dropped = true;
    this.entries.delete(e.seriesId);
  }

  private trim(keep: Entry): void {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    for (const e of this.entries.values()) {
      if (total <= this.limit) break;
      if (e === keep) continue;
      total -= e.bytes;
      this.drop(e);
    }
  }

  /** Makes sure slices [start, start + count) are decoded; the entry. */
  private async range(seriesId: number, start: number, count: number): Promise<Entry> {
    if (this.db.prepare('SELECT 1 FROM series WHERE id = ?').pluck().get(seriesId) === undefined) throw new ApiError('not-found', `no series with id ${seriesId}`);
    const e = this.entry(seriesId);
    if (start >= e.slices.length) throw new ApiError('invalid-argument', `slice ${start} is outside the series (${e.slices.length} slices)`);
    const end = Math.min(e.slices.length, start + count);
    await this.decode(e, start, end);
    return e;
  }

  /** Decodes the missing slices of [start, end), joining decodes already running. */
  private async decode(e: Entry, start: number, end: number): Promise<void> {
    for (;;) {
      const waits: Promise<void>[] = [];
      let k = start;
      let missing: [number, number] | null = null;
      while (k < end) {
        if (e.slices[k]) {
          k++;
          continue;
        }
        const p = e.pending.get(k);
        if (p) {
          waits.push(p);
          k++;
          continue;
        }
        let b = k + 1;
        while (b < end && !e.slices[b] && !e.pending.has(b)) b++;
        missing = [k, b];
        break;
      }
      if (missing) {
        const [a, b] = missing;
        const job = this.load(e, a, b - a);
        for (let i = a; i < b; i++) e.pending.set(i, job);
        waits.push(job);
      }
      if (waits.length === 0) return;
      await Promise.all(waits);
    }
  }

  private async load(e: Entry, start: number, count: number): Promise<void> {
    try {
      const block = await loadLayoutBlock(e.seriesId, e.layout, { start, count });
      e.width = block.width;
      e.height = block.height;
      const plane = block.width * block.height;
      for (let k = 0; k < count; k++) {
        // A copy per slice, so that evicting one never pins a whole block.
        e.slices[start + k] = block.data.slice(k * plane, (k + 1) * plane);
        e.bytes += plane * 2;
      }
      if (!e.dropped) this.trim(e);
    } catch (err) {
      throw err instanceof ApiError ? err : new ApiError('internal', (err as Error).message);
    } finally {
      for (let k = start; k < start + count; k++) e.pending.delete(k);
    }
  }

  private async deflateSlice(e: Entry, k: number): Promise<Uint8Array> {
    const d = await deflate(deltaEncodeSlice(e.slices[k]!), { level: 1 });
    const out = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    if (!e.deflated[k]) {
      e.deflated[k] = out;
      e.bytes += out.length;
    }
    return out;
  }

  private delta8Slice(e: Entry, k: number): Uint8Array {
    const out = delta8EncodeSlice(e.slices[k]!);
    e.delta8[k] = out;
    e.bytes += out.length;
    return out;
  }

  /** Decodes (and deflates) the whole series from `from` outward, a block at a time. */
  private async warm(e: Entry, from: number): Promise<void> {
    e.warming = true;
    const n = e.slices.length;
    const blocks: number[] = [];
    const first = Math.floor(from / WARM_BLOCK) * WARM_BLOCK;
    for (let d = 0; d * WARM_BLOCK < n; d++) {
      for (const b of d === 0 ? [first] : [first + d * WARM_BLOCK, first - d * WARM_BLOCK]) if (b >= 0 && b < n) blocks.push(b);
    }
    try {
      // The slice the viewer shows first, alone: its request must not wait for a whole block.
      await this.decode(e, from, Math.min(n, from + 1));
      for (const b of blocks) {
        if (e.dropped) return;
        const end = Math.min(n, b + WARM_BLOCK);
        await this.decode(e, b, end);
        if (e.wantDeflate) for (let k = b; k < end; k++) if (!e.deflated[k] && e.slices[k]) await this.deflateSlice(e, k);
        if (e.wantDelta8) for (let k = b; k < end; k++) if (!e.delta8[k] && e.slices[k]) this.delta8Slice(e, k);
        // Let requests in between.
        await new Promise((r) => setImmediate(r));
      }
    } catch {
      // A slice that cannot be decoded is reported to the request that asks for it.
    }
  }
}
