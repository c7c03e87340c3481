/**
 * The PyTorch checkpoint reader (src/core/torch) on the checkpoints Debian's python3-torch wrote
 * (test/fixtures/torch, made by make.py) and on hostile ones written byte by byte here: unknown
 * classes kept opaque and never called, REDUCE of anything off the allow-list refused, opcodes
 * torch.save never writes refused, bounds on memo, nesting and objects, truncated archives and
 * pickles, storages whose size lies, and state dicts with a missing, unknown or mis-shaped key,
 * each refused naming the key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  matchStateDict,
  moduleImageSize,
  openTorchCheckpoint,
  PDict,
  POpaque,
  readFloat32Tensor,
  readPickle,
  readReferenceCheckpoint,
  referenceKeys,
  type RandomAccess,
} from '../../../src/core/torch';
import { vqvaeParamCount } from '../../../src/core/ml/specs/vqvae';
import { root } from '../../helpers';
import { fakeCheckpoint, type FakeTensor, PickleBytes } from './torch-writer';

const dir = join(root, 'test', 'fixtures', 'torch');
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
const access = (b: Uint8Array): RandomAccess => ({ size: b.length, read: (p, l) => b.subarray(p, p + l) });
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
};

/** The fixture's state dict as fake tensors (real values), for variants. */
function realTensors(): [string, FakeTensor][] {
  const r = access(bytesOf('last.pth.tar'));
  const ck = openTorchCheckpoint(r);
  return ck.tensors.map((t) => [t.key, { shape: t.shape, data: t.dtype === 'float32' ? readFloat32Tensor(r, ck, t) : new Float32Array(1) }]);
}

describe('the reference naming rule', () => {
  it("gives the 302 keys and shapes of the paper's checkpoint (shared/docs/reference-state-dict.json), in its order", () => {
    const ref = JSON.parse(readFileSync(join(dir, 'reference-state-dict.json'), 'utf8')) as Record<string, number[]>;
    const keys = referenceKeys({ channels: 3, widths: [256, 512], depth: 18, latent: 64, codes: 512 });
    expect(keys.length).toBe(302);
    expect(keys.map((k) => [k.torch, k.shape])).toEqual(Object.entries(ref));
    const m = matchStateDict(new Map(Object.entries(ref)));
    expect(m.preset).toBe('paper');
    expect(m.config.channels).toBe(3);
    expect(vqvaeParamCount(m.config)).toBe(101_353_673);
    expect(keys.filter((k) => k.ours === null).length).toBe(43); // num_batches_tracked of the 43 BatchNorms
  });

  it('refuses a missing, an unknown and a mis-shaped key, naming it', () => {
    const ref = JSON.parse(readFileSync(join(dir, 'reference-state-dict.json'), 'utf8')) as Record<string, number[]>;
    const without = new Map(Object.entries(ref));
    without.delete('decoder.7.resblock.1.running_var');
    expect(refusal(() => matchStateDict(without))).toBe('missing key decoder.7.resblock.1.running_var (the reference VQ-VAE with hidden_dims 256/512 and depth 18 has it)');
    const extra = new Map(Object.entries(ref)).set('decoder.22.0.weight', [3, 3, 4, 4]);
    expect(refusal(() => matchStateDict(extra))).toMatch(/^unknown key decoder\.22\.0\.weight: /);
    const bad = new Map(Object.entries(ref)).set('encoder.5.resblock.4.weight', [512, 512, 3, 3]);
    expect(refusal(() => matchStateDict(bad))).toBe('key encoder.5.resblock.4.weight has shape [512, 512, 3, 3], the reference model of this checkpoint expects [512, 512, 1, 1]');
    const other = new Map(Object.entries(ref)).set('vq_layer.embedding.weight', [1024, 64]);
    expect(refusal(() => matchStateDict(other))).toMatch(/num_embeddings 1024\) is none of this app's presets/);
  });
});

