/**
 * DICOM dataset parsing over dicom-parser, pure (no fs). Handles Part 10 files, raw datasets
 * without the 128-byte preamble (old ACR-NEMA style exports), deflated transfer syntax, and
 * parsing that stops before the pixel data so that headers can be read from the first kilobytes.
 */
import dicomParser from 'dicom-parser';
import { Inflate } from 'fflate';

export type DataSet = import('dicom-parser').DataSet;
export type Element = import('dicom-parser').Element;

export const PIXEL_DATA = 'x7fe00010';
export const DEFLATED_TS = '1.2.840.10008.1.2.1.99';
export const BIG_ENDIAN_TS = '1.2.840.10008.1.2.2';
export const IMPLICIT_LE_TS = '1.2.840.10008.1.2';
export const EXPLICIT_LE_TS = '1.2.840.10008.1.2.1';

/** Thrown when bytes are not DICOM at all (as opposed to DICOM that is broken). */
export class NotDicomError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotDicomError';
  }
}

/** Thrown when the buffer ended before the parser was done (a partial read, or a truncated file). */
export class NeedMoreBytesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NeedMoreBytesError';
  }
}

export interface ParseOptions {
  /** Stop at the pixel data element (its header is read, its value is not). */
  headerOnly?: boolean;
  /**
   * Deflated transfer syntax: the most bytes the dataset may inflate to. A header read keeps the
   * first bytes up to the cap (default HEADER_INFLATE_LIMIT) and parses what they hold; a full
   * parse refuses a dataset that inflates beyond it (default FULL_INFLATE_LIMIT) with an
   * InflateLimitError.
   */
  maxInflatedBytes?: number;
}

/** Default inflate cap for a header read (the header of a deflated dataset must lie in it). */
export const HEADER_INFLATE_LIMIT = 1 << 20;
/** Default inflate cap for a full parse without a better estimate from the header. */
export const FULL_INFLATE_LIMIT = 512 * (1 << 20);

/** Thrown when a deflated dataset inflates beyond its cap (a decompression bomb, or a damaged file). */
export class InflateLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InflateLimitError';
  }
}

export interface ParsedDicom {
  dataSet: DataSet;
  transferSyntaxUid: string;
  /** False when the file had no "DICM" preamble and was read as a raw dataset. */
  part10: boolean;
  warnings: string[];
}

export interface CappedInflate {
  bytes: Uint8Array;
  /** The deflate stream ended (its final block was read). */
  complete: boolean;
  /** Output reached the cap: bytes holds the first `maxOut` bytes only. */
  capped: boolean;
}

/**
 * Raw DEFLATE decompression that stops after `maxOut` output bytes: the input is fed in chunks
 * small enough that one inflates to little more than the cap (deflate's ratio limit is 1032:1),
 * so memory stays near the cap whatever the ratio. `partialInput`: the input may be cut short (a file prefix);
 * a missing end is then not an error but `complete: false`.
 */
export function inflateRawCapped(input: Uint8Array, maxOut: number, partialInput = false): CappedInflate {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let complete = false;
  const inf = new Inflate((data, final) => {
    if (total < maxOut && data.length > 0) {
      const keep = data.subarray(0, Math.min(data.length, maxOut - total));
      chunks.push(keep);
      total += data.length; // counts past the cap, so that `capped` is exact
    } else total += data.length;
    if (final) complete = true;
  });
  // Deflate inflates at most 1032:1: chunks this small keep one step's output near the cap.
  const step = Math.max(1024, Math.min(64 * 1024, Math.floor(maxOut / 1032)));
  for (let at = 0; at < input.length && total <= maxOut; at += step) {
    const end = Math.min(input.length, at + step);
    const last = end === input.length && !partialInput;
    inf.push(input.subarray(at, end), last);
    if ((inf as unknown as { s: { f?: number; l?: unknown } }).s.f && !(inf as unknown as { s: { l?: unknown } }).s.l) {
      complete = true; // the final block is done; trailing bytes are ignored
      break;
    }
  }
  if (input.length === 0 && !partialInput) throw new Error('empty deflate stream');
  const capped = total > maxOut || (total === maxOut && !complete);
  const bytes = new Uint8Array(Math.min(total, maxOut));
  let o = 0;
  for (const c of chunks) {
    bytes.set(c, o);
    o += c.length;
  }
  return { bytes, complete, capped };
}

