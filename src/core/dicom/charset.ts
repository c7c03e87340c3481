/**
 * Text of a DICOM element in its SpecificCharacterSet (0008,0005). Pure: the web-standard
 * TextDecoder (Node, Chromium, Electron) does the decoding; latin1 is done by hand when a label
 * is not supported.
 *
 * Decoding is for finding identifiers, so where a file is ambiguous every plausible reading is
 * returned: the declared one, plus the UTF-8 reading when the bytes are valid UTF-8 (files that
 * say ISO_IR 100 but hold UTF-8 exist), plus latin1 when no character set is declared.
 */

/** DICOM defined terms (PS3.3 C.12.1.1.2) to WHATWG encoding labels. */
const SINGLE_BYTE: Record<string, string> = {
  'ISO_IR 6': 'ascii',
  'ISO_IR 100': 'latin1',
  'ISO_IR 101': 'iso-8859-2',
  'ISO_IR 109': 'iso-8859-3',
  'ISO_IR 110': 'iso-8859-4',
  'ISO_IR 144': 'iso-8859-5',
  'ISO_IR 127': 'iso-8859-6',
  'ISO_IR 126': 'iso-8859-7',
  'ISO_IR 138': 'iso-8859-8',
  'ISO_IR 148': 'windows-1254',
  'ISO_IR 203': 'iso-8859-15',
  'ISO_IR 166': 'windows-874',
  'ISO_IR 13': 'shift_jis',
  'ISO_IR 192': 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};

/** ISO 2022 terms: the G1 set's encoding once the escape sequences are removed. */
const ISO2022: Record<string, string> = {
  'ISO 2022 IR 6': 'ascii',
  'ISO 2022 IR 100': 'latin1',
  'ISO 2022 IR 101': 'iso-8859-2',
  'ISO 2022 IR 109': 'iso-8859-3',
  'ISO 2022 IR 110': 'iso-8859-4',
  'ISO 2022 IR 144': 'iso-8859-5',
  'ISO 2022 IR 127': 'iso-8859-6',
  'ISO 2022 IR 126': 'iso-8859-7',
  'ISO 2022 IR 138': 'iso-8859-8',
  'ISO 2022 IR 148': 'windows-1254',
  'ISO 2022 IR 203': 'iso-8859-15',
  'ISO 2022 IR 166': 'windows-874',
  'ISO 2022 IR 13': 'shift_jis',
  'ISO 2022 IR 149': 'euc-kr',
  'ISO 2022 IR 58': 'gb18030',
};

type Decoder = { decode(input: Uint8Array): string };
const decoders = new Map<string, Decoder | null>();
function decoder(label: string, fatal = false): Decoder | null {
  const key = `${label}|${fatal}`;
  if (!decoders.has(key)) {
    try {
      decoders.set(key, new TextDecoder(label === 'ascii' ? 'latin1' : label, { fatal }));
    } catch {
      decoders.set(key, null);
    }
  }
  return decoders.get(key)!;
}

export function latin1(bytes: Uint8Array): string {
  let s = '';
  if (bytes.length <= 256) {
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return s;
  }
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

function decodeWith(label: string, bytes: Uint8Array): string {
  if (label === 'latin1' || label === 'ascii') return latin1(bytes);
  const d = decoder(label);
  return d ? d.decode(bytes) : latin1(bytes);
}

/** The bytes as UTF-8, or null when they are not valid UTF-8. */
export function utf8OrNull(bytes: Uint8Array): string | null {
  const d = decoder('utf-8', true);
  if (!d) return null;
  try {
    return d.decode(bytes);
  } catch {
    return null;
  }
}

/** Removes ISO 2022 escape sequences (ESC, intermediates 0x20-0x2F, a final byte 0x30-0x7E). */
function stripEscapes(bytes: Uint8Array): Uint8Array {
  if (!bytes.includes(0x1b)) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x1b) {
      out.push(bytes[i]);
      continue;
    }
    let j = i + 1;
    while (j < bytes.length && bytes[j] >= 0x20 && bytes[j] <= 0x2f) j++;
    i = j; // skips the final byte too
  }
  return Uint8Array.from(out);
}

const hasHighBytes = (b: Uint8Array) => b.some((c) => c >= 0x80 || c === 0x1b);

/**
 * Every plausible reading of a text value (without trailing padding), the declared one first.
 * @param charsets the values of SpecificCharacterSet (empty: the default repertoire, ASCII)
 */
export function decodeDicomText(bytes: Uint8Array, charsets: string[]): string[] {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0 || bytes[end - 1] === 0x20)) end--;
  const raw = bytes.subarray(0, end);
  if (!hasHighBytes(raw)) return [latin1(raw)];
  const sets = charsets.map((c) => c.trim().toUpperCase().replace(/\s+/g, ' ')).filter(Boolean);
  const out: string[] = [];
  const push = (s: string | null) => {
    if (s !== null && !out.includes(s)) out.push(s);
  };
  const iso2022 = sets.filter((s) => s.startsWith('ISO 2022'));
  if (iso2022.length > 0) {
    if (iso2022.some((s) => s === 'ISO 2022 IR 87' || s === 'ISO 2022 IR 159')) push(decodeWith('iso-2022-jp', raw));
    const g1 = iso2022.map((s) => ISO2022[s]).find((l) => l && l !== 'ascii');
    push(decodeWith(g1 ?? 'latin1', stripEscapes(raw)));
  } else {
    const label = sets.map((s) => SINGLE_BYTE[s]).find((l) => l !== undefined);
    push(decodeWith(label ?? 'latin1', raw));
    // An undeclared or unknown character set: also latin1 (what most such files are).
    if (!label || label === 'ascii') push(latin1(raw));
  }
  push(utf8OrNull(raw));
  return out;
}
