/**
 * The image codecs of the pixel pipeline, each loaded lazily once, from maintained npm packages:
 *
 * - libjpeg-turbo (wasm, @cornerstonejs/codec-libjpeg-turbo-8bit): 8-bit JPEG (baseline, extended, progressive)
 * - dcmjs-codecs (wasm build of DCMTK's IJG codecs): 12/16-bit DCT JPEG (extended, progressive)
 * - @cornerstonejs/jpeg-lossless-decoder-js: JPEG lossless (process 14)
 * - CharLS (wasm, @cornerstonejs/codec-charls): JPEG-LS lossless and near-lossless
 * - OpenJPEG (wasm, @cornerstonejs/codec-openjpeg): JPEG 2000
 * - OpenJPH (wasm, @cornerstonejs/codec-openjph): High-Throughput JPEG 2000 (HTJ2K, Part 15)
 * - libjxl (wasm, @cornerstonejs/codec-libjxl): JPEG XL
 * - the RLE decoder of @cornerstonejs/dicom-image-loader (`dist/esm/shared/decoders/decodeRLE.js`, pure JS)
 *
 * Wasm binaries are located with createRequire + require.resolve and read with fs, then handed to
 * the Emscripten factory as `wasmBinary`: no fetch, no URL guessing, so the same code runs in plain
 * Node, in vitest, and in Electron's main or utility process (where node_modules is on disk or in
 * an asar archive that Electron's fs reads).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

/** What every wasm decoder in the cornerstone codec builds reports about a decoded frame. */
export interface CodecFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): CodecFrameInfo;
  /** Frees the embind object. */
  delete(): void;
}

interface WasmModule {
  [decoderClass: string]: unknown;
  getExceptionMessage?: (ptr: number) => string;
}

type EmscriptenFactory = (opts: Record<string, unknown>) => Promise<WasmModule>;

/** A lazily created value; a failed or poisoned load can be reset so that the next call retries. */
class Lazy<T> {
  private p: Promise<T> | null = null;
  constructor(private readonly load: () => Promise<T>) {}
  get(): Promise<T> {
    if (!this.p) {
      this.p = this.load();
      this.p.catch(() => (this.p = null));
    }
    return this.p;
  }
  reset(): void {
    this.p = null;
  }
}

/** `js` and `wasm` are the package's export subpaths of the decoder build (most codecs: decodewasmjs and decodewasm). */
async function loadWasmCodec(
  pkg: string,
  decoderClass: string,
  js = 'decodewasmjs',
  wasm = 'decodewasm',
): Promise<{ module: WasmModule; Decoder: new () => WasmDecoder }> {
  const factoryMod = require(`${pkg}/${js}`) as EmscriptenFactory | { default: EmscriptenFactory };
  const factory = typeof factoryMod === 'function' ? factoryMod : factoryMod.default;
  const wasmPath = require.resolve(`${pkg}/${wasm}`);
  const wasmBinary = new Uint8Array(await readFile(wasmPath));
  const module = await factory({
    wasmBinary,
    locateFile: (f: string) => (f.endsWith('.wasm') ? wasmPath : f),
    // Emscripten prints codec warnings on stdout by default; our stdout may be JSON.
    print: () => {},
    printErr: () => {},
  });
  const Ctor = module[decoderClass] as (new () => WasmDecoder) | undefined;
  if (!Ctor) throw new Error(`${pkg}: the wasm module has no ${decoderClass}`);
  return { module, Decoder: Ctor };
}

const libjpegTurbo = new Lazy(() => loadWasmCodec('@cornerstonejs/codec-libjpeg-turbo-8bit', 'JPEGDecoder'));
const charls = new Lazy(() => loadWasmCodec('@cornerstonejs/codec-charls', 'JpegLSDecoder'));
const openjpeg = new Lazy(() => loadWasmCodec('@cornerstonejs/codec-openjpeg', 'J2KDecoder'));
const openjph = new Lazy(() => loadWasmCodec('@cornerstonejs/codec-openjph', 'HTJ2KDecoder', 'wasmjs', 'wasm'));
const libjxl = new Lazy(() => loadWasmCodec('@cornerstonejs/codec-libjxl', 'JpegXLDecoder'));

/**
 * A decode through a wasm codec. A fresh decoder object per frame: a reused one keeps the frame
 * info and output of its previous frame when a corrupt codestream decodes to nothing (seen with
 * OpenJPEG), which would hand back the previous image. The output is copied out of the wasm heap.
 */
