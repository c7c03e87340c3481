/**
 * Checks of numbers typed into the settings forms (a number input holds null, NaN or a string
 * while it is empty or being edited). Pure; used by the pretrain, fine-tune and experiment forms.
 */

/** A whole number above 0 and at most `max`. */
export const posInt = (v: unknown, max = Infinity): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= max;

/** A finite number. */
export const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
