import { describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { channels, dispatch, eventNames, events, isEventName, parseArgs } from '../src/shared/contract';
import { CSP } from '../src/shared/csp';
import { decodeMessage, encodeMessage } from '../src/shared/wire';
import { createServices } from '../src/host/services';
import { root, tempDir } from './helpers';
import { globSync } from './glob';

describe('the IPC contract', () => {
  it('has a handler for every channel, and nothing else', async () => {
    const tmp = tempDir();
    const services = createServices({ mode: 'server', dataDir: tmp.dir, dbPath: join(tmp.dir, 'lib.sqlite'), emit: () => {} });
    try {
      expect(Object.keys(services.handlers).sort()).toEqual(Object.keys(channels).sort());
    } finally {
      await services.close();
      tmp.cleanup();
    }
  });

  it('bounds every argument of every channel: a tuple of strict objects, bounded strings and arrays, no open records', () => {
    const problems: string[] = [];
    // Walks a zod 4 schema; `where` is the path reported for a problem.
    const walk = (schema: unknown, where: string): void => {
      const s = schema as { def: Record<string, unknown> & { type: string }; maxLength?: number | null };
      const def = s.def;
      const checks = (def.checks ?? []) as { _zod: { def: { check: string } } }[];
      const has = (check: string) => checks.some((c) => c._zod.def.check === check);
      switch (def.type) {
        case 'tuple':
          (def.items as unknown[]).forEach((x, i) => walk(x, `${where}[${i}]`));
          if (def.rest) problems.push(`${where}: open tuple`);
          return;
        case 'object': {
          const catchall = def.catchall as { def: { type: string } } | undefined;
          if (catchall?.def.type !== 'never') problems.push(`${where}: object not strict`);
          for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) walk(v, `${where}.${k}`);
          return;
        }
        case 'array':
          if (!has('max_length')) problems.push(`${where}: array without a maximum length`);
          walk(def.element, `${where}[]`);
          return;
        case 'string':
          if (!(typeof s.maxLength === 'number' && s.maxLength <= 4096)) problems.push(`${where}: string without a maximum length`);
          return;
        case 'union':
          (def.options as unknown[]).forEach((o, i) => walk(o, `${where}|${i}`));
          return;
        case 'optional':
        case 'nullable':
        case 'default':
        case 'prefault':
          walk(def.innerType, where);
          return;
        case 'pipe':
          // .transform() after validation (e.g. a run config filling in its recipe's fields): the
          // input side is what checks the argument.
          walk(def.in, where);
          return;
        case 'custom':
          // z.instanceof(Uint8Array) with a size refinement
          if (checks.length === 0) problems.push(`${where}: custom type without a bound`);
          return;
        case 'number':
        case 'boolean':
        case 'literal':
        case 'enum':
          return;
        default:
          problems.push(`${where}: ${def.type} is not bounded`);
      }
    };
    for (const [name, schema] of Object.entries(channels)) walk(schema, name);
    expect(problems).toEqual([]);
  });

  it('rejects bad arguments with a message naming the channel and the argument', () => {
    expect(() => parseArgs('viewer.slices', [1, -1, 4])).toThrow(/viewer\.slices: argument 1/);
    expect(() => parseArgs('library.series', [{ maxThickness: 'thin' }])).toThrow(/library\.series: argument 0\.maxThickness/);
    expect(() => parseArgs('library.series', [{ evil: true }])).toThrow(/library\.series/);
    expect(parseArgs('library.series', [{ modality: 'CT', maxThickness: 3 }])).toEqual([{ modality: 'CT', maxThickness: 3 }]);
    // folder ids under the data folder: no separators, and not '.' or '..'
    for (const ch of ['experiments.report', 'experiments.resume', 'probe.result', 'probe.cancel'] as const) {
      for (const bad of ['..', '.', 'a/b', '../x']) expect(() => parseArgs(ch, [bad]), `${ch} ${bad}`).toThrow(new RegExp(ch.replace('.', '\\.')));
      expect(parseArgs(ch, ['2026-11-27-probe.2'])).toEqual(['2026-11-27-probe.2']);
    }
  });

  it('answers unknown channels and handler errors with an error envelope, never a throw', async () => {
    const handlers = { 'app.info': () => { throw new Error('boom'); } } as never;
    expect(await dispatch(handlers, 'nope', [])).toEqual({ ok: false, error: { code: 'invalid-argument', message: 'unknown channel: nope' } });
    expect(await dispatch(handlers, 'app.info', [])).toEqual({ ok: false, error: { code: 'internal', message: 'boom' } });
    expect(await dispatch(handlers, 'library.addFolder', [42])).toMatchObject({ ok: false, error: { code: 'invalid-argument' } });
  });

  it('derives the event names from one constant, and every event the services emit and the renderer listens to is known', () => {
    expect(eventNames).toEqual(Object.keys(events));
    expect(eventNames.every(isEventName)).toBe(true);
    expect(isEventName('run.evnt')).toBe(false);
    expect(isEventName('toString')).toBe(false);
    // Names as they appear in the code: emit('name', ...) in the host, api.on('name', ...) in the renderer.
    const used = (dir: string, pattern: RegExp) => {
      const names = new Set<string>();
      for (const file of globSync(join(root, dir), /\.(ts|svelte)$/)) for (const m of readFileSync(file, 'utf8').matchAll(pattern)) names.add(m[1]);
      return names;
    };
    const emitted = used('src/host', /\bemit\(\s*'([^']+)'/g);
    const listened = used('src/renderer/src', /\bapi\.on\(\s*'([^']+)'/g);
    expect([...emitted].filter((n) => !isEventName(n))).toEqual([]);
    expect([...listened].filter((n) => !isEventName(n))).toEqual([]);
    // ... and no event is declared that nothing sends or nothing hears.
    expect([...emitted].sort()).toEqual([...eventNames].sort());
    expect([...listened].sort()).toEqual([...eventNames].sort());
  });
});

