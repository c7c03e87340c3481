/**
 * Pixel decoding of every transfer syntax in cornerstone3d-testimages, compared with reference
 * values decoded independently (pydicom, dcmtk, GDCM) by
 * test/fixtures/dicom/cornerstone/make_expected.py and stored in expected.json.
 *
 * Tolerances: lossless syntaxes must give the reference stored values exactly (SHA-256 of all
 * samples) and the reference HU exactly. Lossy syntaxes must stay within LOSSY_TOLERANCE stored
 * units of the reference decoder at every grid pixel (x |RescaleSlope| in HU), and their mean
 * absolute HU error against the lossless original may exceed the reference decoder's by at most
 * 0.05 HU.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFrame, type DecodedFrame, frameToHU, openPixelSource, PixelDataError, readFrameHU, readJpegSof, TRANSFER_SYNTAXES } from '../../../src/library/volumes/pixels';
import { fixtures, hasSharedData, sharedData } from '../../helpers';

interface FrameRef {
  storedSha256: string;
  storedSum: number;
  storedMin: number;
  storedMax: number;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  paddingCount?: number | null;
  huSum?: number;
  huGrid?: (number | null)[][];
  sampleGrid?: number[][][];
}
interface FileRef {
  file: string;
  committed: boolean;
  transferSyntaxUid: string;
  noPixelData?: boolean;
  lossy: boolean;
  reference: string;
  rows: number;
  columns: number;
  numberOfFrames: number;
  samplesPerPixel: number;
  photometric: string;
  bitsStored: number;
  signed: boolean;
  grid: { start: number; step: number };
  frames: FrameRef[];
  vsOriginal?: { file: string; meanAbsHU: number; maxAbsHU: number };
}

const committedDir = join(fixtures, 'cornerstone');
const fullDir = join(sharedData, 'cornerstone3d-testimages', 'packages', 'dicomImageLoader', 'testImages');
const expected = JSON.parse(readFileSync(join(committedDir, 'expected.json'), 'utf8')) as { files: FileRef[] };
const ORIGINAL = 'CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm';
/** Largest difference from the reference decoder, in stored units, allowed for lossy syntaxes. */
const LOSSY_TOLERANCE = 1;

const sha256 = (px: ArrayLike<number>) => createHash('sha256').update(new Uint8Array(Int32Array.from(px).buffer)).digest('hex');
const sum = (px: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < px.length; i++) s += px[i];
  return s;
};
const bytesOf = (dir: string, f: string) => new Uint8Array(readFileSync(join(dir, f)));

let originalHU: Float32Array | null = null;
async function original(): Promise<Float32Array> {
  originalHU ??= (await readFrameHU(join(committedDir, ORIGINAL), 0)).hu;
  return originalHU;
}

