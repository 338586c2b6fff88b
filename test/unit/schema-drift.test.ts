import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printAppSchema } from '../../src/shared/graphql/schema';

describe('schema.graphql', () => {
  it('is exactly what the code emits (run `npm run schema` after changing the API)', () => {
    expect(readFileSync('schema.graphql', 'utf8')).toBe(printAppSchema());
  });

  it('keeps the contract names', () => {
    const sdl = printAppSchema();
    for (const name of [
      'enum OrderStatus', 'enum PaymentChannel', 'enum PaymentStatus', 'type PaymentStatusEvent', 'scalar DateTime',
      'previewOrder(input: OrderInput!): OrderQuote!', 'createOrder(input: CreateOrderInput!): Order!',
      'paymentStatusChanged(orderId: ID!): PaymentStatusEvent!',
      'orders(after: String, first: Int, status: OrderStatus): OrderConnection!',
    ]) {
      expect(sdl).toContain(name);
    }
  });
});
