import { describe, expect, it } from 'vitest';
import { cameraFor, FIT, panBy, screenToVoxel, screenToWorld, zoomAt, type SliceLayout } from '../../src/renderer/src/viewer/slice-geometry';
import { clampWindow, dragWindow, presetOf, presets, windowText } from '../../src/renderer/src/viewer/window-level';
import { actionFor, shortcutHelp } from '../../src/renderer/src/viewer/shortcuts';

const layout: SliceLayout = { columns: 96, rows: 64, sx: 1, sy: 1.5 };

describe('slice geometry', () => {
  it('fits the slice in the viewport and maps the centre pixel to the centre voxel', () => {
    const cam = cameraFor(layout, 800, 600);
    // 96 x 96 mm slice in a 4:3 viewport: height limits, with 2 % margin.
    expect(cam.parallelScale).toBeCloseTo(48 * 1.02, 6);
    expect(cam.focal).toEqual([47.5, 47.25]);
    expect(screenToVoxel(layout, cam, 800, 600, 400, 300)).toEqual({ i: 48, j: 32 });
  });

  it('puts row 0 at the top and column 0 at the left, and nothing outside the slice', () => {
    const cam = cameraFor(layout, 800, 600);
    const mmPerPx = (2 * cam.parallelScale) / 600;
    const at = (i: number, j: number) => ({ x: 400 + (i * 1 - cam.focal[0]) / mmPerPx, y: 300 + (j * 1.5 - cam.focal[1]) / mmPerPx });
    const tl = at(0, 0);
    const br = at(95, 63);
    expect(tl.x).toBeLessThan(br.x);
    expect(tl.y).toBeLessThan(br.y);
    expect(screenToVoxel(layout, cam, 800, 600, tl.x, tl.y)).toEqual({ i: 0, j: 0 });
    expect(screenToVoxel(layout, cam, 800, 600, br.x, br.y)).toEqual({ i: 95, j: 63 });
    expect(screenToVoxel(layout, cam, 800, 600, 5, 5)).toBeNull();
    // Non-square pixels: 64 rows of 1.5 mm are as tall on screen as 96 columns of 1 mm are wide.
    expect(br.y - tl.y).toBeCloseTo(((br.x - tl.x) * (63 * 1.5)) / 95, 6);
  });

  it('zooms about the pointer and pans with it', () => {
    const before = cameraFor(layout, 800, 600);
    const p = screenToWorld(before, 800, 600, 200, 150);
    const t = zoomAt(layout, FIT, 800, 600, 200, 150, 2);
    expect(t.zoom).toBe(2);
    const after = cameraFor(layout, 800, 600, t);
    const q = screenToWorld(after, 800, 600, 200, 150);
    expect(q[0]).toBeCloseTo(p[0], 6);
    expect(q[1]).toBeCloseTo(p[1], 6);
    const panned = panBy(layout, t, 800, 600, 30, -10);
    const r = screenToWorld(cameraFor(layout, 800, 600, panned), 800, 600, 230, 140);
    expect(r[0]).toBeCloseTo(p[0], 6);
    expect(r[1]).toBeCloseTo(p[1], 6);
    expect(zoomAt(layout, FIT, 800, 600, 0, 0, 1000).zoom).toBe(40);
  });
});

describe('window/level', () => {
  it('has the three presets with keys 1/2/3', () => {
    expect(presets.map((p) => [p.key, p.width, p.level])).toEqual([
      ['1', 350, 50],
      ['2', 1500, -600],
      ['3', 1800, 400],
    ]);
    expect(presetOf({ width: 1500, level: -600 })?.id).toBe('lung');
    expect(presetOf({ width: 1501, level: -600 })).toBeNull();
    expect(windowText({ width: 350, level: 50 })).toBe('W 350 L 50');
  });

  it('keeps the window off the padding value however far it is dragged', () => {
    const w = dragWindow({ width: 1500, level: -600 }, 10_000, -10_000);
    expect(w).toEqual({ width: 8000, level: -3000 });
    expect(w.level - w.width / 2).toBeGreaterThan(-32768);
    expect(clampWindow({ width: -5, level: 0.4 })).toEqual({ width: 1, level: 0 });
  });

  it('drags right to widen and down to raise the level', () => {
    const w = dragWindow({ width: 350, level: 50 }, 10, 10);
    expect(w.width).toBeGreaterThan(350);
    expect(w.level).toBeGreaterThan(50);
    const v = dragWindow({ width: 350, level: 50 }, -10, -10);
    expect(v.width).toBeLessThan(350);
    expect(v.level).toBeLessThan(50);
  });
});

describe('viewer shortcuts', () => {
  it('maps the documented keys', () => {
    expect(actionFor('ArrowUp')).toEqual({ kind: 'step', delta: -1 });
    expect(actionFor('ArrowDown')).toEqual({ kind: 'step', delta: 1 });
    expect(actionFor('PageUp')).toEqual({ kind: 'step', delta: -10 });
    expect(actionFor('PageDown')).toEqual({ kind: 'step', delta: 10 });
    expect(actionFor('Home')).toEqual({ kind: 'first' });
    expect(actionFor('End')).toEqual({ kind: 'last' });
    expect(actionFor('2')).toEqual({ kind: 'preset', key: '2' });
    expect(actionFor('?')).toEqual({ kind: 'help' });
    expect(actionFor('t')).toEqual({ kind: 'top' });
    expect(actionFor('T')).toEqual({ kind: 'top' });
    expect(actionFor('x')).toBeNull();
    expect(shortcutHelp.some((r) => r.what.startsWith('Bone window (W 1800 L 400)'))).toBe(true);
  });
});
