/**
 * Display of minor-unit amounts for simulator pages: how many decimals a currency has (ISO 4217, as card networks
 * and Stripe treat them: docs.stripe.com/currencies "Zero-decimal currencies" / "Three-decimal currencies").
 */

/** Currencies whose minor unit is the major unit (¥500 is `500`). */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set([
  'BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF',
]);

/** Currencies with three decimals (1.000 KWD is `1000`). */
export const THREE_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

const SYMBOLS: Readonly<Record<string, string>> = { CNY: '¥', USD: '$', EUR: '€', GBP: '£', JPY: '¥', HKD: 'HK$' };

export function currencyDecimals(currency: string): number {
  const c = currency.toUpperCase();
  if (ZERO_DECIMAL_CURRENCIES.has(c)) return 0;
  if (THREE_DECIMAL_CURRENCIES.has(c)) return 3;
  return 2;
}

/** Minor units as a decimal string for `currency`: (1999, 'usd') → `19.99`, (500, 'JPY') → `500`. */
export function minorToDecimal(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount must be an integer: ${minor}`);
  const decimals = currencyDecimals(currency);
  const sign = minor < 0 ? '-' : '';
  const digits = String(Math.abs(minor));
  if (decimals === 0) return `${sign}${digits}`;
  const padded = digits.padStart(decimals + 1, '0');
  return `${sign}${padded.slice(0, -decimals)}.${padded.slice(-decimals)}`;
}

/** `¥88.00`, `$19.99`, `¥500` (JPY), `KWD 1.000`: a symbol when the currency has a well-known one. */
export function formatMinor(minor: number, currency: string): string {
  const c = currency.toUpperCase();
  const symbol = SYMBOLS[c];
  const amount = minorToDecimal(minor, c);
  return symbol ? `${amount.startsWith('-') ? '-' : ''}${symbol}${amount.replace(/^-/, '')}` : `${c} ${amount}`;
}
