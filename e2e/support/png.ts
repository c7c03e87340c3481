/**
 * A minimal PNG decoder for the screenshots Playwright takes (8-bit greyscale/RGB/RGBA, optional
 * palette, non-interlaced), on node:zlib, so that tests can look at pixels without a dependency.
 */
import { inflateSync } from 'node:zlib';

export interface Image {
  width: number;
  height: number;
  /** RGBA, row after row. */
  data: Uint8Array;
}

export function decodePng(buf: Buffer): Image {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((b, i) => buf[i] === b)) throw new Error('not a PNG');
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = 0;
  let interlace = 0;
  let palette: Buffer | null = null;
  const idat: Buffer[] = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      depth = body[8];
      colorType = body[9];
      interlace = body[12];
    } else if (type === 'PLTE') palette = Buffer.from(body);
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  if (depth !== 8) throw new Error(`PNG bit depth ${depth} not supported`);
  if (interlace !== 0) throw new Error('interlaced PNG not supported');
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  if (!channels) throw new Error(`PNG colour type ${colorType} not supported`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[x - channels] : 0;
      const b = prev[x];
      const c = x >= channels ? prev[x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[x] = v & 0xff;
    }
    prev = out;
  }
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const s = i * channels;
    let r: number, g: number, b: number, al: number;
    if (colorType === 0) [r, g, b, al] = [pixels[s], pixels[s], pixels[s], 255];
    else if (colorType === 4) [r, g, b, al] = [pixels[s], pixels[s], pixels[s], pixels[s + 1]];
    else if (colorType === 2) [r, g, b, al] = [pixels[s], pixels[s + 1], pixels[s + 2], 255];
    else if (colorType === 6) [r, g, b, al] = [pixels[s], pixels[s + 1], pixels[s + 2], pixels[s + 3]];
    else {
      const k = pixels[s] * 3;
      [r, g, b, al] = [palette![k], palette![k + 1], palette![k + 2], 255];
    }
    data.set([r, g, b, al], i * 4);
  }
  return { width, height, data };
}

/** Luminance (0..255) at (x, y). */
export function luminance(img: Image, x: number, y: number): number {
  const i = (Math.round(y) * img.width + Math.round(x)) * 4;
  return 0.299 * img.data[i] + 0.587 * img.data[i + 1] + 0.114 * img.data[i + 2];
}

/** Mean and variance of luminance over a grid of samples (every `step` pixels). */
export function lumaStats(img: Image, step = 4): { mean: number; variance: number; samples: number[] } {
  const samples: number[] = [];
  for (let y = 0; y < img.height; y += step) for (let x = 0; x < img.width; x += step) samples.push(luminance(img, x, y));
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const variance = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / samples.length;
  return { mean, variance, samples };
}

/** Mean absolute luminance difference between two same-size images (sampled). */
export function meanAbsDiff(a: Image, b: Image, step = 4): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`image sizes differ: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  let sum = 0;
  let n = 0;
  for (let y = 0; y < a.height; y += step)
    for (let x = 0; x < a.width; x += step) {
      sum += Math.abs(luminance(a, x, y) - luminance(b, x, y));
      n++;
    }
  return sum / n;
}
