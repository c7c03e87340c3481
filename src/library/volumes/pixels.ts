/**
 * Pixel data of one frame: from file bytes to stored values (any transfer syntax we have a codec
 * for), and from a file path to Hounsfield units with the padding mask.
 *
 * Native (uncompressed) syntaxes are read in place: implicit/explicit little endian, explicit big
 * endian (byte-swapped here), deflated (inflated by parse.ts, no further than the header, the pixel
 * bytes it declares and 1 MiB: a decompression bomb is refused), and encapsulated uncompressed.
 * Encapsulated syntaxes go to the codecs in ./codecs (maintained npm packages). A JPEG frame is
 * routed by its own SOF marker (lossless, 8-bit DCT, 12-bit DCT, JPEG-LS), not by the label of the
 * transfer syntax, so mislabelled files still decode.
 *
 * Every failure throws an Error whose message names the file, the transfer syntax and the problem.
 */
import { close, fstat, open, read, readFile as readFileCb, type Stats } from 'node:fs';
import type { InstanceHeader } from '../../core/dicom/header';
import { expectedPixelBytes, readHeader } from '../../core/dicom/header';
import { normalizeStored, type PixelArray, type RescaleParams, storedToHU } from '../../core/dicom/hu';
import {
  BIG_ENDIAN_TS,
  type DataSet,
  DEFLATED_TS,
  type Element,
  firstItem,
  FULL_INFLATE_LIMIT,
  inflateRawCapped,
  InflateLimitError,
  num,
  parseDicom,
  type ParsedDicom,
  str,
} from '../../core/dicom/parse';
import { decodeHTJ2K, decodeJ2K, decodeJpeg8, decodeJpegXL, decodeJpegDcmtk, decodeJpegLossless, decodeJpegLS, decodeRle } from './codecs';

/** Transfer syntax UIDs and their names, for messages and dispatch. */
export const TRANSFER_SYNTAXES: Record<string, { name: string; lossy: boolean }> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian', lossy: false },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian', lossy: false },
  '1.2.840.10008.1.2.1.98': { name: 'Encapsulated Uncompressed Explicit VR Little Endian', lossy: false },
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', lossy: false },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian', lossy: false },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', lossy: false },
  '1.2.840.10008.1.2.8.1': { name: 'Deflated Image Frame Compression', lossy: false },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1)', lossy: true },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4)', lossy: true },
  '1.2.840.10008.1.2.4.53': { name: 'JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8)', lossy: true },
  '1.2.840.10008.1.2.4.55': { name: 'JPEG Full Progression, Non-Hierarchical (Process 10 & 12)', lossy: true },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless, Non-Hierarchical (Process 14)', lossy: false },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)', lossy: false },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', lossy: false },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Lossy (Near-Lossless)', lossy: true },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Lossless Only', lossy: false },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000', lossy: true },
  '1.2.840.10008.1.2.4.201': { name: 'HTJ2K Lossless Only', lossy: false },
  '1.2.840.10008.1.2.4.202': { name: 'HTJ2K with RPCL Options Lossless Only', lossy: false },
  '1.2.840.10008.1.2.4.203': { name: 'HTJ2K', lossy: true },
  '1.2.840.10008.1.2.4.110': { name: 'JPEG XL Lossless', lossy: false },
  '1.2.840.10008.1.2.4.111': { name: 'JPEG XL JPEG Recompression', lossy: true },
  '1.2.840.10008.1.2.4.112': { name: 'JPEG XL', lossy: true },
};

const JPEG_TS = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.53', '1.2.840.10008.1.2.4.55', '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70']);
const JPEGLS_TS = new Set(['1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81']);
const J2K_TS = new Set(['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91']);
const HTJ2K_TS = new Set(['1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203']);
const JPEGXL_TS = new Set(['1.2.840.10008.1.2.4.110', '1.2.840.10008.1.2.4.111', '1.2.840.10008.1.2.4.112']);
const RLE_TS = '1.2.840.10008.1.2.5';
const ENCAPSULATED_UNCOMPRESSED_TS = '1.2.840.10008.1.2.1.98';
const DEFLATED_FRAME_TS = '1.2.840.10008.1.2.8.1';

/** Whether we can decode pixel data in this transfer syntax. */
export function isSupportedTransferSyntax(ts: string): boolean {
  return ts in TRANSFER_SYNTAXES;
}

/** One decoded frame. */
export interface DecodedFrame {
  /**
   * Stored values: the BitsStored low bits of each sample, sign-extended when `signed`, samples of
   * a pixel interleaved (planar configuration 0). Int8/Uint8 for 8 bits, Int16/Uint16 for 16,
   * Int32/Uint32 for 32, Float32/Float64 for float pixel data, Uint8 (0/1) for 1-bit.
   */
  pixels: PixelArray;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** Photometric interpretation of `pixels` (RGB after a YBR to RGB conversion). */
  photometric: string;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  floatingPoint: boolean;
  frameIndex: number;
  numberOfFrames: number;
  transferSyntaxUid: string;
  /** Lossy transfer syntax, or LossyImageCompression (0028,2110) = 01. */
  lossy: boolean;
  /** Rescale of this frame (per-frame functional groups win over shared groups and top level). */
  rescaleSlope: number;
  rescaleIntercept: number;
  header: InstanceHeader;
  warnings: string[];
}

