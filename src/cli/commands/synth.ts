/** `ctssl synth`: write a labelled synthetic chest CT cohort (DICOM, LIDC XML, DICOM SEG, RSNA CSV, manifest). */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { writeCohort } from '../../library/synth/synth-writer';
import { defaultOptions, DEFAULT_GROUPS, type SynthOptions, type TraitAttribute } from '../../core/synth/plan';
import { nonNegativeInt, out, positiveInt, positiveNumber } from '../common';
import { bar, interruptible, progressLine } from '../progress';

/** "2" or "0-3" -> [min, max]. */
export function intRange(v: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected a number or a range like 0-3');
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi < lo) throw new InvalidArgumentError(`range ${v} is empty`);
  return [lo, hi];
}

/** "12" or "8-20" (mm, decimals allowed) -> [min, max]. */
export function numberRange(v: string): [number, number] {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError('expected a number or a range like 8-20');
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi < lo) throw new InvalidArgumentError(`range ${v} is empty`);
  return [lo, hi];
}

function fraction(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a fraction in [0, 1]');
  return n;
}

function spacing(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  return positiveNumber(v);
}

/** "A,B,C" (equal weights) or "A:0.5,B:0.3,C:0.2". */
function groups(v: string): SynthOptions['groups'] {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new InvalidArgumentError('expected group names, e.g. "A,B,C" or "A:0.6,B:0.4"');
  return parts.map((p) => {
    const [name, w] = p.split(':');
    const weight = w === undefined ? 1 : Number(w);
    if (!(weight > 0)) throw new InvalidArgumentError(`group "${name}" needs a positive weight`);
    return { name: name.trim(), weight };
  });
}

export function register(program: Command): void {
  program
    .command('synth')
    .description('Generate a labelled synthetic chest CT cohort: DICOM series, LIDC XML, DICOM SEG, RSNA PE train.csv, manifest.json')
    .requiredOption('--out <dir>', 'output folder (new or empty)')
    .requiredOption('--patients <n>', 'number of patients', positiveInt)
    .requiredOption('--seed <s>', 'seed: the same seed and options give byte-identical files', nonNegativeInt)
    .option('--slices <n>', 'slices per series', positiveInt, 64)
    .option('--size <px>', 'rows = columns', positiveInt, 256)
    .option('--thickness <mm>', 'slice thickness = spacing, mm', positiveNumber, 2.5)
    .option('--pixel-spacing <mm|auto>', 'pixel spacing in mm, or auto to fit the field of view to the body', spacing, 'auto' as number | 'auto')
    .addOption(new Option('--nodules-per-patient <n|min-max>', 'nodules per patient (diameters: --nodule-size)').argParser(intRange).default([0, 3], '0-3'))
    .option('--nodule-size <mm|min-max>', 'nodule diameters, mm, log-uniform in the range (default 3-30, within 1-60)', numberRange)
    .option('--nodule-contrast <k>', "scale of a nodule's attenuation difference from the tissue it replaces: 1 = solid 10-55 HU, ground glass -690 to -520 HU (default); 0.5 = halfway to the lung; in (0, 2]", positiveNumber)
    .option('--pe-fraction <f>', 'fraction of studies with pulmonary emboli', fraction, 0.5)
    .addOption(new Option('--trait <attribute>', 'tie a subtle visual trait (thicker subcutaneous fat, wider body) to a patient attribute').choices(['none', 'sex', 'ethnic-group', 'age']).default('none'))
    .option('--trait-value <v>', 'which value gets the trait: M/F, a group name (default: the second group), or an age in years (default 60: that age and older)')
    .option('--trait-strength <k>', '1 = subtle (fat x1.25, width x1.04); scales linearly', positiveNumber, 1)
    .addOption(new Option('--readers <n|min-max>', 'simulated LIDC readers per series (1-4)').argParser(intRange).default([1, 4], '1-4'))
    .addOption(new Option('--studies <n>', 'studies per patient (2 adds a follow-up study)').choices(['1', '2']).default('1'))
    .option('--groups <list>', `ethnic group labels (EthnicGroup), "A,B" or "A:0.7,B:0.3" (default: ${DEFAULT_GROUPS.map((g) => `${g.name}:${g.weight}`).join(',')})`, groups)
    .option('--jobs <n>', 'worker threads (default: 1 below 4 patients, else one per core, at most 4)', positiveInt)
    .option('--overwrite', 'replace a cohort previously written to --out')
    .option('--json', 'print a JSON summary on stdout')
    .action(
      async (o: {
        out: string;
        patients: number;
        seed: number;
        slices: number;
        size: number;
        thickness: number;
        pixelSpacing: number | 'auto';
        nodulesPerPatient: [number, number];
        noduleSize?: [number, number];
        noduleContrast?: number;
        peFraction: number;
        trait: TraitAttribute;
        traitValue?: string;
        traitStrength: number;
        readers: [number, number];
        studies: string;
        groups?: SynthOptions['groups'];
        jobs?: number;
        overwrite?: boolean;
        json?: boolean;
      }) => {
        const options: SynthOptions = {
          ...defaultOptions(o.patients, o.seed),
          slices: o.slices,
          size: o.size,
          thickness: o.thickness,
          pixelSpacing: o.pixelSpacing,
          nodules: o.nodulesPerPatient,
          ...(o.noduleSize !== undefined && { noduleSize: o.noduleSize }),
          ...(o.noduleContrast !== undefined && { noduleContrast: o.noduleContrast }),
          peFraction: o.peFraction,
          trait: o.trait,
          traitValue: o.traitValue ?? '',
          traitStrength: o.traitStrength,
          readers: o.readers,
          studies: Number(o.studies),
          ...(o.groups ? { groups: o.groups } : {}),
        };
        const line = progressLine();
        const ac = interruptible(() => line.done('cancelling...'));
        try {
          const t0 = Date.now();
          const summary = await writeCohort(options, o.out, {
            jobs: o.jobs,
            overwrite: o.overwrite,
            signal: ac.signal,
            onProgress: (d, n) => {
              const s = (Date.now() - t0) / 1000;
              line.update(`${bar(d / n)} ${d}/${n} patients  ${s.toFixed(1)} s`);
            },
          });
          line.done();
          out(!!o.json, summary, () =>
            [
              `Wrote ${summary.patients} patients, ${summary.studies} studies (${summary.ctFiles} CT files, ${summary.files} files) in ${summary.seconds} s (${summary.filesPerSecond} files/s, ${summary.jobs} worker${summary.jobs > 1 ? 's' : ''})`,
              `Nodules: ${summary.nodules}; studies with PE: ${summary.peStudies} (${summary.peSlices} PE-positive slices)`,
              `Folder: ${summary.out}`,
              `Ground truth: ${summary.manifest}`,
              `RSNA labels: ${summary.csv}`,
            ].join('\n'),
          );
        } finally {
          line.done();
        }
      },
    );
}
