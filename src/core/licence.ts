/// <reference path="./spdx.d.ts" />
/**
 * Licences of shared weights, checked against the SPDX licence list (spdx-license-ids, the list
 * itself as published by SPDX, updated with it; parsed by spdx-expression-parse, so expressions
 * such as "MIT OR Apache-2.0" and "GPL-2.0-only WITH Classpath-exception-2.0" work). One check for
 * every door: the export service refuses what this refuses, and the app's export form shows the
 * same message before sending.
 */
import parse from 'spdx-expression-parse';
import ids from 'spdx-license-ids/index.json' with { type: 'json' };
import deprecatedIds from 'spdx-license-ids/deprecated.json' with { type: 'json' };

const byLower = new Map<string, string>([...ids, ...deprecatedIds].map((id) => [id.toLowerCase(), id]));
const deprecated = new Set(deprecatedIds);

/** The identifiers the licence field suggests first (the usual ones for model weights). */
export const COMMON_LICENCES = ['CC-BY-4.0', 'CC-BY-SA-4.0', 'CC-BY-NC-4.0', 'CC-BY-NC-SA-4.0', 'CC0-1.0', 'MIT', 'Apache-2.0', 'BSD-3-Clause'] as const;

export type LicenceCheck = { ok: true; licence: string; ids: string[] } | { ok: false; message: string };

function leaves(n: ReturnType<typeof parse>, out: string[] = []): string[] {
  if ('license' in n) out.push(n.license);
  else {
    leaves(n.left, out);
    leaves(n.right, out);
  }
  return out;
}

/**
 * Whether `text` is an SPDX licence identifier or expression. Refusals say what was wrong and how
 * to put it right ("banana" is not on the SPDX licence list; "mit" is spelt "MIT"; a deprecated
 * identifier such as "GPL-2.0" names its replacement's form).
 */
export function checkLicence(text: string): LicenceCheck {
  const licence = text.trim();
  if (licence === '') return { ok: false, message: 'licence: choose the licence the weights are shared under (an SPDX identifier such as CC-BY-4.0 or MIT)' };
  if (licence.length > 100) return { ok: false, message: `licence: at most 100 characters (got ${licence.length})` };
  let tree: ReturnType<typeof parse>;
  try {
    tree = parse(licence);
  } catch {
    // Say which word is wrong: the first that is neither an identifier nor an operator.
    const words = licence.split(/[\s()]+/).filter((w) => w && !/^(AND|OR|WITH)$/.test(w));
    const unknown = words.find((w) => !byLower.has(w.replace(/\+$/, '').toLowerCase()) && !/^(DocumentRef-[\w.-]+:)?LicenseRef-[\w.-]+$/.test(w));
    const fix = words.map((w) => byLower.get(w.replace(/\+$/, '').toLowerCase())).find((id, i) => id !== undefined && id !== words[i].replace(/\+$/, ''));
    if (unknown !== undefined)
      return { ok: false, message: `licence "${licence}": "${unknown}" is not on the SPDX licence list (https://spdx.org/licenses/): use an identifier such as ${COMMON_LICENCES.slice(0, 6).join(', ')}, or LicenseRef-<name> for a licence of your own` };
    if (fix !== undefined) return { ok: false, message: `licence "${licence}": SPDX identifiers are case-sensitive: write "${fix}"` };
    return { ok: false, message: `licence "${licence}" is not a valid SPDX licence expression (identifiers joined by AND, OR, WITH and parentheses, e.g. "MIT OR Apache-2.0")` };
  }
  const used = leaves(tree);
  const old = used.filter((id) => deprecated.has(id));
  if (old.length)
    return { ok: false, message: `licence "${licence}": ${old.map((id) => `"${id}"`).join(', ')} is deprecated on the SPDX licence list: use its current form (e.g. GPL-2.0-only or GPL-2.0-or-later)` };
  return { ok: true, licence, ids: used };
}