describe('checkpoints written by PyTorch', () => {
  it("reads the authors' format: model_state, the pickled module kept opaque, the optimizer state parsed and left", () => {
    const { checkpoint: ck, matched, weights } = readReferenceCheckpoint(access(bytesOf('last.pth.tar')));
    expect(ck.stateKey).toBe('model_state');
    expect(ck.epoch).toBe(5);
    expect(ck.otherKeys).toEqual(['epoch', 'model', 'optimizer_state']);
    expect(ck.report.opaqueClasses).toContain('VAE.models.vq_vae.VQVAE');
    expect(ck.report.opaqueClasses).toContain('torch.nn.modules.conv.Conv2d');
    expect(ck.zip.prefix).toBe('last.pth'); // torch 1.13 names the folder after the file; 2.x writes 'archive'
    expect(matched.preset).toBe('tiny');
    expect(matched.config.channels).toBe(3);
    expect(moduleImageSize(ck)).toBe(32);
    expect(weights.length).toBe(matched.mapping.filter((m) => m.ours).length);
    // a conv weight in our layout: [kh, kw, in, out]
    expect(weights.find((w) => w.name === 'encoder.e1.conv.weight')!.shape).toEqual([4, 4, 3, 8]);
    expect(weights.find((w) => w.name === 'decoder.d3.convt.weight')!.shape).toEqual([4, 4, 8, 16]);
    const model = (ck.root as PDict).map.get('model');
    expect(model).toBeInstanceOf(POpaque);
    expect((model as POpaque).cls.qualified).toBe('VAE.models.vq_vae.VQVAE');
  });

  it('reads a bare state_dict (torch.save(model.state_dict()))', () => {
    const { checkpoint: ck, matched } = readReferenceCheckpoint(access(bytesOf('one-channel.pth')));
    expect(ck.stateKey).toBe('(top level)');
    expect(ck.epoch).toBeNull();
    expect(matched.config.channels).toBe(1);
  });

  it('refuses the legacy (pre-1.6) format, saying how to convert it', () => {
    expect(refusal(() => openTorchCheckpoint(access(bytesOf('legacy.pth.tar'))))).toMatch(/^the legacy PyTorch format .* save it again with torch\.save/);
    expect(refusal(() => openTorchCheckpoint(access(new TextEncoder().encode('hello, not a checkpoint'))))).toMatch(/^not a PyTorch checkpoint/);
  });

  it('refuses truncated archives', () => {
    const b = bytesOf('last.pth.tar');
    for (const cut of [b.length - 10, Math.floor(b.length / 2), 100]) {
      expect(refusal(() => openTorchCheckpoint(access(b.subarray(0, cut))))).toMatch(/corrupt or truncated zip/);
    }
  });
});

describe('hostile pickles', () => {
  const p = () => new PickleBytes().op(0x80, 0x02);

  it('keeps an unknown class opaque and never calls it (NEWOBJ + BUILD)', () => {
    const bytes = p().op(0x7d).str('model').global('os', 'system').op(0x29, 0x81).op(0x7d).str('cmd').str('rm -rf /').op(0x73, 0x62, 0x73, 0x2e).bytes();
    const { value, report } = readPickle(bytes);
    const obj = (value as PDict).map.get('model') as POpaque;
    expect(obj).toBeInstanceOf(POpaque);
    expect(obj.cls.qualified).toBe('os.system');
    expect((obj.state as PDict).map.get('cmd')).toBe('rm -rf /');
    expect(report.opaqueClasses).toEqual(['os.system']);
  });

  it("keeps torch.device (a module's attribute) as data", () => {
    const bytes = p().global('torch', 'device').str('cuda').int(0).op(0x86, 0x52, 0x2e).bytes();
    const d = readPickle(bytes).value as POpaque;
    expect(d.cls.qualified).toBe('torch.device');
    expect(refusal(() => readPickle(p().global('torch', 'device').op(0x5d, 0x85, 0x52, 0x2e).bytes()))).toMatch(/torch\.device with arguments other than a name/);
  });

  it('refuses REDUCE on a callable off the allow-list, naming it', () => {
    for (const [mod, name] of [['os', 'system'], ['builtins', 'exec'], ['builtins', 'eval'], ['subprocess', 'Popen'], ['torch', 'load']]) {
      const bytes = p().global(mod, name).str('touch /tmp/pwned').op(0x85, 0x52, 0x2e).bytes();
      expect(refusal(() => readPickle(bytes))).toMatch(new RegExp(`^pickle: REDUCE at byte \\d+: REDUCE would call ${mod}\\.${name}, which is not an allowed callable: refused`));
    }
    // REDUCE on an opaque object (a "callable" built by NEWOBJ)
    const viaObj = p().global('os', 'system').op(0x29, 0x81).op(0x29, 0x52, 0x2e).bytes();
    expect(refusal(() => readPickle(viaObj))).toMatch(/REDUCE on something that is not a named callable: refused/);
  });

  it('refuses opcodes torch.save never writes (INST, OBJ, EXT1, text opcodes) by name', () => {
    const cases: [number[], string][] = [
      [[0x28, ...new TextEncoder().encode('i os\nsystem\n'), 0x2e], 'INST'],
      [[0x28, 0x4e, 0x6f, 0x2e], 'OBJ'],
      [[0x82, 1, 0x2e], 'EXT1'],
      [[0x49, 0x31, 0x0a, 0x2e], 'INT'],
      [[0x50, 0x31, 0x0a, 0x2e], 'PERSID'],
    ];
    for (const [ops, name] of cases) expect(refusal(() => readPickle(p().op(...ops).bytes()))).toMatch(new RegExp(`^pickle: ${name} at byte \\d: not an opcode torch.save writes: refused`));
    expect(refusal(() => readPickle(p().op(0xff).bytes()))).toMatch(/opcode 0xff at byte 2: an unknown opcode/);
  });

  it('bounds the memo, the nesting, the objects and the stack; refuses a truncated pickle', () => {
    const memo = p().op(0x5d);
    for (let i = 0; i < 20; i++) memo.op(0x71, i);
    expect(refusal(() => readPickle(memo.op(0x2e).bytes(), { limits: { maxMemo: 10 } }))).toMatch(/more than 10 memo entries/);
    expect(refusal(() => readPickle(p().op(0x68, 7, 0x2e).bytes()))).toMatch(/memo entry 7 was never stored/);
    const deep = p();
    for (let i = 0; i < 300; i++) deep.op(0x5d);
    for (let i = 0; i < 299; i++) deep.op(0x61);
    expect(refusal(() => readPickle(deep.op(0x2e).bytes()))).toMatch(/containers nested more than 200 deep/);
    const many = p();
    for (let i = 0; i < 200; i++) many.op(0x5d, 0x30);
    expect(refusal(() => readPickle(many.op(0x4e, 0x2e).bytes(), { limits: { maxObjects: 100 } }))).toMatch(/more than 100 objects/);
    const tall = p();
    for (let i = 0; i < 50; i++) tall.op(0x4e);
    expect(refusal(() => readPickle(tall.op(0x2e).bytes(), { limits: { maxStack: 20 } }))).toMatch(/a stack deeper than 20/);
    const real = bytesOf('last.pth.tar');
    const ck = openTorchCheckpoint(access(real));
    const pkl = ck.zip.entries.get('data.pkl')!;
    expect(refusal(() => readPickle(real.subarray(pkl.offset, pkl.offset + Math.floor(pkl.size / 2))))).toMatch(/truncated/);
    expect(refusal(() => readPickle(p().op(0x4e, 0x4e, 0x2e).bytes()))).toMatch(/exactly one value/);
  });
});

