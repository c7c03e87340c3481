import { describe, expect, it } from 'vitest';
import type { IndexProgress, SeriesRow } from '../../src/shared/types';
import { formProblems, noFilters, paperCohort, toCohortFilter } from '../../src/renderer/src/library/cohort';
import { describeProgress, isRunning } from '../../src/renderer/src/library/progress';
import { columns } from '../../src/renderer/src/library/series-columns';
import { SERIES_SORT_KEYS } from '../../src/shared/series-page';
import { compact, count, duration, fixed, matrix, millis, rate } from '../../src/renderer/src/lib/format';
import { folderPathProblem, isAbsolutePath } from '../../src/renderer/src/lib/paths';
import { parseHash, routeHash } from '../../src/renderer/src/lib/routes';
import { describeError } from '../../src/renderer/src/lib/errors';
import { ApiError } from '../../src/shared/envelope';

describe('cohort filter form', () => {
  it('starts as the paper cohort: axial CT <= 3 mm', () => {
    expect(toCohortFilter(paperCohort())).toEqual({ modality: 'CT', orientation: 'axial', maxThickness: 3 });
    expect(toCohortFilter(noFilters())).toEqual({});
  });

  it('sends only ticked, valid fields', () => {
    const f = { ...noFilters(), minSlicesOn: true, minSlices: 64, contrast: 'no' as const, uniformOnly: true, text: '  LIDC ' };
    expect(toCohortFilter(f)).toEqual({ minSlices: 64, contrast: 'no', uniformOnly: true, text: 'LIDC' });
    const bad = { ...paperCohort(), maxThickness: -1, minSlicesOn: true, minSlices: 2.5 };
    expect(Object.keys(formProblems(bad)).sort()).toEqual(['maxThickness', 'minSlices']);
    expect(toCohortFilter(bad)).toEqual({ modality: 'CT', orientation: 'axial' });
    expect(toCohortFilter({ ...paperCohort(), maxThickness: null })).toEqual({ modality: 'CT', orientation: 'axial' });
  });
});

const row = (over: Partial<SeriesRow>): SeriesRow => ({
  id: 1,
  seriesInstanceUid: '1.2',
  studyInstanceUid: '1.3',
  patientId: 'P',
  modality: 'CT',
  seriesNumber: 1,
  description: '',
  bodyPart: '',
  manufacturer: '',
  model: '',
  studyDate: '',
  rows: 512,
  columns: 512,
  slices: 10,
  instances: 10,
  sliceThickness: 1,
  spacing: 1,
  pixelSpacing: [0.7, 0.7],
  orientation: 'axial',
  uniformSpacing: true,
  gantryTilt: 0,
  gaps: 0,
  multiFrame: false,
  contrast: false,
  kernel: '',
  derivedUids: false,
  ...over,
});

describe('series table', () => {
  it('has a column for every sort key the series page sorts by in SQL, and no other', () => {
    // The sort itself is SQL's (library.seriesPage): test/library/db/series-page.test.ts.
    expect(columns.map((c) => c.key).sort()).toEqual([...SERIES_SORT_KEYS].sort());
  });

  it('shows every column the issue asks for', () => {
    expect(columns.map((c) => c.label)).toEqual([
      'Patient', 'Modality', 'Orientation', 'Slices', 'Matrix', 'Thickness', 'Slice spacing', 'Pixel spacing', 'Uniform', 'Tilt', 'Study date', 'Description',
    ]);
    const r = row({ columns: 512, rows: 400, uniformSpacing: false, gaps: 2, gantryTilt: 12.5, sliceThickness: 1.25, pixelSpacing: [0.703125, 0.703125], studyDate: '20240131' });
    const text = Object.fromEntries(columns.map((c) => [c.key, c.text(r)]));
    expect(text.matrix).toBe('512 x 400');
    expect(text.uniformSpacing).toBe('no (2 gaps)');
    expect(columns.find((c) => c.key === 'uniformSpacing')!.text(row({ uniformSpacing: false, gaps: 1 }))).toBe('no (1 gap)');
    expect(text.pixelSpacing).toBe('0.703');
    expect(columns.find((c) => c.key === 'pixelSpacing')!.text(row({ pixelSpacing: [0.5, 0.75] }))).toBe('0.5 x 0.75');
    expect(columns.find((c) => c.key === 'pixelSpacing')!.text(row({ pixelSpacing: null }))).toBe('—');
    expect(text.studyDate).toBe('2024-01-31');
    expect(columns.find((c) => c.key === 'studyDate')!.text(row({ studyDate: '' }))).toBe('—');
    expect(text.gantryTilt).toBe('12.5');
    expect(text.sliceThickness).toBe('1.25');
  });
});

