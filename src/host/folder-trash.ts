/**
 * The trash of things the app keeps as one folder each (experiments, bias probes; runs use
 * `purgeFolder` for the folders they moved). Deleting moves `<live>/<id>` to `<trash>/<id>` and
 * notes when; restoring moves it back; emptying removes it for good. Nothing else is touched.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, isFolderId } from '../shared/contract';

/** When the folder went to the trash (ISO time), inside the trashed folder. */
const TRASHED = '.trashed';

/**
 * Deletes a folder for good, renamed first so that a half-deleted one is never taken for whole;
 * `renamed` runs between the two (e.g. forgetting records of what the folder held).
 */
export function purgeFolder(dir: string, renamed?: () => void): void {
  const purging = `${dir}.purging`;
  renameSync(dir, purging);
  renamed?.();
  rmSync(purging, { recursive: true, force: true });
}

export class FolderTrash {
  /**
   * @param live folder holding the items (e.g. <data>/experiments)
   * @param trash folder of the trashed items (e.g. <data>/trash/experiments)
   * @param marker file every item folder holds (e.g. spec.json): folders without it are not items
   * @param what the item's name in messages (e.g. 'experiment')
   */
  constructor(
    readonly live: string,
    readonly trash: string,
    private readonly marker: string,
    private readonly what: string,
  ) {}

  /** Folder of a live item; not-found unless the id is valid and the folder holds the marker. */
  liveDir(id: string): string {
    if (!isFolderId(id) || !existsSync(join(this.live, id, this.marker))) throw new ApiError('not-found', `no ${this.what} ${id}`);
    return join(this.live, id);
  }

  /** Moves an item to the trash; returns where from and where to. */
  move(id: string): { from: string; to: string } {
    const from = this.liveDir(id);
    const to = join(this.trash, id);
    if (existsSync(to)) throw new ApiError('invalid-argument', `a ${this.what} ${id} is already in the trash: empty the trash first`);
    mkdirSync(this.trash, { recursive: true });
    renameSync(from, to);
    writeFileSync(join(to, TRASHED), new Date().toISOString());
    return { from, to };
  }

  /** Moves an item back from the trash; returns where from and where to. */
  restore(id: string): { from: string; to: string } {
    const from = join(this.trash, id);
    if (!isFolderId(id) || !existsSync(join(from, this.marker))) throw new ApiError('not-found', `no ${this.what} ${id} in the trash`);
    const to = join(this.live, id);
    if (existsSync(to)) throw new ApiError('invalid-argument', `cannot restore ${this.what} ${id}: ${to} exists`);
    mkdirSync(this.live, { recursive: true });
    renameSync(from, to);
    rmSync(join(to, TRASHED), { force: true });
    return { from, to };
  }

  /** Ids in the trash, most recently deleted first. */
  ids(): string[] {
    if (!existsSync(this.trash)) return [];
    const at = (id: string) => {
      try {
        return readFileSync(join(this.trash, id, TRASHED), 'utf8');
      } catch {
        return '';
      }
    };
    return readdirSync(this.trash)
      .filter((d) => isFolderId(d) && existsSync(join(this.trash, d, this.marker)))
      .map((id) => ({ id, at: at(id) }))
      .sort((a, b) => b.at.localeCompare(a.at) || b.id.localeCompare(a.id))
      .map((x) => x.id);
  }

  /** Deletes trashed items for good (all, or the listed ids); `renamed(dir)` as in purgeFolder. Returns the ids removed. */
  empty(ids?: readonly string[], renamed?: (dir: string) => void): string[] {
    const removed: string[] = [];
    for (const id of this.ids()) {
      if (ids && !ids.includes(id)) continue;
      const dir = join(this.trash, id);
      purgeFolder(dir, () => renamed?.(dir));
      removed.push(id);
    }
    return removed;
  }
}