describe('the renderer CSP', () => {
  it('is the same in index.html (Electron) and in the server header', () => {
    const html = readFileSync(join(root, 'src', 'renderer', 'index.html'), 'utf8');
    const meta = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
    expect(meta).toBe(CSP);
    expect(CSP).not.toMatch(/https?:|\*/);
  });
});

describe('the wire format', () => {
  it('round-trips JSON with typed arrays, aligned and copied', () => {
    const msg = { id: 7, a: { data: Int16Array.from([-32768, 0, 1234]), f: Float32Array.from([0.5, -1]) }, s: 'é', n: null };
    const back = decodeMessage<typeof msg>(encodeMessage(msg));
    expect(back.id).toBe(7);
    expect(back.s).toBe('é');
    expect(back.a.data).toBeInstanceOf(Int16Array);
    expect([...back.a.data]).toEqual([-32768, 0, 1234]);
    expect([...back.a.f]).toEqual([0.5, -1]);
  });

  it('gives views into the message instead of copies when asked, where aligned', () => {
    const bytes = encodeMessage({ d: Int16Array.from([1, -2, 3]), f: Float64Array.from([0.25]) });
    const back = decodeMessage<{ d: Int16Array; f: Float64Array }>(bytes, { views: true });
    expect(back.d.buffer).toBe(bytes.buffer);
    expect([...back.d]).toEqual([1, -2, 3]);
    bytes[bytes.length - 16] = 9; // the Int16Array's first byte
    expect(back.d[0]).toBe(9);
    // One byte off the 8-byte alignment: a Float64Array cannot view it, so it is a copy.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const off = decodeMessage<{ d: Int16Array; f: Float64Array }>(shifted.subarray(1), { views: true });
    expect(off.f.buffer).not.toBe(shifted.buffer);
    expect([...off.f]).toEqual([0.25]);
  });

  it('parses a message without binary references without a reviver, and finds one spelled with escapes', () => {
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, patientId: `P-${i}`, description: 'Thorax 1.0 B30f é', spacing: [0.7, 0.7] }));
      expect(decodeMessage(encodeMessage({ id: 1, envelope: { ok: true, value: rows } }))).toEqual({ id: 1, envelope: { ok: true, value: rows } });
      expect(parse.mock.calls.at(-1)).toHaveLength(1);
      // "\u0024bin" is "$bin": still a binary reference, through the reviver.
      const bytes = encodeMessage({ x: Uint8Array.from([5, 6]) });
      const n = new DataView(bytes.buffer).getUint32(0, true);
      const json = new TextDecoder().decode(bytes.subarray(4, 4 + n)).replace('"$bin"', '"\\u0024bin"');
      const j = new TextEncoder().encode(json);
      const head = (4 + j.length + 7) & ~7;
      const out = new Uint8Array(head + 8);
      new DataView(out.buffer).setUint32(0, j.length, true);
      out.set(j, 4);
      out.set([5, 6], head);
      const back = decodeMessage<{ x: Uint8Array }>(out);
      expect(parse.mock.calls.at(-1)).toHaveLength(2);
      expect(back.x).toBeInstanceOf(Uint8Array);
      expect([...back.x]).toEqual([5, 6]);
    } finally {
      parse.mockRestore();
    }
  });

  it('refuses a message whose parts exceed its length', () => {
    const bytes = encodeMessage({ d: new Uint8Array(64) });
    expect(() => decodeMessage(bytes.subarray(0, bytes.length - 8))).toThrow(/exceeds/);
  });

  it('treats inherited names and bad offsets in a binary reference as hostile input', () => {
    const raw = (json: string) => {
      const j = new TextEncoder().encode(json);
      const out = new Uint8Array(((4 + j.length + 7) & ~7) + 16);
      new DataView(out.buffer).setUint32(0, j.length, true);
      out.set(j, 4);
      return out;
    };
    // An inherited property name is not a typed-array type: the object stays plain data.
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(decodeMessage(raw(`{"x":{"$bin":0,"type":"${type}","offset":0,"length":1}}`))).toEqual({ x: { $bin: 0, type, offset: 0, length: 1 } });
    }
    for (const [offset, length] of [[-8, 1], [0.5, 1], [0, -1], [0, 1.5], ['0', 1], [0, 1e300]]) {
      expect(() => decodeMessage(raw(`{"x":{"$bin":0,"type":"Uint8Array","offset":${JSON.stringify(offset)},"length":${JSON.stringify(length)}}}`))).toThrow(/wire: binary part/);
    }
  });
});

describe('the wire format with Node buffers', () => {
  it('decodes binary parts from a Buffer that is a view into a larger pool', () => {
    const msg = { id: 3, bytes: Uint8Array.from([9, 8, 7, 6, 5]) };
    const encoded = encodeMessage(msg);
    const pool = Buffer.alloc(encoded.length + 100, 0xee);
    Buffer.from(encoded).copy(pool, 37);
    const view = pool.subarray(37, 37 + encoded.length);
    const back = decodeMessage<typeof msg>(view);
    expect([...back.bytes]).toEqual([9, 8, 7, 6, 5]);
    expect(back.bytes.byteOffset).toBe(0);
  });
});
