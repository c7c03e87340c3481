/** Licences of shared weights are SPDX identifiers or expressions (src/core/licence.ts). */
import { describe, expect, it } from 'vitest';
import { checkLicence, COMMON_LICENCES } from '../../src/core/licence';

describe('checkLicence', () => {
  it('accepts SPDX identifiers and expressions', () => {
    for (const l of [...COMMON_LICENCES, 'MIT OR Apache-2.0', '(MIT AND CC-BY-4.0)', 'GPL-2.0-only WITH Classpath-exception-2.0', 'Apache-2.0+', 'LicenseRef-our-lab-terms'])
      expect(checkLicence(l), l).toMatchObject({ ok: true });
    expect(checkLicence('  MIT OR Apache-2.0 ')).toEqual({ ok: true, licence: 'MIT OR Apache-2.0', ids: ['MIT', 'Apache-2.0'] });
  });

  it('refuses "banana", naming the word and the list', () => {
    const c = checkLicence('banana');
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.message).toMatch(/"banana" is not on the SPDX licence list/);
    const d = checkLicence('MIT OR banana');
    if (!d.ok) expect(d.message).toMatch(/"banana" is not on the SPDX licence list/);
    expect(d.ok).toBe(false);
  });

  it('says how to spell an identifier given in the wrong case, and refuses deprecated ones', () => {
    const c = checkLicence('mit');
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.message).toMatch(/case-sensitive: write "MIT"/);
    const g = checkLicence('GPL-2.0');
    expect(g.ok).toBe(false);
    if (!g.ok) expect(g.message).toMatch(/deprecated/);
  });

  it('refuses an empty, overlong or malformed expression', () => {
    expect(checkLicence('   ')).toMatchObject({ ok: false, message: expect.stringMatching(/choose the licence/) });
    expect(checkLicence('MIT '.repeat(40))).toMatchObject({ ok: false, message: expect.stringMatching(/at most 100/) });
    expect(checkLicence('MIT AND')).toMatchObject({ ok: false, message: expect.stringMatching(/not a valid SPDX licence expression/) });
  });
});