/** The inflater dicom-parser calls for the deflated transfer syntax: capped, see ParseOptions. */
function cappedInflater(headerOnly: boolean, maxOut: number, state: { capped: boolean }) {
  return (arr: Uint8Array, position: number): Uint8Array => {
    const r = inflateRawCapped(arr.subarray(position), maxOut, headerOnly);
    state.capped = r.capped;
    if (r.capped && !headerOnly) {
      throw new InflateLimitError(`the deflated dataset inflates to more than ${maxOut} bytes: refused (a decompression bomb or a damaged file)`);
    }
    const full = new Uint8Array(position + r.bytes.length);
    full.set(arr.subarray(0, position), 0);
    full.set(r.bytes, position);
    // dicom-parser parses the returned buffer from byte 0, i.e. through the preamble and the file
    // meta before it reaches the dataset (by luck, on most files). The preamble of this copy
    // becomes one element whose value spans up to the dataset, so parsing starts where it should.
    const skip = position - 12;
    if (skip >= 0) {
      full.set([0xfc, 0xff, 0xfc, 0xff, 0x4f, 0x42, 0, 0, skip & 0xff, (skip >> 8) & 0xff, (skip >> 16) & 0xff, skip >>> 24], 0);
    }
    return full;
  };
}

/** The element cappedInflater puts over the preamble: removed from the parsed dataset. */
const SKIP_ELEMENT = 'xfffcfffc';

function hasPreamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

const VR_CODES = new Set(
  'AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);

/**
 * Decides whether a buffer without a preamble is plausibly a raw little-endian dataset:
 * it must start with a tag of a low group in ascending order and a sane length.
 */
const FIRST_GROUPS = new Set([0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028]);

function rawDatasetKind(bytes: Uint8Array): 'explicit' | 'implicit' | 'explicit-big' | null {
  if (bytes.length < 8) return null;
  const vr = String.fromCharCode(bytes[4], bytes[5]);
  const groupBig = (bytes[0] << 8) | bytes[1];
  if (FIRST_GROUPS.has(groupBig) && groupBig !== 0x0002 && VR_CODES.has(vr)) return 'explicit-big';
  const group = bytes[0] | (bytes[1] << 8);
  if (!FIRST_GROUPS.has(group)) return null;
  if (VR_CODES.has(vr)) return 'explicit';
  const len = bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24);
  if (len >= 0 && len < 1 << 16) return 'implicit';
  return null;
}

/** dicom-parser throws strings, Errors, or {exception, dataSet} objects. */
function unwrapParserError(err: unknown): Error {
  if (typeof err === 'object' && err && 'exception' in err) return unwrapParserError((err as { exception: unknown }).exception);
  return err instanceof Error ? err : new Error(String(err));
}

/** Parses the dataset after a file meta that lacks TransferSyntaxUID, trying each syntax in turn. */
function retryWithSyntax(bytes: Uint8Array, untilTag: string | undefined, syntaxes: string[]): DataSet {
  const meta = dicomParser.readPart10Header(bytes) as DataSet & { position: number };
  let last: Error | null = null;
  for (const ts of syntaxes) {
    try {
      const stream = new dicomParser.ByteStream(dicomParser.littleEndianByteArrayParser, bytes, meta.position);
      const ds = newDataSet(stream.byteArrayParser, bytes);
      const opts = { untilTag: untilTag ?? '' };
      if (ts === IMPLICIT_LE_TS) dicomParser.parseDicomDataSetImplicit(ds, stream, bytes.length, opts);
      else dicomParser.parseDicomDataSetExplicit(ds, stream, bytes.length, opts);
      // A wrong guess parses into nonsense: require the core identity tags to be present.
      if (!ds.elements['x00080016'] && !ds.elements['x00080018'] && !ds.elements['x00080060']) throw new Error('no identity tags');
      Object.assign(ds.elements, meta.elements);
      ds.elements['x00020010'] = { tag: 'x00020010', length: ts.length, dataOffset: -1, Value: ts } as unknown as Element;
      (ds as unknown as { string: (t: string) => string | undefined }).string = wrapString(ds, ts);
      return ds;
    } catch (err) {
      last = unwrapParserError(err);
    }
  }
  throw classify(last);
}

/** DataSet.string reads bytes at dataOffset; our synthetic TransferSyntaxUID element has none. */
function wrapString(ds: DataSet, ts: string) {
  const orig = ds.string.bind(ds);
  return (tag: string, index?: number) => (tag === 'x00020010' ? ts : orig(tag, index));
}

type DataSetCtor = new (parser: unknown, bytes: Uint8Array, elements: object) => DataSet;
function newDataSet(parser: unknown, bytes: Uint8Array): DataSet {
  return new (dicomParser as unknown as { DataSet: DataSetCtor }).DataSet(parser, bytes, {});
}

function classify(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (/buffer overr|attempt to read past end|beyond the end|past the end|exceed|maxPosition|cannot be greater than/i.test(message)) {
    return new NeedMoreBytesError(message);
  }
  return err instanceof Error ? err : new Error(message);
}

/**
 * Parses a DICOM buffer. `bytes` may be only the start of a file when `headerOnly` is set;
 * a NeedMoreBytesError then asks the caller to supply more of the file.
 */