describe('indexing progress', () => {
  const p = (over: Partial<IndexProgress>): IndexProgress => ({
    jobId: 'j',
    phase: 'parsing',
    folders: ['/d'],
    filesFound: 20000,
    filesDone: 5000,
    filesPerSecond: 812.4,
    etaSeconds: 18,
    skipped: 0,
    ...over,
  });

  it('shows fraction, rate and ETA while parsing', () => {
    const v = describeProgress(p({}));
    expect(v).toMatchObject({ running: true, fraction: 0.25, label: 'Parsing headers: 5,000 / 20,000 files', speed: '812 files/s', eta: 'ETA 18 s', tone: 'active' });
  });

  it('is indeterminate while scanning', () => {
    const v = describeProgress(p({ phase: 'scanning', filesDone: 0, filesPerSecond: 0, etaSeconds: null, filesFound: 120 }));
    expect(v.fraction).toBeNull();
    expect(v.label).toBe('Scanning folders: 120 files found');
    expect(v.eta).toBe('');
  });

  it('summarises the outcome once finished', () => {
    const summary = {
      files: 21,
      instances: 17,
      series: 1,
      studies: 1,
      patients: 1,
      duplicates: 0,
      skipped: [{ path: '/d/x', reason: 'not DICOM' }],
      parsed: 21,
      removed: 0,
      warnings: [],
      cancelled: false,
      seconds: 0.42,
    };
    const v = describeProgress(p({ phase: 'done', filesDone: 21, filesFound: 21, summary }));
    expect(isRunning(p({ phase: 'done' }))).toBe(false);
    expect(v.fraction).toBe(1);
    expect(v.outcome).toBe('Done: 21 files (21 parsed), 17 instances, 1 series in 420 ms; 1 skipped');
    expect(v.tone).toBe('ok');
    expect(describeProgress(p({ phase: 'error', message: 'disk full' })).outcome).toBe('Failed: 5,000 / 20,000 files (disk full)');
  });
});

describe('formatting', () => {
  it('formats numbers, durations and rates', () => {
    expect(fixed(null)).toBe('—');
    expect(fixed(2.5, 2)).toBe('2.50');
    expect(compact(0.703125, 3)).toBe('0.703');
    expect(compact(3)).toBe('3');
    expect(count(1234567)).toBe('1,234,567');
    expect(duration(5)).toBe('5 s');
    expect(duration(185)).toBe('3 min 05 s');
    expect(duration(7620)).toBe('2 h 07 min');
    expect(duration(null)).toBe('—');
    expect(millis(85.2)).toBe('85 ms');
    expect(millis(1420)).toBe('1.42 s');
    expect(rate(4.25)).toBe('4.3');
    expect(rate(0)).toBe('—');
    expect(matrix(512, null)).toBe('512 x ?');
  });
});

describe('folder paths', () => {
  it('accepts absolute POSIX, Windows and UNC paths only', () => {
    expect(isAbsolutePath('/data/ct')).toBe(true);
    expect(isAbsolutePath('C:\\ct')).toBe(true);
    expect(isAbsolutePath('D:/ct')).toBe(true);
    expect(isAbsolutePath('\\\\server\\share\\ct')).toBe(true);
    expect(isAbsolutePath('data/ct')).toBe(false);
    expect(isAbsolutePath('~/ct')).toBe(false);
    expect(folderPathProblem('  ')).toMatch(/absolute path/);
    expect(folderPathProblem('data/ct')).toBe('"data/ct" is not an absolute path: start it with / (or a drive letter on Windows).');
    expect(folderPathProblem(' /data/ct ')).toBeNull();
  });
});

describe('routes', () => {
  it('parses and formats page fragments', () => {
    expect(parseHash('')).toEqual({ page: 'library' });
    expect(parseHash('#token=abc')).toEqual({ page: 'library' });
    expect(parseHash('#/viewer/12')).toEqual({ page: 'viewer', seriesId: 12 });
    expect(parseHash('#/viewer/7&token=abc')).toEqual({ page: 'viewer', seriesId: 7 });
    expect(parseHash('#/viewer/x')).toEqual({ page: 'viewer' });
    expect(parseHash('#/nowhere')).toEqual({ page: 'library' });
    expect(routeHash({ page: 'viewer', seriesId: 3 })).toBe('#/viewer/3');
    expect(routeHash({ page: 'library' })).toBe('#/library');
  });
});

describe('errors', () => {
  it('keeps the envelope code and message', () => {
    expect(describeError(new ApiError('invalid-argument', 'folder not found: /x'))).toEqual({ code: 'invalid-argument', message: 'folder not found: /x' });
    expect(describeError(new Error('connection to the server closed'))).toEqual({ code: 'connection', message: 'connection to the server closed' });
    expect(describeError('boom')).toEqual({ code: 'error', message: 'boom' });
  });
});
