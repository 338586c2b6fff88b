import { describe, expect, it } from 'vitest';
import { fromMajorString, toMajorString } from '../../src/shared/money';

describe('money conversion at the provider edge', () => {
  it.each([
    [1, '0.01'],
    [10, '0.10'],
    [1999, '19.99'],
    [10000, '100.00'],
    [10_000_000_000, '100000000.00'],
  ])('%i fen ⇄ %s yuan', (fen, yuan) => {
    expect(toMajorString(fen)).toBe(yuan);
    expect(fromMajorString(yuan)).toBe(fen);
  });

  it('reads short forms without float error', () => {
    expect(fromMajorString('0.1')).toBe(10);
    expect(fromMajorString('19.9')).toBe(1990);
    expect(fromMajorString('88')).toBe(8800);
  });

  it('refuses what is not an amount', () => {
    for (const bad of ['', '1.234', '-1.00', '1e3', 'abc', '1,00']) expect(() => fromMajorString(bad)).toThrow(RangeError);
    expect(() => toMajorString(1.5)).toThrow(RangeError);
    expect(() => toMajorString(-1)).toThrow(RangeError);
  });
});