export interface DecodeOptions {
  /** Name of the file (or other source) for error messages. */
  source?: string;
  /**
   * The caller hands the bytes over (a buffer just read, seen by nobody else): an uncompressed
   * little-endian frame whose samples are aligned is then a view on them, not a copy.
   */
  ownsBytes?: boolean;
}

/** The error every pixel failure is reported with; the message names file, syntax and problem. */
export class PixelDataError extends Error {
  constructor(
    readonly source: string,
    readonly transferSyntaxUid: string,
    readonly problem: string,
  ) {
    const ts = transferSyntaxUid ? `${transferSyntaxUid} (${TRANSFER_SYNTAXES[transferSyntaxUid]?.name ?? 'unknown transfer syntax'})` : 'unknown transfer syntax';
    super(`${source}: transfer syntax ${ts}: ${problem}`);
    this.name = 'PixelDataError';
  }
}

const FLOAT_PIXEL_DATA = 'x7fe00008';
const DOUBLE_PIXEL_DATA = 'x7fe00009';
const PIXEL_DATA = 'x7fe00010';

/** A parsed file from which frames can be decoded one after another without parsing it again. */
export interface PixelSource {
  source: string;
  header: InstanceHeader;
  transferSyntaxUid: string;
  numberOfFrames: number;
  decode(frameIndex: number): Promise<DecodedFrame>;
}

/** Trailing elements allowed after the pixel data when a deflated dataset is inflated. */
const INFLATE_SLACK = 1 << 20;

const DEFLATED_TS_BYTES = Buffer.from(DEFLATED_TS, 'latin1');

/** Whether the file meta names the deflated transfer syntax (a byte search of its first 4 KiB). */
function namesDeflatedSyntax(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(4096, bytes.length));
  return head.indexOf(DEFLATED_TS_BYTES) >= 0;
}

/**
 * The most bytes a deflated dataset may inflate to: up to its pixel data, the pixel bytes its
 * header declares (rows x columns x samples x frames x bits), and 1 MiB of trailing elements;
 * never more than FULL_INFLATE_LIMIT. Undefined when the file is not deflated.
 */
function deflatedInflateCap(fileBytes: Uint8Array, source: string): number | undefined {
  if (!namesDeflatedSyntax(fileBytes)) return undefined;
  let head: ParsedDicom;
  try {
    head = parseDicom(fileBytes, { headerOnly: true });
  } catch (err) {
    if (err instanceof InflateLimitError) throw new PixelDataError(source, DEFLATED_TS, err.message);
    return undefined; // the full parse reports what is wrong
  }
  if (head.transferSyntaxUid !== DEFLATED_TS) return undefined;
  const h = readHeader(head);
  const expected = expectedPixelBytes(h);
  if (expected === null || h.pixelDataOffset === null) return undefined;
  return Math.min(FULL_INFLATE_LIMIT, h.pixelDataOffset + expected + INFLATE_SLACK);
}

