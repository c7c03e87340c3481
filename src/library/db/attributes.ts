/**
 * Patient attributes of a series for the bias probe: from the DICOM headers (PatientSex,
 * PatientAge or birth and study dates, EthnicGroup), overridden by the most recent imported
 * attributes CSV keyed by PatientID or StudyInstanceUID.
 */
import { ageYears } from '../../core/dicom/header';
import { ageGroup, normaliseSex, type PatientAttributes } from '../../core/labels/attributes';
import type { Database } from './sqlite';

export function seriesAttributes(db: Database, seriesId: number): PatientAttributes {
  const r = db
    .prepare(
      `SELECT p.patient_id, p.sex, p.birth_date, p.ethnic_group, st.study_uid, st.study_date, st.patient_age
       FROM series se JOIN studies st ON st.id = se.study_ref JOIN patients p ON p.id = st.patient_ref WHERE se.id = ?`,
    )
    .get(seriesId) as
    | { patient_id: string; sex: string; birth_date: string; ethnic_group: string; study_uid: string; study_date: string; patient_age: string }
    | undefined;
  if (!r) throw new Error(`no series with id ${seriesId}`);
  const out: PatientAttributes = {
    sex: normaliseSex(r.sex),
    ageYears: ageYears(r.patient_age, r.birth_date, r.study_date),
    ageGroup: '',
    ethnicGroup: r.ethnic_group,
    provenance: { sex: r.sex ? 'header' : '', age: r.patient_age || r.birth_date ? 'header' : '', ethnicGroup: r.ethnic_group ? 'header' : '' },
  };
  const csv = db
    .prepare(
      `SELECT a.sex, a.age_years, a.ethnic_group, s.path FROM patient_attributes a JOIN label_sources s ON s.id = a.source_ref
       WHERE a.key IN (?, ?) ORDER BY s.id`,
    )
    .all(r.patient_id || '\u0000', r.study_uid) as { sex: string; age_years: number | null; ethnic_group: string; path: string }[];
  for (const c of csv) {
    if (c.sex) {
      out.sex = normaliseSex(c.sex);
      out.provenance.sex = 'csv:' + c.path;
    }
    if (c.age_years !== null) {
      out.ageYears = c.age_years;
      out.provenance.age = 'csv:' + c.path;
    }
    if (c.ethnic_group) {
      out.ethnicGroup = c.ethnic_group;
      out.provenance.ethnicGroup = 'csv:' + c.path;
    }
  }
  out.ageGroup = ageGroup(out.ageYears);
  return out;
}