describe('hostile archives and state dicts', () => {
  it('round-trips the real weights through the test writer (so the variants below differ only by their flaw)', () => {
    const { matched } = readReferenceCheckpoint(access(fakeCheckpoint(realTensors())));
    expect(matched.preset).toBe('tiny');
  });

  it('refuses a storage whose size lies, a tensor reaching past its storage, a damaged storage', () => {
    const t = realTensors();
    const i = t.findIndex(([k]) => k === 'encoder.1.0.bias');
    const lie = t.map(([k, v], j): [string, FakeTensor] => [k, j === i ? { ...v, numel: 100 } : v]);
    expect(refusal(() => openTorchCheckpoint(access(fakeCheckpoint(lie))))).toBe(`storage ${i}: the pickle says 100 float32 values (400 bytes), its entry archive/data/${i} has 64 bytes`);
    const short = t.map(([k, v], j): [string, FakeTensor] => [k, j === i ? { shape: [16], data: new Float32Array(16), numel: 8, bytes: new Uint8Array(32) } : v]);
    expect(refusal(() => openTorchCheckpoint(access(fakeCheckpoint(short))))).toMatch(/a tensor of size \[16\] at offset 0 with stride \[1\] reaches element 15 of a storage of 8/);
    expect(refusal(() => readReferenceCheckpoint(access(fakeCheckpoint(t, { badCrc: `archive/data/${i}` }))))).toBe(`zip entry "archive/data/${i}": CRC-32 mismatch (the file is damaged)`);
  });

  it("reads a state dict saved from nn.DataParallel (every key under 'module.')", () => {
    const t = realTensors().map(([k, v]): [string, FakeTensor] => [`module.${k}`, v]);
    const { matched, weights } = readReferenceCheckpoint(access(fakeCheckpoint(t)));
    expect(matched.preset).toBe('tiny');
    expect(weights.find((w) => w.name === 'encoder.e1.conv.weight')!.shape).toEqual([4, 4, 3, 8]);
  });

  it('refuses a missing, an unknown and a mis-shaped key, naming it', () => {
    const t = realTensors();
    const missing = t.filter(([k]) => k !== 'decoder.1.resblock.1.running_var');
    expect(refusal(() => readReferenceCheckpoint(access(fakeCheckpoint(missing))))).toMatch(/^missing key decoder\.1\.resblock\.1\.running_var /);
    const unknown: [string, FakeTensor][] = [...t, ['decoder.9.extra.weight', { shape: [2] }]];
    expect(refusal(() => readReferenceCheckpoint(access(fakeCheckpoint(unknown))))).toMatch(/^unknown key decoder\.9\.extra\.weight: /);
    const misShaped = t.map(([k, v]): [string, FakeTensor] => [k, k === 'decoder.1.resblock.3.weight' ? { shape: [16, 8, 1, 1] } : v]);
    expect(refusal(() => readReferenceCheckpoint(access(fakeCheckpoint(misShaped))))).toBe(
      'key decoder.1.resblock.3.weight has shape [16, 8, 1, 1], the reference model of this checkpoint expects [16, 16, 1, 1]',
    );
    const notTensor = new PickleBytes().op(0x80, 0x02, 0x7d).str('model_state').op(0x7d).str('encoder.0.0.weight').str('hello').op(0x73, 0x73, 0x2e).bytes();
    expect(refusal(() => openTorchCheckpoint(access(fakeCheckpoint([], { pickle: notTensor }))))).toBe('model_state: key "encoder.0.0.weight" is not a tensor');
  });
});