/** Parses a whole file (pixel data included) for decoding. */
export function openPixelSource(fileBytes: Uint8Array, options: DecodeOptions = {}): PixelSource {
  const source = options.source ?? '<bytes>';
  let parsed: ParsedDicom;
  const maxInflatedBytes = deflatedInflateCap(fileBytes, source);
  try {
    parsed = parseDicom(fileBytes, { maxInflatedBytes });
  } catch (err) {
    if (err instanceof InflateLimitError) throw new PixelDataError(source, DEFLATED_TS, err.message);
    throw diagnoseParseFailure(fileBytes, source, err);
  }
  const header = readHeader(parsed);
  const ts = parsed.transferSyntaxUid;
  const fail = (problem: string) => new PixelDataError(source, ts, problem);
  const ds = parsed.dataSet;
  const pixelEl = ds.elements[PIXEL_DATA] ?? ds.elements[FLOAT_PIXEL_DATA] ?? ds.elements[DOUBLE_PIXEL_DATA];
  if (!pixelEl) throw fail('no pixel data element (7FE0,0010/0008/0009)');
  if (!isSupportedTransferSyntax(ts)) throw fail('unsupported transfer syntax: no decoder for it');
  const rows = header.rows ?? 0;
  const columns = header.columns ?? 0;
  if (rows <= 0 || columns <= 0) throw fail(`invalid image size Rows=${header.rows} Columns=${header.columns}`);
  const floatingPoint = pixelEl.tag !== PIXEL_DATA;
  const bitsAllocated = floatingPoint ? (pixelEl.tag === FLOAT_PIXEL_DATA ? 32 : 64) : (header.bitsAllocated ?? 0);
  if (![1, 8, 16, 32, 64].includes(bitsAllocated) || (bitsAllocated === 64 && !floatingPoint))
    throw fail(`unsupported BitsAllocated ${header.bitsAllocated}`);
  const bitsStored = floatingPoint ? bitsAllocated : (header.bitsStored ?? bitsAllocated);
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw fail(`BitsStored ${header.bitsStored} is not in 1..BitsAllocated (${bitsAllocated})`);
  const samplesPerPixel = header.samplesPerPixel ?? 1;
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw fail(`unsupported SamplesPerPixel ${samplesPerPixel}`);
  const signed = header.pixelRepresentation === 1;
  const numberOfFrames = header.numberOfFrames;
  const lossyFlag = str(ds, 'x00282110') === '01';
  const geometry: FrameGeometry = {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    signed,
    floatingPoint,
    planarConfiguration: header.planarConfiguration ?? 0,
    photometric: header.photometric || (samplesPerPixel === 1 ? 'MONOCHROME2' : 'RGB'),
  };
  const encapsulated = !!pixelEl.encapsulatedPixelData;
  const nativeTs = !JPEG_TS.has(ts) && !JPEGLS_TS.has(ts) && !J2K_TS.has(ts) && !HTJ2K_TS.has(ts) && !JPEGXL_TS.has(ts) && ts !== RLE_TS && ts !== ENCAPSULATED_UNCOMPRESSED_TS && ts !== DEFLATED_FRAME_TS;
  if (!encapsulated && !nativeTs) throw fail('the transfer syntax is compressed but the pixel data is not encapsulated (defined length)');
  if (encapsulated && nativeTs) throw fail('the pixel data is encapsulated but the transfer syntax is uncompressed');

  const decode = async (frameIndex: number): Promise<DecodedFrame> => {
    if (!Number.isInteger(frameIndex) || frameIndex < 0 || frameIndex >= numberOfFrames)
      throw fail(`frame index ${frameIndex} is out of range: the object has ${numberOfFrames} frame(s)`);
    const warnings: string[] = [];
    let out: { pixels: PixelArray; photometric: string; samplesPerPixel: number };
    try {
      if (nativeTs) out = nativeFrame(ds, pixelEl, frameIndex, geometry, ts === BIG_ENDIAN_TS, options.ownsBytes === true);
      else {
        const frame = encapsulatedFrame(ds, pixelEl, frameIndex, numberOfFrames, ts);
        out = await decodeEncapsulated(frame, ts, geometry, warnings);
      }
    } catch (err) {
      if (err instanceof PixelDataError) throw err;
      throw fail(`frame ${frameIndex}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!floatingPoint) normalizeStored(out.pixels, bitsStored, signed);
    const rescale = frameRescale(ds, frameIndex, header);
    return {
      pixels: out.pixels,
      rows,
      columns,
      samplesPerPixel: out.samplesPerPixel,
      photometric: out.photometric,
      bitsAllocated,
      bitsStored,
      signed,
      floatingPoint,
      frameIndex,
      numberOfFrames,
      transferSyntaxUid: ts,
      lossy: lossyFlag || !!TRANSFER_SYNTAXES[ts]?.lossy,
      rescaleSlope: rescale.slope,
      rescaleIntercept: rescale.intercept,
      header,
      warnings,
    };
  };
  return { source, header, transferSyntaxUid: ts, numberOfFrames, decode };
}

/**
 * The whole-file parse failed: parse the header alone to name the transfer syntax and, when the
 * pixel data element starts but the file ends inside it, say that the pixel data is truncated.
 */
function diagnoseParseFailure(bytes: Uint8Array, source: string, err: unknown): PixelDataError {
  const why = err instanceof Error ? err.message : String(err);
  let head: ParsedDicom;
  try {
    head = parseDicom(bytes, { headerOnly: true });
  } catch {
    return new PixelDataError(source, '', `cannot parse the file: ${why}`);
  }
  const el = head.dataSet.elements[PIXEL_DATA] ?? head.dataSet.elements[FLOAT_PIXEL_DATA] ?? head.dataSet.elements[DOUBLE_PIXEL_DATA];
  if (el && el.dataOffset <= bytes.length) {
    const declared = el.hadUndefinedLength || el.length === 0xffffffff ? 'undefined-length (encapsulated) pixel data' : `${el.length} bytes of pixel data`;
    const have = bytes.length - el.dataOffset;
    if (el.hadUndefinedLength || el.length === 0xffffffff || el.dataOffset + el.length > bytes.length)
      return new PixelDataError(source, head.transferSyntaxUid, `truncated pixel data: the file declares ${declared} at byte ${el.dataOffset} but ends ${have} bytes later (${why})`);
  }
  return new PixelDataError(source, head.transferSyntaxUid, `cannot parse the dataset: ${why}`);
}

/** Decodes one frame (0-based) of a DICOM file held in memory. */
export async function decodeFrame(fileBytes: Uint8Array, frameIndex: number, options: DecodeOptions = {}): Promise<DecodedFrame> {
  return openPixelSource(fileBytes, options).decode(frameIndex);
}

interface FrameGeometry {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  floatingPoint: boolean;
  planarConfiguration: number;
  photometric: string;
}

/** Rescale slope/intercept of one frame of an enhanced object, else of the whole object. */
function frameRescale(ds: DataSet, frameIndex: number, header: InstanceHeader): { slope: number; intercept: number } {
  const perFrame = ds.elements['x52009230']?.items?.[frameIndex]?.dataSet;
  const pvt = firstItem(perFrame, 'x00289145');
  if (pvt) {
    const slope = num(pvt, 'x00281053');
    const intercept = num(pvt, 'x00281052');
    if (slope !== null || intercept !== null) return { slope: slope ?? 1, intercept: intercept ?? 0 };
  }
  return { slope: header.rescaleSlope, intercept: header.rescaleIntercept };
}

function typedArrayFor(bitsAllocated: number, signed: boolean, floatingPoint: boolean, buffer: ArrayBuffer, length: number, offset = 0): PixelArray {
  if (floatingPoint) return bitsAllocated === 64 ? new Float64Array(buffer, offset, length) : new Float32Array(buffer, offset, length);
  switch (bitsAllocated) {
    case 1: // one 0/1 value per byte after unpacking
    case 8:
      return signed && bitsAllocated === 8 ? new Int8Array(buffer, offset, length) : new Uint8Array(buffer, offset, length);
    case 16:
      return signed ? new Int16Array(buffer, offset, length) : new Uint16Array(buffer, offset, length);
    case 32:
      return signed ? new Int32Array(buffer, offset, length) : new Uint32Array(buffer, offset, length);
    default:
      throw new Error(`no array type for ${bitsAllocated} bits`);
  }
}

/** Native pixel data of one frame (little or big endian), copied into its own aligned buffer. */
function nativeFrame(
  ds: DataSet,
  el: Element,
  frameIndex: number,
  g: FrameGeometry,
  bigEndian: boolean,
  view = false,
): { pixels: PixelArray; photometric: string; samplesPerPixel: number } {
  const bytes = ds.byteArray as Uint8Array;
  const pixelsPerFrame = g.rows * g.columns;
  const ybr422 = g.photometric === 'YBR_FULL_422';
  // YBR_FULL_422 stored natively keeps two luma and one pair of chroma per two pixels.
  const samplesStored = ybr422 ? 2 : g.samplesPerPixel;
  const available = Math.min(el.length, bytes.length - el.dataOffset);
  if (g.bitsAllocated === 1) {
    const bitsPerFrame = pixelsPerFrame * samplesStored;
    const firstBit = frameIndex * bitsPerFrame;
    const needBytes = Math.ceil((firstBit + bitsPerFrame) / 8);
    if (needBytes > available) throw truncated(frameIndex, needBytes, available, el, bytes);
    const out = new Uint8Array(bitsPerFrame);
    for (let i = 0; i < bitsPerFrame; i++) {
      const b = firstBit + i;
      out[i] = (bytes[el.dataOffset + (b >> 3)] >> (b & 7)) & 1;
    }
    return { pixels: out, photometric: g.photometric, samplesPerPixel: g.samplesPerPixel };
  }
  const bytesPerSample = g.bitsAllocated / 8;
  const frameBytes = pixelsPerFrame * samplesStored * bytesPerSample;
  const start = frameIndex * frameBytes;
  if (start + frameBytes > available) throw truncated(frameIndex, start + frameBytes, available, el, bytes);
  const at = bytes.byteOffset + el.dataOffset + start;
  let pixels: PixelArray;
  if (view && !bigEndian && at % bytesPerSample === 0) pixels = typedArrayFor(g.bitsAllocated, g.signed, g.floatingPoint, bytes.buffer as ArrayBuffer, pixelsPerFrame * samplesStored, at);
  else {
    const buf = new Uint8Array(frameBytes);
    buf.set(bytes.subarray(el.dataOffset + start, el.dataOffset + start + frameBytes));
    if (bigEndian && bytesPerSample > 1) swapBytes(buf, bytesPerSample);
    pixels = typedArrayFor(g.bitsAllocated, g.signed, g.floatingPoint, buf.buffer, pixelsPerFrame * samplesStored);
  }
  let photometric = g.photometric;
  if (ybr422) {
    pixels = ybrFull422ToRgb(pixels as Uint8Array, pixelsPerFrame);
    photometric = 'RGB';
  } else if (g.samplesPerPixel === 3 && g.planarConfiguration === 1) {
    pixels = interleave(pixels, pixelsPerFrame);
  }
  if (photometric === 'YBR_FULL' && pixels instanceof Uint8Array) {
    ybrFullToRgbInPlace(pixels);
    photometric = 'RGB';
  }
  return { pixels, photometric, samplesPerPixel: g.samplesPerPixel };
}

function truncated(frameIndex: number, need: number, available: number, el: Element, bytes: Uint8Array): Error {
  const fileShort = el.dataOffset + el.length > bytes.length;
  return new Error(
    `truncated pixel data: frame ${frameIndex} needs ${need} bytes of pixel data but ${available} are present` +
      (fileShort ? ` (the element declares ${el.length} bytes; the file ends ${el.dataOffset + el.length - bytes.length} bytes early)` : ''),
  );
}

function swapBytes(buf: Uint8Array, width: number): void {
  for (let i = 0; i + width <= buf.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = buf[a];
      buf[a] = buf[b];
      buf[b] = t;
    }
  }
}

function interleave<T extends PixelArray>(planar: T, pixels: number): T {
  const out = new (planar.constructor as new (n: number) => T)(planar.length);
  for (let i = 0; i < pixels; i++) {
    out[3 * i] = planar[i];
    out[3 * i + 1] = planar[pixels + i];
    out[3 * i + 2] = planar[2 * pixels + i];
  }
  return out;
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** YCbCr (full range, as DICOM YBR_FULL) to RGB, interleaved 8-bit samples, in place. */
function ybrFullToRgbInPlace(px: Uint8Array): void {
  for (let i = 0; i + 2 < px.length; i += 3) {
    const y = px[i];
    const cb = px[i + 1] - 128;
    const cr = px[i + 2] - 128;
    px[i] = clamp8(y + 1.402 * cr);
    px[i + 1] = clamp8(y - 0.344136 * cb - 0.714136 * cr);
    px[i + 2] = clamp8(y + 1.772 * cb);
  }
}

/** YBR_FULL_422 (Y1 Y2 Cb Cr per pixel pair) to interleaved RGB. */
function ybrFull422ToRgb(src: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let p = 0, s = 0; p < pixels; p += 2, s += 4) {
    const cb = src[s + 2];
    const cr = src[s + 3];
    out.set([src[s], cb, cr], 3 * p);
    if (p + 1 < pixels) out.set([src[s + 1], cb, cr], 3 * (p + 1));
  }
  ybrFullToRgbInPlace(out);
  return out;
}

/** The compressed bytes of one frame of encapsulated pixel data. */
function encapsulatedFrame(ds: DataSet, el: Element, frameIndex: number, frames: number, ts: string): Uint8Array {
  const bytes = ds.byteArray as Uint8Array;
  const fragments = el.fragments ?? [];
  if (fragments.length === 0) throw new Error('encapsulated pixel data holds no fragments');
  for (const f of fragments) {
    if (f.position + f.length > bytes.length)
      throw new Error(`truncated pixel data: a fragment at byte ${f.position} declares ${f.length} bytes but the file ends at byte ${bytes.length}`);
  }
  let groups: number[][];
  const bot = el.basicOffsetTable ?? [];
  if (bot.length > 0) {
    if (bot.length !== frames) throw new Error(`the basic offset table has ${bot.length} entries for ${frames} frames`);
    const startOf = bot.map((off) => fragments.findIndex((f) => f.offset === off));
    if (startOf.some((i) => i < 0)) throw new Error('the basic offset table points between fragments');
    groups = startOf.map((s, i) => range(s, i + 1 < startOf.length ? startOf[i + 1] : fragments.length));
  } else if (frames === 1) {
    groups = [range(0, fragments.length)];
  } else if (fragments.length === frames) {
    groups = fragments.map((_, i) => [i]);
  } else {
    // No offset table and more fragments than frames: a frame starts at each fragment that opens
    // with the start-of-image marker of its codestream (JPEG/JPEG-LS SOI, JPEG 2000 SOC or JP2 box).
    groups = [];
    for (let i = 0; i < fragments.length; i++) {
      const p = fragments[i].position;
      const starts = isCodestreamStart(bytes, p, ts);
      if (starts || groups.length === 0) groups.push([i]);
      else groups[groups.length - 1].push(i);
    }
    if (groups.length !== frames) throw new Error(`cannot split ${fragments.length} fragments into ${frames} frames (found ${groups.length} codestream starts, no basic offset table)`);
  }
  if (frameIndex >= groups.length) throw new Error(`the pixel data holds ${groups.length} frame(s), frame ${frameIndex} is missing`);
  const parts = groups[frameIndex].map((i) => bytes.subarray(fragments[i].position, fragments[i].position + fragments[i].length));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

function isCodestreamStart(b: Uint8Array, p: number, ts: string): boolean {
  if (JPEG_TS.has(ts) || JPEGLS_TS.has(ts)) return b[p] === 0xff && b[p + 1] === 0xd8;
  if (J2K_TS.has(ts) || HTJ2K_TS.has(ts)) return (b[p] === 0xff && b[p + 1] === 0x4f && b[p + 2] === 0xff && b[p + 3] === 0x51) || (b[p + 4] === 0x6a && b[p + 5] === 0x50);
  // JPEG XL: a bare codestream (FF 0A) or the ISO BMFF container ('JXL ' signature box).
  if (JPEGXL_TS.has(ts)) return (b[p] === 0xff && b[p + 1] === 0x0a) || (b[p + 4] === 0x4a && b[p + 5] === 0x58 && b[p + 6] === 0x4c && b[p + 7] === 0x20);
  return false;
}

/** The frame header (SOF) of a JPEG or JPEG-LS codestream. */
export interface JpegSof {
  marker: number;
  precision: number;
  height: number;
  width: number;
  components: number;
}

/** Scans JPEG markers up to the first start-of-frame. */
export function readJpegSof(b: Uint8Array): JpegSof | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return null;
    const marker = b[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    const isSof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      if (p + 10 > b.length) return null;
      return { marker, precision: b[p + 4], height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8], components: b[p + 9] };
    }
    if (marker === 0xda || marker === 0xd9) return null;
    p += 2 + len;
  }
  return null;
}

function checkSize(what: string, w: number, h: number, comps: number, g: FrameGeometry): void {
  if (w !== g.columns || h !== g.rows) throw new Error(`${what} is ${w}x${h} but the header says Columns=${g.columns} Rows=${g.rows}`);
  if (comps !== g.samplesPerPixel) throw new Error(`${what} has ${comps} component(s) but SamplesPerPixel is ${g.samplesPerPixel}`);
}

/** Reinterprets decoded little-endian sample bytes as the output array type. */
function fromSampleBytes(bytes: Uint8Array, bytesPerSample: number, g: FrameGeometry, expectedSamples: number): PixelArray {
  if (bytes.length < expectedSamples * bytesPerSample)
    throw new Error(`the decoder returned ${bytes.length} bytes, expected ${expectedSamples * bytesPerSample}`);
  const copy = new Uint8Array(expectedSamples * Math.max(1, g.bitsAllocated / 8));
  if (bytesPerSample * 8 === g.bitsAllocated) {
    copy.set(bytes.subarray(0, copy.length));
    return typedArrayFor(g.bitsAllocated, g.signed, false, copy.buffer, expectedSamples);
  }
  // Codec sample width differs from the container (e.g. 8-bit codestream in 16-bit pixels).
  const out = typedArrayFor(g.bitsAllocated, g.signed, false, copy.buffer, expectedSamples);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < expectedSamples; i++) out[i] = bytesPerSample === 1 ? bytes[i] : view.getUint16(2 * i, true);
  return out;
}

function widen(src: ArrayLike<number>, g: FrameGeometry, n: number): PixelArray {
  const out = typedArrayFor(g.bitsAllocated, g.signed, false, new ArrayBuffer(n * Math.max(1, g.bitsAllocated / 8)), n);
  for (let i = 0; i < n; i++) out[i] = src[i];
  return out;
}

async function decodeEncapsulated(
  frame: Uint8Array,
  ts: string,
  g: FrameGeometry,
  warnings: string[],
): Promise<{ pixels: PixelArray; photometric: string; samplesPerPixel: number }> {
  const n = g.rows * g.columns * g.samplesPerPixel;
  const mono = { photometric: g.photometric, samplesPerPixel: g.samplesPerPixel };
  if (g.floatingPoint) throw new Error('float pixel data cannot be encapsulated');
  if (ts === ENCAPSULATED_UNCOMPRESSED_TS) {
    const bytesPer = g.bitsAllocated / 8;
    if (frame.length < n * bytesPer) throw new Error(`truncated pixel data: the frame holds ${frame.length} bytes, expected ${n * bytesPer}`);
    return { pixels: fromSampleBytes(frame, bytesPer, g, n), ...mono };
  }
  if (ts === DEFLATED_FRAME_TS) {
    // Each frame is a raw deflate stream of the native frame bytes (little endian, bits packed per frame).
    // Inflated no further than one frame needs (plus a little): a decompression bomb is refused.
    const need = Math.ceil((n * g.bitsAllocated) / 8);
    let raw: Uint8Array;
    try {
      const r = inflateRawCapped(frame, need + 4096);
      if (r.capped) throw new Error(`the frame inflates to more than the ${need} bytes it needs: refused (a decompression bomb or a damaged frame)`);
      raw = r.bytes;
    } catch (err) {
      throw new Error(`corrupt pixel data: the deflated frame does not inflate (${err instanceof Error ? err.message : String(err)})`);
    }
    const el = { dataOffset: 0, length: raw.length } as Element;
    return nativeFrame({ byteArray: raw } as unknown as DataSet, el, 0, g, false);
  }
  if (ts === RLE_TS) {
    const px = await decodeRle(frame, {
      rows: g.rows,
      columns: g.columns,
      samplesPerPixel: g.samplesPerPixel,
      bitsAllocated: g.bitsAllocated,
      pixelRepresentation: g.signed ? 1 : 0,
      planarConfiguration: g.planarConfiguration,
    });
    // RLE segments are planar by definition; the decoder interleaves them.
    const pixels = widen(px, g, n);
    if (g.photometric === 'YBR_FULL' && pixels instanceof Uint8Array) {
      ybrFullToRgbInPlace(pixels);
      return { pixels, photometric: 'RGB', samplesPerPixel: 3 };
    }
    return { pixels, ...mono };
  }
  if (JPEG_TS.has(ts) || JPEGLS_TS.has(ts)) {
    const sof = readJpegSof(frame);
    if (!sof) throw new Error('corrupt pixel data: no JPEG start-of-frame marker in the frame');
    checkSize('the JPEG frame', sof.width, sof.height, sof.components, g);
    if (sof.marker === 0xf7) {
      if (!JPEGLS_TS.has(ts)) warnings.push('JPEG-LS codestream under a JPEG transfer syntax');
      const { bytes, info } = await decodeJpegLS(frame);
      checkSize('the decoded JPEG-LS frame', info.width, info.height, info.componentCount, g);
      return { pixels: fromSampleBytes(bytes, info.bitsPerSample > 8 ? 2 : 1, g, n), ...mono };
    }
    if (JPEGLS_TS.has(ts)) throw new Error(`corrupt pixel data: the frame is a JPEG (SOF 0x${sof.marker.toString(16)}) codestream, not JPEG-LS`);
    if (sof.marker >= 0xc9 && sof.marker !== 0xcc)
      throw new Error(`arithmetic-coded JPEG (SOF 0x${sof.marker.toString(16)}) is not supported by the decoders`);
    if (sof.marker === 0xc3 || sof.marker === 0xc7) {
      const r = await decodeJpegLossless(frame, g.bitsAllocated <= 8 ? 1 : 2);
      checkSize('the decoded JPEG lossless frame', r.width, r.height, r.components, g);
      if (r.pixels.length < n) throw new Error(`the JPEG lossless decoder returned ${r.pixels.length} samples, expected ${n}`);
      return { pixels: widen(r.pixels, g, n), ...mono };
    }
    const color = g.samplesPerPixel === 3;
    if (sof.precision <= 8) {
      const { bytes, info } = await decodeJpeg8(frame);
      checkSize('the decoded JPEG frame', info.width, info.height, info.componentCount, g);
      // libjpeg-turbo converts YCbCr to RGB for 3-component images.
      return { pixels: fromSampleBytes(bytes, 1, g, n), photometric: color ? 'RGB' : g.photometric, samplesPerPixel: g.samplesPerPixel };
    }
    if (color) throw new Error(`${sof.precision}-bit colour JPEG is not supported by the decoders`);
    if (g.bitsAllocated < 16) throw new Error(`a ${sof.precision}-bit JPEG cannot be stored in ${g.bitsAllocated}-bit pixels`);
    const r = await decodeJpegDcmtk(frame, { rows: g.rows, columns: g.columns, bitsAllocated: g.bitsAllocated, bitsStored: g.bitsStored, signed: g.signed });
    checkSize('the decoded JPEG frame', r.width, r.height, 1, g);
    return { pixels: widen(r.pixels, g, n), ...mono };
  }
  if (J2K_TS.has(ts) || HTJ2K_TS.has(ts)) {
    // JPEG 2000 through OpenJPEG; its High-Throughput variant (Part 15) through OpenJPH.
    const what = HTJ2K_TS.has(ts) ? 'HTJ2K' : 'JPEG 2000';
    const { bytes, info } = HTJ2K_TS.has(ts) ? await decodeHTJ2K(frame) : await decodeJ2K(frame);
    checkSize(`the decoded ${what} frame`, info.width, info.height, info.componentCount, g);
    if (info.isSigned !== undefined && info.isSigned !== g.signed)
      warnings.push(`${what} codestream is ${info.isSigned ? 'signed' : 'unsigned'} but PixelRepresentation says ${g.signed ? 'signed' : 'unsigned'}`);
    if (info.bitsPerSample !== g.bitsStored) warnings.push(`${what} precision ${info.bitsPerSample} differs from BitsStored ${g.bitsStored}`);
    // Colour (RCT/ICT) comes back as RGB.
    const photometric = g.samplesPerPixel === 3 && g.photometric.startsWith('YBR') ? 'RGB' : g.photometric;
    return { pixels: fromSampleBytes(bytes, info.bitsPerSample > 8 ? 2 : 1, g, n), photometric, samplesPerPixel: g.samplesPerPixel };
  }
  if (JPEGXL_TS.has(ts)) {
    // JPEG XL has no signed samples: signed pixel data is coded as its two's-complement bit
    // pattern, read back by reinterpreting the samples (as cornerstone3d and dicom-rs do).
    const { bytes, info } = await decodeJpegXL(frame);
    checkSize('the decoded JPEG XL frame', info.width, info.height, info.componentCount, g);
    return { pixels: fromSampleBytes(bytes, info.bitsPerSample > 8 ? 2 : 1, g, n), photometric: g.samplesPerPixel === 3 ? 'RGB' : g.photometric, samplesPerPixel: g.samplesPerPixel };
  }
  throw new Error('unsupported transfer syntax: no decoder for it');
}

/** HU of one frame with its padding mask. */
export interface FrameHU {
  /** Hounsfield units, row-major (rows x columns); NaN where padding. */
  hu: Float32Array;
  /** 1 where the pixel is padding; null when the object declares no padding. */
  padding: Uint8Array | null;
  paddingCount: number;
  rows: number;
  columns: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  rescaleType: string;
  lossy: boolean;
  transferSyntaxUid: string;
  frameIndex: number;
  numberOfFrames: number;
  header: InstanceHeader;
  warnings: string[];
}

/** What turns a decoded greyscale frame's values into HU (throws for colour frames, which have no HU). */
export function frameRescaleParams(frame: DecodedFrame, source = '<bytes>'): RescaleParams {
  if (frame.samplesPerPixel !== 1 || !frame.photometric.startsWith('MONOCHROME'))
    throw new PixelDataError(source, frame.transferSyntaxUid, `not a greyscale image (PhotometricInterpretation ${frame.photometric}, ${frame.samplesPerPixel} samples): no Hounsfield units`);
  const h = frame.header;
  return {
    bitsAllocated: frame.bitsAllocated === 1 ? 8 : frame.bitsAllocated,
    bitsStored: frame.bitsAllocated === 1 ? 1 : frame.bitsStored,
    signed: frame.signed,
    floatingPoint: frame.floatingPoint,
    rescaleSlope: frame.rescaleSlope,
    rescaleIntercept: frame.rescaleIntercept,
    pixelPaddingValue: h.pixelPaddingValue,
    pixelPaddingRangeLimit: h.pixelPaddingRangeLimit,
  };
}

/** Converts a decoded greyscale frame to HU (throws for colour frames, which have no HU). */
export function frameToHU(frame: DecodedFrame, source = '<bytes>'): FrameHU {
  const h = frame.header;
  const r = storedToHU(frame.pixels, frameRescaleParams(frame, source));
  return {
    hu: r.hu,
    padding: r.padding,
    paddingCount: r.paddingCount,
    rows: frame.rows,
    columns: frame.columns,
    rescaleSlope: frame.rescaleSlope,
    rescaleIntercept: frame.rescaleIntercept,
    rescaleType: h.rescaleType,
    lossy: frame.lossy,
    transferSyntaxUid: frame.transferSyntaxUid,
    frameIndex: frame.frameIndex,
    numberOfFrames: frame.numberOfFrames,
    header: h,
    warnings: frame.warnings,
  };
}

/** fs.readFile with a callback: less CPU per file than fs/promises' chunked readFile (bench/pipeline.ts). */
function readWhole(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => readFileCb(path, (err, buf) => (err ? reject(err) : resolve(buf))));
}

async function readDecodedFrame(path: string, frame: number): Promise<DecodedFrame> {
  let bytes: Uint8Array;
  try {
    const buf = await readWhole(path);
    // A view on the buffer just read, not a copy; decodeFrame may view its pixels too (ownsBytes).
    bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new PixelDataError(path, '', `cannot read the file: ${err instanceof Error ? err.message : String(err)}`);
  }
  return decodeFrame(bytes, frame, { source: path, ownsBytes: true });
}

/** Reads a file and returns one frame (0-based) in HU with its padding mask. */
export async function readFrameHU(path: string, frame = 0): Promise<FrameHU> {
  return frameToHU(await readDecodedFrame(path, frame), path);
}

/**
 * Reads a file and hands one greyscale frame's stored values, with what turns them into HU
 * (storedToHU of these is readFrameHU's `hu`), to `use`, which must not keep them: the file is read
 * into a reused buffer and the pixels may be a view on it, returned to the pool once `use` is
 * done. The pretraining pipeline reads every slice this way (bench/pipeline.ts): no file-sized
 * allocation per slice, so far fewer garbage collections.
 */
export async function withFrameStored<T>(path: string, frame: number, use: (f: { pixels: PixelArray; rows: number; columns: number; rescale: RescaleParams }) => T): Promise<T> {
  let file: PooledFile;
  try {
    file = await readPooled(path);
  } catch (err) {
    throw new PixelDataError(path, '', `cannot read the file: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const f = await decodeFrame(file.bytes, frame, { source: path, ownsBytes: true });
    return use({ pixels: f.pixels, rows: f.rows, columns: f.columns, rescale: frameRescaleParams(f, path) });
  } finally {
    file.release();
  }
}

interface PooledFile {
  bytes: Uint8Array;
  release(): void;
}

/** Free read buffers; a file over POOL_FILE_MAX gets a buffer of its own. */
const pool: ArrayBuffer[] = [];
const POOL_SIZE = 32;
const POOL_FILE_MAX = 16 << 20;

const fsCall = <T>(f: (cb: (err: NodeJS.ErrnoException | null, v: T) => void) => void) => new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));

