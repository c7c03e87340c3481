/**
 * RSNA STR Pulmonary Embolism Detection (2020) train.csv rows: one row per CT image with the
 * image-level label pe_present_on_image and the exam-level labels repeated on every row of the
 * exam, in the challenge's column order. Exam-level labels follow the challenge's rules: a negative
 * exam has negative_exam_for_pe = 1 and every PE column 0; a positive exam has exactly one of the
 * two RV/LV ratio columns set and at least one location column.
 */

export const RSNA_COLUMNS = [
  'StudyInstanceUID',
  'SeriesInstanceUID',
  'SOPInstanceUID',
  'pe_present_on_image',
  'negative_exam_for_pe',
  'qa_motion',
  'qa_contrast',
  'flow_artifact',
  'rv_lv_ratio_gte_1',
  'rv_lv_ratio_lt_1',
  'leftsided_pe',
  'chronic_pe',
  'true_filling_defect_not_pe',
  'rightsided_pe',
  'acute_and_chronic_pe',
  'central_pe',
  'indeterminate',
] as const;

export const RSNA_HEADER = RSNA_COLUMNS.join(',');

export interface RsnaExam {
  negative_exam_for_pe: number;
  qa_motion: number;
  qa_contrast: number;
  flow_artifact: number;
  rv_lv_ratio_gte_1: number;
  rv_lv_ratio_lt_1: number;
  leftsided_pe: number;
  chronic_pe: number;
  true_filling_defect_not_pe: number;
  rightsided_pe: number;
  acute_and_chronic_pe: number;
  central_pe: number;
  indeterminate: number;
}

/** Exam-level labels from the emboli visible in the series. */
export function rsnaExam(visible: { side: 'left' | 'right' | 'central'; site: string }[], f: { rvStrain: boolean; chronic: boolean; acuteAndChronic: boolean }): RsnaExam {
  const pos = visible.length > 0;
  const b = (v: boolean) => (pos && v ? 1 : 0);
  return {
    negative_exam_for_pe: pos ? 0 : 1,
    qa_motion: 0,
    qa_contrast: 0,
    flow_artifact: 0,
    rv_lv_ratio_gte_1: b(f.rvStrain),
    rv_lv_ratio_lt_1: b(!f.rvStrain),
    leftsided_pe: b(visible.some((e) => e.side === 'left' || e.site === 'left-main')),
    chronic_pe: b(f.chronic),
    true_filling_defect_not_pe: 0,
    rightsided_pe: b(visible.some((e) => e.side === 'right' || e.site === 'right-main')),
    acute_and_chronic_pe: b(f.acuteAndChronic),
    central_pe: b(visible.some((e) => e.side === 'central')),
    indeterminate: 0,
  };
}

export function rsnaRow(study: string, series: string, sop: string, pe: boolean, exam: RsnaExam): string {
  return [
    study,
    series,
    sop,
    pe ? 1 : 0,
    exam.negative_exam_for_pe,
    exam.qa_motion,
    exam.qa_contrast,
    exam.flow_artifact,
    exam.rv_lv_ratio_gte_1,
    exam.rv_lv_ratio_lt_1,
    exam.leftsided_pe,
    exam.chronic_pe,
    exam.true_filling_defect_not_pe,
    exam.rightsided_pe,
    exam.acute_and_chronic_pe,
    exam.central_pe,
    exam.indeterminate,
  ].join(',');
}
