/**
 * Stripe's v1 request encoding: `application/x-www-form-urlencoded` with nested keys in brackets, as stripe-node
 * (`utils.stringifyRequestData`) and Stripe's other SDKs write them:
 * `metadata[paymentNo]=P1&payment_method_types[0]=card&expand[]=latest_charge&created[gte]=1700000000`.
 * Query strings of GET requests use the same form. Values stay strings: each endpoint converts its own params.
 */

export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

export class FormError extends Error {
  constructor(
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new FormError(`Invalid URL encoding: ${s.slice(0, 50)}`);
  }
}

/** `a[b][0]` → `['a', 'b', '0']`; `a[]` → `['a', '']`. */
function splitKey(key: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!m) throw new FormError(`Invalid parameter name: ${key}`, key);
  const parts = [m[1]];
  for (const seg of m[2].matchAll(/\[([^[\]]*)\]/g)) parts.push(seg[1]);
  return parts;
}

type Node = Map<string, Node | string>;

/** Parses a form-encoded body or query string into nested objects; objects keyed 0..n-1 become arrays. */
export function parseForm(text: string): FormObject {
  const root: Node = new Map();
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    const path = splitKey(rawKey);
    let node = root;
    for (let i = 0; i < path.length; i++) {
      let seg = path[i];
      if (FORBIDDEN.has(seg)) throw new FormError(`Invalid parameter name: ${rawKey}`, rawKey);
      if (seg === '') seg = String(node.size);
      if (i === path.length - 1) {
        if (node.get(seg) instanceof Map) throw new FormError(`Invalid parameter: ${rawKey} is both a value and a hash`, rawKey);
        node.set(seg, value);
      } else {
        let next = node.get(seg);
        if (typeof next === 'string') throw new FormError(`Invalid parameter: ${rawKey} is both a value and a hash`, rawKey);
        if (!next) {
          next = new Map();
          node.set(seg, next);
        }
        node = next;
      }
    }
  }
  return toValue(root) as FormObject;
}

function toValue(node: Node): FormValue {
  const keys = [...node.keys()];
  const isArray = keys.length > 0 && keys.every((k) => /^\d+$/.test(k)) && keys.map(Number).sort((a, b) => a - b).every((n, i) => n === i);
  const convert = (v: Node | string): FormValue => (typeof v === 'string' ? v : toValue(v));
  if (isArray) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => convert(node.get(String(k))!));
  }
  const out: FormObject = {};
  for (const k of keys) out[k] = convert(node.get(k)!);
  return out;
}

/** The inverse, for tests and scripts: nested objects and arrays in Stripe's bracket form (arrays indexed). */
export function encodeForm(data: Record<string, unknown>): string {
  const pairs: string[] = [];
  const enc = (s: string) => encodeURIComponent(s).replace(/%5B/g, '[').replace(/%5D/g, ']');
  const walk = (key: string, value: unknown): void => {
    if (value === undefined) return;
    if (value === null || typeof value !== 'object') {
      pairs.push(`${enc(key)}=${enc(value === null ? '' : String(value))}`);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(`${key}[${i}]`, v));
    } else {
      for (const [k, v] of Object.entries(value)) walk(`${key}[${k}]`, v);
    }
  };
  for (const [k, v] of Object.entries(data)) walk(k, v);
  return pairs.join('&');
}
