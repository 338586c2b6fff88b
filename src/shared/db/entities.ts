import { PaymentNotification } from '../../callbacks/notification.entity';
import { Coupon } from '../../catalog/coupon.entity';
import { Product } from '../../catalog/product.entity';
import { OrderEvent } from '../../orders/order-event.entity';
import { Order } from '../../orders/order.entity';
import { Payment } from '../../payments/payment.entity';
import { Refund } from '../../payments/refund.entity';
import { OutboxMessage } from '../../realtime/outbox';
import { Discrepancy } from '../../reconciliation/discrepancy.entity';
import { ReconciliationReport } from '../../reconciliation/reconciliation-report.entity';

/** Every persisted entity. A new entity is added here and gets a migration for both drivers. */
export const ENTITIES = [Product, Coupon, Order, OrderEvent, Payment, Refund, PaymentNotification, OutboxMessage, ReconciliationReport, Discrepancy];
