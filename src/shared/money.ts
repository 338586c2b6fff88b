/**
 * Amounts are integers in minor units (fen, cents) everywhere inside the service.
 * Conversions to a provider's representation happen only at the provider edge, through these functions.
 * Written by hand (string arithmetic, no floats) because a float round-trip of 19.99 * 100 is 1998.9999….
 */

/** Minor units to a decimal string with two places: 1999 → "19.99", 1 → "0.01". */
export function toMajorString(minor: number): string {
  if (!Number.isSafeInteger(minor) || minor < 0) throw new RangeError(`amount must be a non-negative integer: ${minor}`);
  const s = String(minor).padStart(3, '0');
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** A decimal string with at most two places to minor units: "19.99" → 1999, "0.1" → 10, "100000000.00" → 10000000000. */
export function fromMajorString(major: string): number {
  const m = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(major.trim());
  if (!m) throw new RangeError(`not a decimal amount: ${JSON.stringify(major)}`);
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}
