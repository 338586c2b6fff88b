import type { Orm } from '../shared/db/orm';
import type { Logger } from '../shared/logger';
import type { Metrics } from '../shared/metrics';
import { CHANNEL_PROVIDER } from '../payments/channels';
import { Payment } from '../payments/payment.entity';
import { NotificationMismatch, type PaymentsService } from '../payments/payments.service';
import type { ProviderReply, RawNotification } from '../payments/providers/provider';
import type { ProviderRegistry } from '../payments/providers/registry';
import { Refund } from '../payments/refund.entity';

/**
 * Provider notifications: verify, record, apply once, reply as the provider expects.
 *
 * 1. The adapter verifies the raw body (signature, timestamp, decryption, its own merchant/app ids).
 * 2. Local checks: a known payment (or refund) of this provider, the amount equal to the payment's.
 * 3. Applied through PaymentsService (the same path as the query fallback) with the inbox row in the same transaction.
 * Every delivery becomes one `paymentNotifications` row: applied, duplicate, rejected (verification failed) or flagged
 * (verified, but its ids or amount do not match: nothing changes, an admin looks). Rejected and flagged deliveries get
 * the provider's failure reply, so the provider's own console shows them too and keeps them visible.
 */
export class CallbackProcessor {
  constructor(
    private readonly orm: Orm,
    private readonly registry: ProviderRegistry,
    private readonly payments: PaymentsService,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {}

  async handle(providerName: string, merchantId: string, notification: RawNotification): Promise<ProviderReply | null> {
    const provider = this.registry.byName(merchantId, providerName);
    if (!provider) return null;
    const rawBody = notification.rawBody.toString('utf8');
    const done = (outcome: string, reply: ProviderReply) => {
      this.metrics?.notifications.inc({ provider: providerName, outcome });
      return reply;
    };

    const parsed = await provider.parseNotification(notification);
    if (!parsed.ok) {
      this.log.warn({ provider: providerName, reason: parsed.reason }, 'rejected a notification');
      await this.payments.recordNotification({
        provider: providerName,
        notificationId: parsed.notificationId,
        paymentNo: parsed.paymentNo,
        outcome: 'rejected',
        reason: parsed.reason,
        rawBody,
      });
      return done('rejected', provider.notificationReply(false, parsed.reason));
    }

    const { event, notificationId, payload } = parsed;
    const flag = async (reason: string, paymentNo?: string | null) => {
      this.log.error({ provider: providerName, notificationId, paymentNo, reason }, 'flagged a verified notification');
      await this.payments.recordNotification({ provider: providerName, notificationId, paymentNo, outcome: 'flagged', reason, rawBody, payload });
      return done('flagged', provider.notificationReply(false, reason));
    };
    if (parsed.mismatch) return flag(parsed.mismatch, 'paymentNo' in event ? event.paymentNo : null);
    const inbox = { provider: providerName, notificationId, rawBody, payload };

    if (event.type === 'payment') {
      try {
        const outcome = await this.payments.applyPaymentResult(
          event.paymentNo,
          { status: event.status, providerTransactionId: event.providerTransactionId, amount: event.amount, paidAt: event.paidAt, raw: payload },
          `provider:${providerName}`,
          inbox,
          { provider: providerName, merchantId, amount: event.amount, currency: event.currency },
        );
        return done(outcome, provider.notificationReply(true));
      } catch (err) {
        if (err instanceof NotificationMismatch) return flag(err.message, event.paymentNo);
        throw err;
      }
    }

    if (event.type === 'refund') {
      const em = this.orm.em.fork();
      const refund = await em.findOne(Refund, { refundNo: event.refundNo });
      if (!refund) return flag(`unknown refund ${event.refundNo}`, event.paymentNo);
      const refunded = await em.findOneOrFail(Payment, { id: refund.paymentId });
      if (CHANNEL_PROVIDER[refunded.channel] !== providerName || refunded.merchantId !== merchantId) {
        return flag(`refund ${event.refundNo} is not a ${providerName} refund of this merchant`, event.paymentNo);
      }
      if (event.paymentNo && event.paymentNo !== refunded.paymentNo) {
        return flag(`refund ${event.refundNo} belongs to payment ${refunded.paymentNo}, not ${event.paymentNo}`, event.paymentNo);
      }
      if (event.amount !== undefined && event.amount !== refund.amount) {
        return flag(`refund amount ${event.amount} differs from ${refund.amount}`, event.paymentNo);
      }
      const outcome = await this.payments.applyRefundResult(
        event.refundNo,
        event.status,
        { providerRefundId: event.providerRefundId, raw: payload },
        `provider:${providerName}`,
        inbox,
      );
      return done(outcome, provider.notificationReply(true));
    }

    await this.payments.recordNotification({
      provider: providerName,
      notificationId,
      paymentNo: event.paymentNo,
      outcome: 'applied',
      reason: `nothing to apply: ${event.reason}`,
      rawBody,
      payload,
    });
    return done('applied', provider.notificationReply(true));
  }
}
