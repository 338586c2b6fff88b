import type { App } from '../../src/app';
import { OrderStatus, transition } from '../../src/orders/status-machine';
import { orderTopic, statusPayload } from '../../src/realtime/topics';

export const ADDRESS = { name: 'Li Lei', phone: '13800138000', province: 'Zhejiang', city: 'Hangzhou', line1: '1 West Lake Rd' };

export const ORDER_FIELDS = `id orderNo status customerId currency subtotalAmount discountAmount shippingAmount totalAmount
  paidAmount refundedAmount couponCode note createdAt updatedAt expiresAt paidAt
  items { sku name unitPriceAmount quantity lineTotalAmount }
  shippingAddress { name phone province city district line1 postalCode }
  shipment { carrier trackingNo shippedAt } review { rating comment createdAt }
  history { from to actor reason at }`;

/**
 * Test helper for orders before the payment slice: moves an order to PAID through the state machine
 * (PENDING_PAYMENT → PAYING → PAID), as a verified payment would.
 */
export async function markPaidThroughMachine(app: App, orderId: string): Promise<void> {
  const system = { id: 'test', role: 'admin' as const };
  await app.services.orders.change(system, orderId, async (tx, order, emit) => {
    transition(tx, order, OrderStatus.PAYING, { actor: 'system', reason: 'test helper' });
    transition(tx, order, OrderStatus.PAID, { actor: 'provider:test', reason: 'test helper' });
    order.paidAmount = order.totalAmount;
    order.paidAt = new Date();
    emit(orderTopic(order.id), statusPayload(order, null));
  });
}