async function checkFile(ref: FileRef, dir: string): Promise<void> {
  const src = openPixelSource(bytesOf(dir, ref.file), { source: ref.file });
  expect(src.transferSyntaxUid).toBe(ref.transferSyntaxUid);
  expect(src.numberOfFrames).toBe(ref.numberOfFrames);
  for (let f = 0; f < ref.numberOfFrames; f++) {
    const fr: DecodedFrame = await src.decode(f);
    const exp = ref.frames[f];
    expect([fr.rows, fr.columns, fr.samplesPerPixel, fr.photometric]).toEqual([ref.rows, ref.columns, ref.samplesPerPixel, ref.photometric]);
    expect(fr.pixels.length).toBe(ref.rows * ref.columns * ref.samplesPerPixel);
    expect(fr.lossy).toBe(ref.lossy);
    const { start, step } = ref.grid;
    if (!ref.lossy) {
      // Lossless: the very same stored values as the reference decoder.
      expect(sha256(fr.pixels), `${ref.file} frame ${f} stored values`).toBe(exp.storedSha256);
      expect(sum(fr.pixels)).toBe(exp.storedSum);
    }
    if (exp.huGrid) {
      const h = frameToHU(fr, ref.file);
      expect(h.rescaleSlope).toBeCloseTo(exp.rescaleSlope!, 9);
      expect(h.rescaleIntercept).toBeCloseTo(exp.rescaleIntercept!, 9);
      expect(h.paddingCount).toBe(exp.paddingCount ?? 0);
      expect(h.padding === null).toBe(exp.paddingCount === null);
      const tol = ref.lossy ? LOSSY_TOLERANCE * Math.abs(exp.rescaleSlope!) + 1e-3 : 1e-3;
      let worst = 0;
      exp.huGrid.forEach((row, i) =>
        row.forEach((v, j) => {
          const got = h.hu[(start + i * step) * ref.columns + start + j * step];
          if (v === null) expect(Number.isNaN(got)).toBe(true);
          else worst = Math.max(worst, Math.abs(got - v));
        }),
      );
      expect(worst, `${ref.file} frame ${f}: worst HU difference on the grid`).toBeLessThanOrEqual(tol);
      let huTotal = 0;
      for (let i = 0; i < h.hu.length; i++) if (!h.padding || !h.padding[i]) huTotal += h.hu[i];
      if (!ref.lossy) expect(huTotal).toBe(exp.huSum);
      if (ref.vsOriginal) {
        const o = await original();
        let err = 0;
        for (let i = 0; i < o.length; i++) err += Math.abs(h.hu[i] - o[i]);
        expect(err / o.length, `${ref.file}: mean |HU - original HU|`).toBeLessThanOrEqual(ref.vsOriginal.meanAbsHU + 0.05);
      }
    } else {
      let worst = 0;
      exp.sampleGrid!.forEach((row, i) =>
        row.forEach((px, j) =>
          px.forEach((v, c) => {
            const got = fr.pixels[((start + i * step) * ref.columns + start + j * step) * ref.samplesPerPixel + c];
            worst = Math.max(worst, Math.abs(got - v));
          }),
        ),
      );
      // Colour: lossless exact; JPEG baseline YCbCr upsampling/colour conversion within 1; native YBR to RGB within 1 (rounding).
      const colourTol = ref.lossy || ref.reference.includes('YBR_FULL to RGB') ? 1 : 0;
      expect(worst, `${ref.file} frame ${f}: worst sample difference on the grid`).toBeLessThanOrEqual(colourTol);
    }
  }
}

const committed = expected.files.filter((e) => e.committed && !e.noPixelData);

describe('pixel decoding: committed cornerstone3d-testimages subset', () => {
  it('covers every transfer syntax of the issue with committed files', () => {
    const syntaxes = new Set(committed.map((e) => e.transferSyntaxUid));
    for (const ts of [
      '1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.5',
      '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.53', '1.2.840.10008.1.2.4.55', '1.2.840.10008.1.2.4.57',
      '1.2.840.10008.1.2.4.70', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91',
    ])
      expect(syntaxes.has(ts), ts).toBe(true);
    for (const e of committed) expect(existsSync(join(committedDir, e.file)), e.file).toBe(true);
  });

  for (const ref of committed) {
    const ts = TRANSFER_SYNTAXES[ref.transferSyntaxUid]?.name ?? ref.transferSyntaxUid;
    it(`${ref.file} (${ts}, ${ref.numberOfFrames} frame(s)) matches ${ref.reference}`, () => checkFile(ref, committedDir));
  }

  it('decodes both frames of the fragmented JPEG without offset table, and they differ', async () => {
    const src = openPixelSource(bytesOf(committedDir, 'CT0012.fragmented_no_bot_jpeg_baseline.51.dcm'));
    const a = await src.decode(0);
    const b = await src.decode(1);
    expect(sha256(a.pixels)).not.toBe(sha256(b.pixels));
  });

  it('all lossless encodings of CTImage.dcm give the same HU as the uncompressed original', async () => {
    const o = await original();
    const lossless = committed.filter((e) => e.file.startsWith('CTImage.dcm_') && !e.lossy);
    expect(lossless.length).toBe(9);
    for (const e of lossless) {
      const h = await readFrameHU(join(committedDir, e.file), 0);
      expect(Buffer.from(h.hu.buffer).equals(Buffer.from(o.buffer)), e.file).toBe(true);
    }
  });

  it('keeps PixelPaddingValue pixels apart as a mask (CT1_J2KR, padding -2000)', async () => {
    const h = await readFrameHU(join(committedDir, 'CT1_J2KR'), 0);
    expect(h.header.pixelPaddingValue).toBe(-2000);
    expect(h.padding).not.toBeNull();
    expect(h.paddingCount).toBe(55772);
    expect(Number.isNaN(h.hu[0])).toBe(true); // a corner, outside the field of view
    let minHU = Infinity;
    for (let i = 0; i < h.hu.length; i++) if (!h.padding![i]) minHU = Math.min(minHU, h.hu[i]);
    expect(minHU).toBeGreaterThan(-2000 - 1024);
  });

  it('routes JPEG frames by their SOF marker', () => {
    const b = bytesOf(committedDir, 'CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm');
    const soi = b.findIndex((v, i) => v === 0xff && b[i + 1] === 0xd8 && b[i + 2] === 0xff);
    expect(readJpegSof(b.subarray(soi))).toMatchObject({ marker: 0xc3, precision: 16, width: 512, height: 512, components: 1 });
  });
});

