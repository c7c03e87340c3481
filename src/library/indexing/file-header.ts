/**
 * Reading one file's DICOM header for the index: the first 8 KiB, then 64 KiB, then up to 1 MiB
 * (HEADER_LIMIT). The header ends where the pixel data starts; a file of at most 1 MiB is read
 * whole (so objects without pixel data, such as SR or RT plans, are indexed), a larger file
 * whose pixel data does not start within its first 1 MiB is skipped with a reason. Nothing but
 * regular files is opened (checked with stat before the open, and with fstat on the
 * descriptor). Deflated datasets are inflated only as far as the header needs (1 MiB at most).
 * Never throws: unreadable files become a skip reason. Used by the indexer directly and by its
 * worker thread.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { expectedPixelBytes, type InstanceHeader, readHeader, SOP_CLASS } from '../../core/dicom/header';
import { DEFLATED_TS, InflateLimitError, NeedMoreBytesError, NotDicomError, parseDicom, PIXEL_DATA } from '../../core/dicom/parse';
import { unreadableReason } from './file-kind';

export type ReadResult = { header: InstanceHeader } | { skip: string };

/** The most bytes read from one file to find the end of its header. */
export const HEADER_LIMIT = 1 << 20;

const TOO_LONG = (size: number) =>
  `header does not end within the first 1 MiB: no pixel data element there (the file has ${size} bytes; a longer header is not read)`;

/** Open flags: read only; O_NONBLOCK so that a file swapped for a FIFO after the stat cannot block the open. */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** Reads and parses one file's header; never throws. `size` is the walk's size (fstat's is used). */
export function readFileHeader(path: string, size: number, headChunk = 64 * 1024, buf?: Uint8Array): ReadResult {
  try {
    return readChecked(path, size, headChunk, buf);
  } catch (err) {
    return { skip: `could not read the header: ${(err as Error)?.message ?? String(err)}` };
  }
}

function readChecked(path: string, _size: number, headChunk: number, buf?: Uint8Array): ReadResult {
  try {
    const why = unreadableReason(statSync(path));
    if (why) return { skip: why };
  } catch (err) {
    return { skip: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    return { skip: `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  try {
    const st = fstatSync(fd);
    const why = unreadableReason(st); // the path may have been swapped since the stat
    if (why) return { skip: why };
    const size = st.size;
    const readBytes = (n: number, target?: Uint8Array) => {
      const out = target && target.length >= n ? target.subarray(0, n) : new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const k = readSync(fd, out, got, n - got, got);
        if (k <= 0) break;
        got += k;
      }
      return out.subarray(0, got);
    };
    // Most headers end within a few KiB: read 8 KiB, then the head chunk, then up to 1 MiB.
    const limit = Math.min(size, HEADER_LIMIT);
    const steps = [...new Set([8192, headChunk, limit].map((n) => Math.min(n, limit)))].sort((a, b) => a - b);
    let parsed: ReturnType<typeof parseDicom> | null = null;
    for (const n of steps) {
      const last = n === limit;
      const whole = n === size;
      const bytes = readBytes(n, whole ? undefined : buf);
      try {
        parsed = parseDicom(bytes, { headerOnly: true });
      } catch (err) {
        if (err instanceof NotDicomError) return { skip: err.message };
        if (err instanceof InflateLimitError) return { skip: err.message };
        if (!last) continue;
        if (whole) return { skip: describeParseError(err) };
        if (err instanceof NeedMoreBytesError) return { skip: TOO_LONG(size) };
        return { skip: `malformed DICOM within the first 1 MiB: ${err instanceof Error ? err.message : String(err)}` };
      }
      // A partial buffer can end exactly between elements: only the pixel data tag proves we saw the whole header.
      if (whole || parsed.dataSet.elements[PIXEL_DATA]) break;
      if (last) return { skip: TOO_LONG(size) };
    }
    if (!parsed) return { skip: 'unreadable DICOM header' };
    const header = readHeader(parsed);
    if (header.sopClassUid === SOP_CLASS.mediaStorageDirectory) {
      return { skip: 'DICOMDIR media directory: the files it references are indexed directly' };
    }
    if (header.hasPixelData && header.pixelDataOffset !== null && header.pixelDataLength !== null && header.pixelDataLength >= 0) {
      const end = header.pixelDataOffset + header.pixelDataLength;
      const deflated = header.transferSyntaxUid === DEFLATED_TS; // offsets are in the inflated stream
      if (!deflated && end > size) return { skip: `truncated: pixel data needs ${end} bytes, file has ${size}` };
      const expected = expectedPixelBytes(header);
      const native = !/^1\.2\.840\.10008\.1\.2\.(4|5|1\.99)/.test(header.transferSyntaxUid);
      if (native && expected !== null && header.pixelDataLength < expected) {
        return { skip: `truncated pixel data: ${header.pixelDataLength} bytes for ${header.rows}x${header.columns}x${header.numberOfFrames} at ${header.bitsAllocated} bits (${expected} bytes)` };
      }
    }
    if (!header.sopInstanceUid && !header.sopClassUid && !header.modality && !header.hasPixelData) {
      return { skip: 'DICOM dataset without SOP Class, SOP Instance, Modality or pixel data: nothing to index' };
    }
    return { header };
  } finally {
    closeSync(fd);
  }
}

function describeParseError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof NeedMoreBytesError) return `truncated or malformed DICOM: ${msg}`;
  return `malformed DICOM: ${msg}`;
}
