/**
 * Identity of an object in the index. Real UIDs when present; when a file leaves them empty
 * (as some anonymisers do), a stable identity derived from what the header does say, so the same
 * file always lands in the same patient/study/series/instance and re-indexing is idempotent.
 */
import { derivedUid, type InstanceHeader } from './header';

export interface Identity {
  patientKey: string;
  patientId: string;
  studyUid: string;
  seriesUid: string;
  sopUid: string;
  /** Which levels were derived ('patient', 'study', 'series', 'instance'). */
  derived: string[];
}

const r = (v: number | null | undefined, d = 3) => (v === null || v === undefined ? '' : v.toFixed(d));

/**
 * @param dir the folder holding the file: part of derived series identity, so that two series with
 *   identical but UID-less headers in different folders stay apart.
 */
export function resolveIdentity(h: InstanceHeader, dir: string): Identity {
  const derived: string[] = [];
  let patientKey = h.patientId;
  if (!patientKey) {
    derived.push('patient');
    const basis = [h.patientNameHash, h.patientBirthDate, h.patientSex].join('|');
    patientKey = basis.replace(/\|/g, '')
      ? 'derived:' + derivedUid('patient|' + basis)
      : 'derived:' + derivedUid('patient-of-study|' + (h.studyInstanceUid || [h.studyDate, h.studyTime, h.studyId, dir].join('|')));
  }
  let studyUid = h.studyInstanceUid;
  if (!studyUid) {
    derived.push('study');
    studyUid = derivedUid(['study', patientKey, h.studyDate, h.studyTime, h.studyId, h.studyDescription, dir].join('|'));
  }
  let seriesUid = h.seriesInstanceUid;
  if (!seriesUid) {
    derived.push('series');
    seriesUid = derivedUid(
      [
        'series',
        studyUid,
        h.seriesNumber ?? '',
        h.seriesDescription,
        h.modality,
        h.seriesDate,
        h.seriesTime,
        h.frameOfReferenceUid,
        (h.imageOrientation ?? []).map((v) => r(v, 4)).join(','),
        h.rows ?? '',
        h.columns ?? '',
        dir,
      ].join('|'),
    );
  }
  let sopUid = h.sopInstanceUid;
  if (!sopUid) {
    derived.push('instance');
    sopUid = derivedUid(
      [
        'instance',
        seriesUid,
        h.instanceNumber ?? '',
        (h.imagePosition ?? []).map((v) => r(v)).join(','),
        h.acquisitionTime,
        h.acquisitionNumber ?? '',
        h.numberOfFrames,
      ].join('|'),
    );
  }
  return { patientKey, patientId: h.patientId, studyUid, seriesUid, sopUid, derived };
}
