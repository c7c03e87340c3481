/** Path checks of the import-labels form. Pure; unit-tested. */
import { isAbsolutePath } from '../lib/paths';

/** Why a typed label-file path cannot be sent, or null. */
export function labelPathProblem(raw: string): string | null {
  const p = raw.trim();
  if (p === '') return 'Type the absolute path of a label file (LIDC XML, RSNA train.csv, DICOM SEG, attributes CSV).';
  if (p.length > 4096) return 'The path is longer than 4096 characters.';
  if (!isAbsolutePath(p)) return `"${p}" is not an absolute path: start it with / (or a drive letter on Windows).`;
  return null;
}