async function runWasm(
  lazy: Lazy<{ module: WasmModule; Decoder: new () => WasmDecoder }>,
  name: string,
  data: Uint8Array,
): Promise<{ bytes: Uint8Array; info: CodecFrameInfo }> {
  const { module, Decoder } = await lazy.get();
  let decoder: WasmDecoder | null = null;
  try {
    decoder = new Decoder();
    decoder.getEncodedBuffer(data.length).set(data);
    decoder.decode();
    const info = { ...decoder.getFrameInfo() };
    if (!(info.width > 0 && info.height > 0)) throw new Error(`corrupt pixel data: the codestream decoded to ${info.width}x${info.height} pixels`);
    const out = decoder.getDecodedBuffer();
    return { bytes: out.slice(), info };
  } catch (err) {
    // An Emscripten abort leaves the module unusable: make the next call load a fresh instance.
    if (err instanceof Error && /abort|RuntimeError|unreachable|memory access/i.test(`${err.name} ${err.message}`)) lazy.reset();
    const msg =
      typeof err === 'number' && module.getExceptionMessage ? module.getExceptionMessage(err) : err instanceof Error ? err.message : String(err);
    throw new Error(`${name} could not decode the frame: ${msg || 'unknown codec error'}`);
  } finally {
    try {
      decoder?.delete();
    } catch {
      // an aborted module cannot free; it is dropped above
    }
  }
}

export const decodeJpeg8 = (data: Uint8Array) => runWasm(libjpegTurbo, 'libjpeg-turbo', data);
export const decodeJpegLS = (data: Uint8Array) => runWasm(charls, 'CharLS (JPEG-LS)', data);
export const decodeJ2K = (data: Uint8Array) => runWasm(openjpeg, 'OpenJPEG (JPEG 2000)', data);
export const decodeHTJ2K = (data: Uint8Array) => runWasm(openjph, 'OpenJPH (HTJ2K)', data);
export const decodeJpegXL = (data: Uint8Array) => runWasm(libjxl, 'libjxl (JPEG XL)', data);

/** Files inside @cornerstonejs/dicom-image-loader that its package exports do not expose. */
function dicomImageLoaderFile(rel: string): string {
  const pkgJson = require.resolve('@cornerstonejs/dicom-image-loader/package.json');
  return pathToFileURL(join(dirname(pkgJson), rel)).href;
}

interface DcmjsCodecsContext {
  getDecodedBuffer(): Uint8Array;
  getWidth(): number;
  getHeight(): number;
}
interface DcmjsCodecs {
  NativeCodecs: {
    initializeAsync(opts: { webAssemblyModulePathOrUrl?: string }): Promise<void>;
    decodeJpeg(ctx: DcmjsCodecsContext, params?: { convertColorspaceToRgb?: boolean }): DcmjsCodecsContext;
  };
  Context: new (attrs: Record<string, unknown>) => DcmjsCodecsContext;
}

/*
 * 12- and 16-bit DCT JPEG (extended, spectral selection, progressive) through dcmjs-codecs, a wasm
 * build of DCMTK's IJG codecs. Not the JS decoder in @cornerstonejs/dicom-image-loader
 * (`dist/esm/codecs/jpeg.js`): its 12-bit level shift is wrong (it adds 2056/bitConversion, i.e.
 * 2063.5 instead of 2048.5), so every 12-bit pixel comes out 15 too high; measured on
 * CTImage.dcm .51 against dcmtk dcmdjpeg and GDCM, which agree with each other and with this codec.
 */
const dcmjsCodecs = new Lazy(async () => {
  const mod = require('dcmjs-codecs') as DcmjsCodecs;
  const pkgJson = require.resolve('dcmjs-codecs/package.json');
  await mod.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: join(dirname(pkgJson), 'build', 'dcmjs-native-codecs.wasm') });
  return mod;
});

