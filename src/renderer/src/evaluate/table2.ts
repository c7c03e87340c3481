/**
 * A Table II evaluation (runs.evaluate, also kept in the run's summary as `eval`) as rows of the
 * paper's table: task | MSE | masked MSE | SSIM | CE | AUROC, each mean ± sd across held-out
 * volumes, in our definitions and in the paper's, and the paper's published rows
 * (src/shared/paper-table2.ts). Pure; unit-tested.
 */
import { taskTableName } from '../../../shared/pretext-tasks';
import { PAPER_TABLE2 as PAPER_ROWS, paperTable2Row, TABLE2_DEFINITIONS, formatPaperStat, type PaperTable2Row, type Table2Column } from '../../../shared/paper-table2';
import type { SslEvaluation, Stat } from '../../../shared/results';

export interface Table2Row {
  task: string;
  mse: string;
  maskedMse: string;
  ssim: string;
  ce: string;
  auroc: string;
}

/** "0.0233 ± 0.0033"; '' when absent or undefined (an sd over one volume counts as 0). */
export function meanSd(s: Stat | undefined, digits = 4): string {
  if (!s || !Number.isFinite(s.mean)) return '';
  return `${s.mean.toFixed(digits)} ± ${(Number.isFinite(s.sd) ? s.sd : 0).toFixed(digits)}`;
}

/** The row's task as the paper names it ('masked 20% (area)', 'next slice', 'denoising'). */
export function taskName(r: Pick<SslEvaluation, 'task' | 'maskPercent' | 'maskDefinition'>): string {
  return taskTableName(r, { paper: true });
}

/**
 * The row of an evaluation in our definitions ('ours') or the paper's ('paper': masked MSE summed
 * over a batch of 16, cross-entropy of the softmax outputs through softmax again; the others
 * alike; src/shared/paper-table2.ts). A column the evaluation did not compute (an evaluation made
 * before the paper's definitions were added) is ''.
 */
export function table2Row(r: SslEvaluation, definitions: 'ours' | 'paper' = 'ours'): Table2Row {
  const pv = r.perVolume;
  const key = (c: Table2Column) => {
    const d = TABLE2_DEFINITIONS.find((x) => x.column === c)!;
    return definitions === 'ours' ? d.ours : d.paper;
  };
  const auroc = pv.auroc;
  return {
    task: taskName(r),
    mse: meanSd(pv[key('mse')]),
    maskedMse: meanSd(pv[key('maskedMse')]),
    ssim: meanSd(pv[key('ssim')]),
    ce: meanSd(pv[key('crossEntropy')]),
    // One AUROC over all held-out images (the sd across volumes is not defined for it).
    auroc: auroc && Number.isFinite(auroc.mean) ? auroc.mean.toFixed(4) : '',
  };
}


/** A row of the paper's published Table II as the page shows it. */
export function paperTable2Cells(p: PaperTable2Row): Table2Row {
  const v = p.values;
  return { task: p.name, mse: formatPaperStat(v.mse), maskedMse: formatPaperStat(v.maskedMse), ssim: formatPaperStat(v.ssim), ce: formatPaperStat(v.crossEntropy), auroc: formatPaperStat(v.auroc) };
}

/** The paper's Table II (128 held-out volumes), for reference next to this machine's numbers. */
export const PAPER_TABLE2: readonly Table2Row[] = PAPER_ROWS.map(paperTable2Cells);

/** The paper's published row for an evaluation's task (masked: same percent), or null. */
export function paperRowFor(r: Pick<SslEvaluation, 'task' | 'maskPercent'>): Table2Row | null {
  const p = paperTable2Row(r);
  return p ? paperTable2Cells(p) : null;
}

/** Each column's definition, ours and the paper's, for the table's legend and header titles. */
export const TABLE2_LEGEND = TABLE2_DEFINITIONS.map((d) => ({
  column: d.column,
  label: d.label,
  text: d.ours === d.paper ? `${d.oursText} (ours and the paper's)` : `ours: ${d.oursText}; paper's: ${d.paperText}`,
}));
