import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { parseApiBase } from '../../src/payments/providers/stripe';
import { formatMinor, minorToDecimal } from '../../src/simulators/shared/currency';
import { computeSignature, encodeForm, FormError, generateStripeCredentials, parseForm, stripeSignatureHeader } from '../../src/simulators/stripe';

describe("the simulator's webhook signer agrees with stripe-node", () => {
  const secret = 'whsec_agree_0123456789abcdefghijklmn';
  const payload = JSON.stringify({ id: 'evt_1', object: 'event', note: '支付 ✓' }, null, 2);

  it('computes the same v1 as generateTestHeaderString', () => {
    const t = 1_790_000_000;
    expect(stripeSignatureHeader(payload, secret, { timestamp: t })).toBe(Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: t }));
    expect(computeSignature(t, Buffer.from(payload), secret)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('its headers verify with constructEvent, one v1 per secret during a roll', () => {
    const header = stripeSignatureHeader(payload, ['whsec_new_secret_value', secret]);
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(Stripe.webhooks.constructEvent(payload, header, secret)).toMatchObject({ id: 'evt_1' });
    expect(Stripe.webhooks.constructEvent(payload, header, 'whsec_new_secret_value')).toMatchObject({ id: 'evt_1' });
    expect(() => Stripe.webhooks.constructEvent(payload, header, 'whsec_other')).toThrow(/No signatures found/);
  });
});

describe('Stripe form encoding', () => {
  it('decodes nested keys, indexed and empty-bracket arrays, + and %-escapes', () => {
    const parsed = parseForm(
      'amount=8800&currency=usd&description=Order+O-1%3A%202%20%C3%97%20tea&metadata[paymentNo]=P1&metadata%5Bnote%5D=a%26b' +
        '&payment_method_types[0]=card&expand[]=latest_charge&expand[]=customer&created[gte]=1&created[lt]=2&flag',
    );
    expect(parsed).toEqual({
      amount: '8800',
      currency: 'usd',
      description: 'Order O-1: 2 × tea',
      metadata: { paymentNo: 'P1', note: 'a&b' },
      payment_method_types: ['card'],
      expand: ['latest_charge', 'customer'],
      created: { gte: '1', lt: '2' },
      flag: '',
    });
  });

  it('round-trips through encodeForm', () => {
    const data = { a: '1', m: { k: 'v w', 'x y': 'z' }, list: ['p', 'q'], deep: { d: { e: 'f' } } };
    expect(parseForm(encodeForm(data))).toEqual(data);
  });

  it('refuses prototype keys, conflicting shapes and bad escapes', () => {
    expect(() => parseForm('__proto__[polluted]=1')).toThrow(FormError);
    expect(() => parseForm('metadata[constructor]=1')).toThrow(FormError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => parseForm('a=1&a[b]=2')).toThrow(/both a value and a hash/);
    expect(() => parseForm('a=%E0%A4%A')).toThrow(/Invalid URL encoding/);
    expect(() => parseForm('a]b=1')).toThrow(/Invalid parameter name/);
  });
});

describe('parseApiBase', () => {
  it('splits host, port, protocol and a path prefix; drops a trailing /v1', () => {
    expect(parseApiBase()).toEqual({ protocol: 'https', host: 'api.stripe.com', port: 443, pathPrefix: '' });
    expect(parseApiBase('http://127.0.0.1:4000/simulator/stripe')).toEqual({
      protocol: 'http',
      host: '127.0.0.1',
      port: 4000,
      pathPrefix: '/simulator/stripe',
    });
    expect(parseApiBase('http://localhost/simulator/stripe/v1/')).toMatchObject({ port: 80, pathPrefix: '/simulator/stripe' });
    expect(parseApiBase('http://[::1]:4000')).toMatchObject({ host: '::1', pathPrefix: '' });
    expect(() => parseApiBase('127.0.0.1:4000')).toThrow(/absolute/);
    expect(() => parseApiBase('https://api.stripe.com/?x=1')).toThrow(/query/);
  });
});

describe('currency display', () => {
  it('knows zero- and three-decimal currencies', () => {
    expect(minorToDecimal(1999, 'usd')).toBe('19.99');
    expect(minorToDecimal(5, 'EUR')).toBe('0.05');
    expect(minorToDecimal(500, 'jpy')).toBe('500');
    expect(minorToDecimal(1000, 'KWD')).toBe('1.000');
    expect(minorToDecimal(-500, 'usd')).toBe('-5.00');
    expect(formatMinor(8800, 'CNY')).toBe('¥88.00');
    expect(formatMinor(500, 'JPY')).toBe('¥500');
    expect(formatMinor(1234, 'chf')).toBe('CHF 12.34');
  });
});

describe('generateStripeCredentials', () => {
  it('makes test-mode keys and a whsec_ secret by default, live keys on request', () => {
    const c = generateStripeCredentials();
    expect(c.secretKey).toMatch(/^sk_test_51\w+$/);
    expect(c.publishableKey).toMatch(/^pk_test_51\w+$/);
    expect(c.webhookSecret).toMatch(/^whsec_\w{32}$/);
    expect(generateStripeCredentials({ livemode: true }).secretKey).toMatch(/^sk_live_/);
  });
});