/** DCT JPEG of more than 8 bits (greyscale), decoded by DCMTK's IJG 12/16-bit codec (dcmjs-codecs). */
export async function decodeJpegDcmtk(
  data: Uint8Array,
  info: { rows: number; columns: number; bitsAllocated: number; bitsStored: number; signed: boolean },
): Promise<{ pixels: Uint16Array; width: number; height: number }> {
  const { NativeCodecs, Context } = await dcmjsCodecs.get();
  try {
    const ctx = new Context({
      width: info.columns,
      height: info.rows,
      bitsAllocated: info.bitsAllocated,
      bitsStored: info.bitsStored,
      samplesPerPixel: 1,
      pixelRepresentation: info.signed ? 1 : 0,
      planarConfiguration: 0,
      photometricInterpretation: 'MONOCHROME2',
      encodedBuffer: data,
    });
    const out = NativeCodecs.decodeJpeg(ctx, {});
    const buf = out.getDecodedBuffer();
    const pixels = new Uint16Array(buf.length >> 1);
    new Uint8Array(pixels.buffer).set(buf.subarray(0, pixels.length * 2));
    return { pixels, width: out.getWidth(), height: out.getHeight() };
  } catch (err) {
    throw new Error(`the 12/16-bit JPEG decoder (dcmjs-codecs, DCMTK IJG) could not decode the frame: ${err instanceof Error ? err.message : String(err)}`);
  }
}

interface LosslessDecoder {
  decode(buffer?: ArrayBuffer, offset?: number, length?: number, numBytes?: number): Uint8Array | Uint16Array;
  numComp: number;
  xDim: number;
  yDim: number;
  precision: number;
}

const jpegLossless = new Lazy(async () => {
  const mod = (await import('@cornerstonejs/jpeg-lossless-decoder-js')) as unknown as { Decoder: new () => LosslessDecoder };
  return mod.Decoder;
});

/** JPEG lossless (process 14, any predictor). `bytesPerSample` is 1 or 2. */
export async function decodeJpegLossless(
  data: Uint8Array,
  bytesPerSample: number,
): Promise<{ pixels: Uint8Array | Uint16Array; width: number; height: number; components: number; precision: number }> {
  const Decoder = await jpegLossless.get();
  const decoder = new Decoder();
  try {
    // The decoder reads from an ArrayBuffer with offset/length: give it an exact copy.
    const copy = data.slice();
    const pixels = decoder.decode(copy.buffer, 0, copy.length, bytesPerSample);
    return { pixels, width: decoder.xDim, height: decoder.yDim, components: decoder.numComp, precision: decoder.precision };
  } catch (err) {
    throw new Error(`the JPEG lossless decoder could not decode the frame: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface RleFrameInfo {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  pixelRepresentation: number;
  planarConfiguration: number;
}

type DecodeRle = (imageFrame: RleFrameInfo & { pixelData?: Uint8Array | Uint16Array | Int16Array }, pixelData: Uint8Array) => Promise<{ pixelData: Uint8Array | Uint16Array | Int16Array }>;

const rle = new Lazy(async () => {
  const mod = (await import(/* @vite-ignore */ dicomImageLoaderFile('dist/esm/shared/decoders/decodeRLE.js'))) as { default: DecodeRle };
  return mod.default;
});

/**
 * DICOM RLE through the dicom-image-loader decoder. The segment header is validated first (the
 * decoder itself would silently leave zeros for missing or short segments).
 */
export async function decodeRle(data: Uint8Array, info: RleFrameInfo): Promise<Uint8Array | Uint16Array | Int16Array> {
  if (data.length < 64) throw new Error(`RLE frame is ${data.length} bytes, shorter than its 64-byte segment header`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const segments = view.getUint32(0, true);
  const bytesPerSample = info.bitsAllocated === 1 ? 1 : info.bitsAllocated / 8;
  const expected = info.samplesPerPixel * bytesPerSample;
  if (segments !== expected) throw new Error(`RLE header declares ${segments} segments, expected ${expected} (${info.samplesPerPixel} samples x ${bytesPerSample} bytes)`);
  if (info.bitsAllocated === 16 && info.samplesPerPixel !== 1) throw new Error('RLE with 16 bits and more than one sample per pixel is not supported by the RLE decoder');
  if (info.bitsAllocated !== 8 && info.bitsAllocated !== 16 && info.bitsAllocated !== 1) throw new Error(`RLE with ${info.bitsAllocated} bits allocated is not supported by the RLE decoder`);
  let prev = 64;
  for (let s = 0; s < segments; s++) {
    const off = view.getUint32(4 + 4 * s, true);
    if (off < prev || off >= data.length) throw new Error(`RLE segment ${s + 1} starts at byte ${off}, outside the ${data.length}-byte frame`);
    prev = off;
  }
  const decode = await rle.get();
  // The decoder views `data.buffer` from byteOffset to its end: hand it an exact copy.
  const frame = await decode({ ...info }, data.slice());
  return frame.pixelData;
}
