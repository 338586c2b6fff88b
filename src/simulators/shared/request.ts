/**
 * Small readers every simulator uses on what a client sent: the JSON bodies of the scripted endpoints (`/pay`,
 * `/control`, `/bill-faults`, …) and the fields of provider requests. Simulator routers parse bodies themselves
 * with `express.raw`; these also accept an object an app-wide JSON parser already made.
 */

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-empty string, else undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The JSON of a raw body (undefined when empty or not JSON), or an object an app-wide JSON parser made. */
export function parseJson(body: unknown): unknown {
  if (!Buffer.isBuffer(body)) return isObject(body) ? body : undefined;
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** An absolute http(s) URL of at most `maxLength` characters (the provider's limit on a URL field). */
export function isHttpUrl(v: unknown, maxLength = 256): boolean {
  if (typeof v !== 'string' || v.length > maxLength) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** JSON with object keys sorted, so two equal bodies compare equal whatever their key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
