/**
 * Reading one file's DICOM header for the index: the first 8 KiB, then 64 KiB, then the whole
 * file only when needed; never throws (unreadable files become a skip reason). Used by the indexer
 * directly and by its worker thread.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { expectedPixelBytes, type InstanceHeader, isImage, readHeader, SOP_CLASS } from '../dicom/header';
import { DEFLATED_TS, NeedMoreBytesError, NotDicomError, parseDicom, PIXEL_DATA } from '../dicom/parse';

export type ReadResult = { header: InstanceHeader } | { skip: string };

/** Reads and parses one file's header; never throws. */
export function readFileHeader(path: string, size: number, headChunk = 64 * 1024, buf?: Uint8Array): ReadResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return { skip: `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  try {
    if (size === 0) return { skip: 'empty file' };
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
    // Most headers end within a few KiB: read 8 KiB, then the head chunk, then the whole file.
    let parsed: ReturnType<typeof parseDicom> | null = null;
    for (const want of [8192, headChunk, size]) {
      const n = Math.min(want, size);
      const whole = n === size;
      const bytes = readBytes(n, whole ? undefined : buf);
      try {
        parsed = parseDicom(bytes, { headerOnly: true });
      } catch (err) {
        if (err instanceof NotDicomError) return { skip: err.message };
        if (whole) return { skip: describeParseError(err) };
        continue;
      }
      // A partial buffer can end exactly between elements: only the pixel data tag proves we saw the whole header.
      if (whole || parsed.dataSet.elements[PIXEL_DATA]) break;
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