/** The whole file in a pooled buffer (open, fstat, read to its size or its end, close). */
async function readPooled(path: string): Promise<PooledFile> {
  const fd = await fsCall<number>((cb) => open(path, 'r', cb));
  let buffer: ArrayBuffer | null = null;
  try {
    const st = await fsCall<Stats>((cb) => fstat(fd, cb));
    if (!st.isFile()) throw new Error('not a regular file');
    const size = st.size;
    const pooled = size <= POOL_FILE_MAX;
    if (pooled) {
      const i = pool.findIndex((b) => b.byteLength >= size);
      buffer = i >= 0 ? pool.splice(i, 1)[0] : new ArrayBuffer(Math.max(size, 1));
    } else buffer = new ArrayBuffer(size);
    const view = new Uint8Array(buffer, 0, size);
    let got = 0;
    while (got < size) {
      const n = await fsCall<number>((cb) => read(fd, view, got, size - got, got, cb));
      if (n === 0) break;
      got += n;
    }
    const own = buffer;
    let released = false;
    return {
      bytes: view.subarray(0, got),
      release() {
        if (released || !pooled) return;
        released = true;
        if (pool.length >= POOL_SIZE) pool.sort((a, b) => a.byteLength - b.byteLength).shift();
        pool.push(own);
      },
    };
  } catch (err) {
    if (buffer && buffer.byteLength <= POOL_FILE_MAX && pool.length < POOL_SIZE) pool.push(buffer);
    throw err;
  } finally {
    await fsCall<void>((cb) => close(fd, (e) => cb(e, undefined))).catch(() => undefined);
  }
}