export function parseDicom(bytes: Uint8Array, options: ParseOptions = {}): ParsedDicom {
  const untilTag = options.headerOnly ? PIXEL_DATA : undefined;
  if (hasPreamble(bytes)) {
    let dataSet: DataSet;
    const warnings: string[] = [];
    const cap = options.maxInflatedBytes ?? (options.headerOnly ? HEADER_INFLATE_LIMIT : FULL_INFLATE_LIMIT);
    const inflate = { capped: false };
    const inflater = cappedInflater(!!options.headerOnly, cap, inflate);
    const headerBeyondCap = () =>
      new InflateLimitError(`the deflated header does not end within its first ${cap} inflated bytes: not inflated further (a decompression bomb or a damaged file)`);
    try {
      dataSet = dicomParser.parseDicom(bytes, { untilTag, inflater });
    } catch (err) {
      const cause = unwrapParserError(err);
      if (cause instanceof InflateLimitError) throw cause;
      if (inflate.capped) throw headerBeyondCap();
      if (!/missing required meta header attribute 0002,0010/.test(cause.message)) throw classify(cause);
      // File meta without TransferSyntaxUID: try implicit, then explicit little endian.
      dataSet = retryWithSyntax(bytes, untilTag, [IMPLICIT_LE_TS, EXPLICIT_LE_TS]);
      warnings.push('file meta lacks TransferSyntaxUID (0002,0010): read as ' + (dataSet.string('x00020010') ?? '?'));
    }
    if (dataSet.elements[SKIP_ELEMENT]?.dataOffset === 12) delete dataSet.elements[SKIP_ELEMENT];
    // A capped inflate that happens to end between elements parses, but the header is incomplete.
    if (inflate.capped && !dataSet.elements[PIXEL_DATA]) throw headerBeyondCap();
    const ts = dataSet.string('x00020010') ?? IMPLICIT_LE_TS;
    return { dataSet, transferSyntaxUid: ts.trim(), part10: true, warnings: [...warnings, ...(dataSet.warnings ?? [])] };
  }
  const kind = rawDatasetKind(bytes);
  if (!kind) throw new NotDicomError('not a DICOM file (no "DICM" prefix at byte 128 and no dataset at byte 0)');
  const parser = kind === 'explicit-big' ? dicomParser.bigEndianByteArrayParser : dicomParser.littleEndianByteArrayParser;
  const byteStream = new dicomParser.ByteStream(parser, bytes, 0);
  const dataSet = newDataSet(byteStream.byteArrayParser, bytes);
  try {
    if (kind !== 'implicit') dicomParser.parseDicomDataSetExplicit(dataSet, byteStream, bytes.length, { untilTag: untilTag ?? '' });
    else dicomParser.parseDicomDataSetImplicit(dataSet, byteStream, bytes.length, { untilTag: untilTag ?? '' });
  } catch (err) {
    throw classify(err);
  }
  const names = { explicit: 'explicit VR little endian', implicit: 'implicit VR little endian', 'explicit-big': 'explicit VR big endian' };
  return {
    dataSet,
    transferSyntaxUid: kind === 'explicit' ? EXPLICIT_LE_TS : kind === 'implicit' ? IMPLICIT_LE_TS : BIG_ENDIAN_TS,
    part10: false,
    warnings: ['no Part 10 preamble: read as a raw ' + names[kind] + ' dataset'],
  };
}

/** Trimmed string value, or '' when absent. */
export function str(ds: DataSet, tag: string, index?: number): string {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return '';
  try {
    return (ds.string(tag, index) ?? '').trim();
  } catch {
    return '';
  }
}

/** All backslash-separated values of a string element. */
export function strs(ds: DataSet, tag: string): string[] {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return [];
  try {
    const raw = ds.string(tag) ?? '';
    // dicom-parser's string(tag) returns only the first value; read the raw text instead.
    const text = readText(ds, el);
    return (text || raw).split('\\').map((s) => s.trim());
  } catch {
    return [];
  }
}

function readText(ds: DataSet, el: Element): string {
  let s = '';
  const bytes = ds.byteArray as Uint8Array;
  const end = Math.min(el.dataOffset + el.length, bytes.length);
  for (let i = el.dataOffset; i < end; i++) {
    const c = bytes[i];
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** Decimal-string values (DS/IS) as numbers; null when absent or not finite. */
export function nums(ds: DataSet, tag: string): number[] | null {
  const values = strs(ds, tag);
  if (values.length === 0) return null;
  const out = values.map(Number);
  return out.every(Number.isFinite) ? out : null;
}

export function num(ds: DataSet, tag: string): number | null {
  const v = nums(ds, tag);
  return v ? v[0] : null;
}

export function u16(ds: DataSet, tag: string): number | null {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return null;
  try {
    return ds.uint16(tag) ?? null;
  } catch {
    return null;
  }
}

/** First item dataset of a sequence element, if any. */
export function firstItem(ds: DataSet | undefined, tag: string): DataSet | undefined {
  const el = ds?.elements[tag];
  return el?.items?.[0]?.dataSet;
}
