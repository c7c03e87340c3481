/**
 * A CSV of patient attributes (a patient_id or study_uid column, and sex, age, ethnic_group
 * columns under any of their usual names): the attributes the bias probe asks about, by patient or
 * study, streamed.
 */
import type { CsvImportReport } from '../../../shared/results';
import type { Database } from '../../db/sqlite';
import { batched, checkSize, MAX_LISTED, MiB, own, readHead, streamCsv, withProvisionalSource } from '../label-files';
import type { LabelFormat } from './format';
import { describeRows } from './rsna-csv';

export const attributesCsv: LabelFormat<CsvImportReport> = {
  kind: 'attributes-csv',
  title: 'patient attributes CSV',
  noun: 'patient attributes CSV',
  reads: 'a CSV of patient attributes with a patient_id or study_uid column and sex/age/ethnic_group columns',
  extensions: ['.csv'],
  maxBytes: 1024 * MiB,
  sniff: (h) =>
    h.csvHeader !== null &&
    /(^|,)\s*"?(patient_?id|patientid|study_?instance_?uid|studyinstanceuid|study_?uid)"?\s*(,|$)/.test(h.csvHeader) &&
    /(sex|age|ethnic|race)/.test(h.csvHeader),
  import: importAttributesCsv,
  describe: (r) => describeRows(r, { matched: 'patients or studies', what: 'patient attributes' }),
};

/** Index of the first column whose name, lower case without non-letters, is one of `names`; -1 if none. */
const columnOf = (fields: string[], names: string[]) => fields.findIndex((k) => names.includes(k.toLowerCase().replace(/[^a-z]/g, '')));

export async function importAttributesCsv(db: Database, path: string): Promise<CsvImportReport> {
  checkSize(attributesCsv, readHead(path).size, path);
  return withProvisionalSource(db, 'attributes-csv', path, async (sourceId, hash) => {
    const unmatched: CsvImportReport['unmatched'] = [];
    const ins = db.prepare('INSERT OR REPLACE INTO patient_attributes (source_ref, key, sex, age_years, ethnic_group) VALUES (?, ?, ?, ?, ?)');
    const byPatient = db.prepare('SELECT 1 FROM patients WHERE patient_id = ?');
    const byStudy = db.prepare('SELECT 1 FROM studies WHERE study_uid = ?');
    let col = { key: -1, sex: -1, age: -1, ethnic: -1 };
    let rows = 0;
    let matched = 0;
    const write = batched(db, (records) => {
      for (const r of records) {
        const row = ++rows;
        const at = (i: number) => (i >= 0 ? (r[i] ?? '').trim() : '');
        const key = at(col.key);
        if (!key) {
          if (unmatched.length < MAX_LISTED) unmatched.push({ row, key: '', reason: 'no patient_id or study_uid value' });
          continue;
        }
        const sexRaw = at(col.sex).toUpperCase();
        const sex = sexRaw.startsWith('M') ? 'M' : sexRaw.startsWith('F') ? 'F' : sexRaw ? 'O' : '';
        const ageRaw = at(col.age);
        const age = ageRaw === '' ? null : Number.parseFloat(ageRaw);
        ins.run(sourceId, key, sex, age !== null && Number.isFinite(age) ? age : null, at(col.ethnic));
        if (byPatient.get(key) || byStudy.get(key)) matched++;
        else if (unmatched.length < MAX_LISTED) unmatched.push({ row, key: own(key), reason: 'no indexed patient or study with this key' });
      }
    });
    await streamCsv(
      path,
      hash,
      (h) => {
        col = {
          key: columnOf(h, ['patientid', 'studyinstanceuid', 'studyuid']),
          sex: columnOf(h, ['sex', 'patientsex', 'gender']),
          age: columnOf(h, ['age', 'ageyears', 'patientage']),
          ethnic: columnOf(h, ['ethnicgroup', 'ethnicity', 'race']),
        };
      },
      write,
    );
    return {
      kind: 'attributes-csv',
      file: path,
      sourceId,
      rows,
      matchedRows: matched,
      unmatchedRows: rows - matched,
      unmatched,
      warnings: [],
    } satisfies CsvImportReport;
  });
}