describe('pixel decoding: HTJ2K and JPEG XL (re-encodings of CTImage.dcm, test/fixtures/dicom/htj2k-jxl)', () => {
  // Made by make_fixtures.py; each codestream was checked there against a native decoder
  // independent of the app's wasm codecs (Debian's OpenJPEG opj_decompress, libjxl djxl).
  const dir = join(fixtures, 'htj2k-jxl');
  const made = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
    files: { file: string; transferSyntaxUid: string; lossless: boolean; maxAbsHU: number; meanAbsHU: number }[];
  };

  it('has the three HTJ2K syntaxes and JPEG XL Lossless, all named', () => {
    expect(made.files.map((f) => f.transferSyntaxUid).sort()).toEqual(['1.2.840.10008.1.2.4.110', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203']);
    for (const f of made.files) expect(TRANSFER_SYNTAXES[f.transferSyntaxUid]?.lossy).toBe(!f.lossless);
  });

  for (const f of made.files) {
    it(`${f.file}: HU ${f.lossless ? 'equal to' : `within ${f.maxAbsHU} HU of`} the uncompressed original, padding kept apart`, async () => {
      const o = await original();
      const h = (await readFrameHU(join(dir, f.file), 0)).hu;
      expect(h.length).toBe(o.length);
      let max = 0;
      let sum = 0;
      let n = 0;
      let paddingDiffers = 0;
      for (let i = 0; i < o.length; i++) {
        if (Number.isNaN(h[i]) !== Number.isNaN(o[i])) paddingDiffers++;
        if (Number.isNaN(o[i])) continue;
        const d = Math.abs(h[i] - o[i]);
        max = Math.max(max, d);
        sum += d;
        n++;
      }
      expect(paddingDiffers).toBe(0);
      if (f.lossless) {
        expect(max).toBe(0);
      } else {
        // A different 9/7 implementation than the reference decoder: within one stored unit.
        expect(max).toBeGreaterThan(0);
        expect(max).toBeLessThanOrEqual(f.maxAbsHU + 1);
        expect(Math.abs(sum / n - f.meanAbsHU)).toBeLessThan(0.05);
      }
    });
  }

  it('negative stored values survive (the corners of CTImage are -2000)', async () => {
    const fr = await decodeFrame(bytesOf(dir, 'CTImage_HTJ2KLossless_1.2.840.10008.1.2.4.201.dcm'), 0);
    expect(fr.pixels[0]).toBe(-2000);
    const jxl = await decodeFrame(bytesOf(dir, 'CTImage_JPEGXLLossless_1.2.840.10008.1.2.4.110.dcm'), 0);
    expect(jxl.pixels[0]).toBe(-2000);
  });

  it('corrupt HTJ2K and JPEG XL codestreams are reported by the codec, which still works afterwards', async () => {
    for (const [f, start, codec] of [
      ['CTImage_HTJ2KLossless_1.2.840.10008.1.2.4.201.dcm', [0xff, 0x4f, 0xff, 0x51], /OpenJPH/],
      ['CTImage_JPEGXLLossless_1.2.840.10008.1.2.4.110.dcm', [0xff, 0x0a], /libjxl/],
    ] as const) {
      const b = bytesOf(dir, f).slice();
      const p = b.findIndex((_, i) => start.every((v, k) => b[i + k] === v));
      expect(p).toBeGreaterThan(0);
      b.fill(0x55, p + start.length, p + 80);
      const err = (await decodeFrame(b, 0, { source: 'garbled.dcm' }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(PixelDataError);
      expect(err.message).toMatch(/^garbled\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.(201|110) /);
      expect(err.message.includes('corrupt') || codec.test(err.message), err.message).toBe(true);
      const ok = await decodeFrame(bytesOf(dir, f), 0);
      expect(ok.pixels[0]).toBe(-2000);
    }
  });
});

describe('pixel decoding: errors name the file, the transfer syntax and the problem', () => {
  const file = (f: string) => bytesOf(committedDir, f);

  it('no pixel data', async () => {
    await expect(decodeFrame(file('no-pixel-data.dcm'), 0, { source: 'no-pixel-data.dcm' })).rejects.toThrow(
      /^no-pixel-data\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.1 \(Explicit VR Little Endian\): no pixel data element/,
    );
  });

  it('frame index out of range', async () => {
    await expect(decodeFrame(file('CT1_J2KR'), 1, { source: 'CT1_J2KR' })).rejects.toThrow(/CT1_J2KR: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90 .*frame index 1 is out of range: the object has 1 frame/);
  });

  it('truncated native pixel data', async () => {
    const b = file(ORIGINAL).subarray(0, 300_000);
    const err = await decodeFrame(b, 0, { source: 'cut.dcm' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelDataError);
    expect((err as Error).message).toMatch(/^cut\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.1 \(Explicit VR Little Endian\): truncated pixel data/);
  });

  it('truncated pixel data of a real broken file (pydicom MR_truncated.dcm)', async () => {
    const f = join(fixtures, 'pydicom-broken', 'MR_truncated.dcm');
    await expect(readFrameHU(f, 0)).rejects.toThrow(/MR_truncated\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.1 .*truncated pixel data: the file declares 8192 bytes/);
  });

  it('truncated encapsulated pixel data', async () => {
    const whole = file('CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm');
    await expect(decodeFrame(whole.subarray(0, whole.length - 5000), 0, { source: 'cut-jls.dcm' })).rejects.toThrow(
      /^cut-jls\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.80 \(JPEG-LS Lossless\): truncated pixel data/,
    );
  });

  it('corrupt JPEG: start-of-frame marker destroyed', async () => {
    const b = file('CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm').slice();
    for (let i = 0; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1] === 0xc0) b[i + 1] = 0x00;
    await expect(decodeFrame(b, 0, { source: 'nosof.dcm' })).rejects.toThrow(/^nosof\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.50 .*no JPEG start-of-frame marker/);
  });

  it('corrupt JPEG-LS and JPEG 2000 codestreams are reported by the codec', async () => {
    for (const [f, codec] of [
      ['CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm', /CharLS/],
      ['CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm', /OpenJPEG/],
    ] as const) {
      const b = file(f).slice();
      // Overwrite the codestream headers just after the first fragment starts.
      const p = b.findIndex((v, i) => (v === 0xff && b[i + 1] === 0xd8 && b[i + 2] === 0xff) || (v === 0xff && b[i + 1] === 0x4f && b[i + 2] === 0xff && b[i + 3] === 0x51));
      b.fill(0x55, p + 2, p + 60);
      const err = (await decodeFrame(b, 0, { source: 'garbled.dcm' }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(PixelDataError);
      expect(err.message).toMatch(/^garbled\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.(80|90) /);
      expect(err.message.includes('corrupt') || codec.test(err.message), err.message).toBe(true);
    }
    // The codec still works after a failure.
    const ok = await decodeFrame(file('CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm'), 0);
    expect(ok.rows).toBe(512);
  });

  it('unsupported transfer syntax', async () => {
    const b = file('CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm').slice();
    const uid = new TextEncoder().encode('1.2.840.10008.1.2.4.50');
    const at = b.findIndex((_, i) => uid.every((c, k) => b[i + k] === c));
    b[at + uid.length - 1] = '2'.charCodeAt(0); // .52: retired hierarchical JPEG
    await expect(decodeFrame(b, 0, { source: 'hier.dcm' })).rejects.toThrow(/^hier\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.52 \(unknown transfer syntax\): unsupported transfer syntax/);
  });

  it('colour images have no HU', async () => {
    const fr = await decodeFrame(file('TestPattern_JPEG-LS-Lossless.dcm'), 0);
    expect(() => frameToHU(fr, 'TestPattern_JPEG-LS-Lossless.dcm')).toThrow(/TestPattern_JPEG-LS-Lossless\.dcm: .*not a greyscale image \(PhotometricInterpretation RGB/);
  });

  it('a missing file', async () => {
    await expect(readFrameHU(join(committedDir, 'nope.dcm'))).rejects.toThrow(/nope\.dcm: .*cannot read the file/);
  });
});

describe.skipIf(!hasSharedData || !existsSync(fullDir))(`pixel decoding: every file of ${fullDir} (skipped: ../shared/data not found)`, () => {
  it('expected.json describes every file of the folder', () => {
    const names = new Set(expected.files.map((e) => e.file));
    for (const f of readdirSync(fullDir)) expect(names.has(f), f).toBe(true);
  });
  for (const ref of expected.files.filter((e) => !e.committed && !e.noPixelData)) {
    it(`${ref.file} (${TRANSFER_SYNTAXES[ref.transferSyntaxUid]?.name ?? ref.transferSyntaxUid}) matches ${ref.reference}`, () => checkFile(ref, fullDir));
  }
});

const pydicomData = join(sharedData, 'pydicom-data-subset', 'data_store', 'data');
describe.skipIf(!hasSharedData || !existsSync(pydicomData))(`pixel decoding: multi-frame objects of ${pydicomData} (skipped: ../shared/data not found)`, () => {
  // SHA-256 of all frames' stored values as int32 little endian, computed with pydicom 2.3.1
  // (numpy handler) on the uncompressed file of each set.
  const sets: [string, string[], string][] = [
    ['emri_small.dcm', ['emri_small_big_endian.dcm', 'emri_small_RLE.dcm', 'emri_small_jpeg_ls_lossless.dcm', 'emri_small_jpeg_2k_lossless.dcm'], '8be61098d4942b61'],
    ['liver.dcm', ['liver_rle.dcm', 'liver_expb.dcm', 'liver_j2k.dcm', 'liver_deflate.dcm'], '4bc3b73a7b2e4430'],
    ['liver_nonbyte_aligned.dcm', [], 'b8505535852d7554'],
  ];
  for (const [base, variants, prefix] of sets) {
    it(`${base} and its ${variants.length} other encodings decode all frames to the pydicom values`, async () => {
      for (const f of [base, ...variants]) {
        const src = openPixelSource(bytesOf(pydicomData, f), { source: f });
        const h = createHash('sha256');
        for (let i = 0; i < src.numberOfFrames; i++) h.update(new Uint8Array(Int32Array.from((await src.decode(i)).pixels).buffer));
        expect(h.digest('hex').slice(0, 16), f).toBe(prefix);
      }
    });
  }
});
