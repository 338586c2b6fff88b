import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import {
  buildNotification,
  generateMerchantCredentials,
  generatePublicKeyId,
  generateRsaKeyPair,
  signNotification,
  type MerchantCredentials,
} from '../../src/simulators/wechatpay';
import { formatRfc3339China } from '../../src/payments/providers/wechatpay/crypto';
import { forkHelper, type Rpc } from './rpc';
import { cpuProfileArgs } from './targets';

/**
 * WeChat Pay for the bench: one platform key (the simulator's), one merchant, and the signed, AES-GCM encrypted
 * `TRANSACTION.SUCCESS` notifications the callback workloads send. Notifications are built with the simulator's own
 * `buildNotification`/`signNotification`, so they are byte for byte what the simulator (and WeChat Pay) would send.
 */
export interface WechatSetup {
  merchant: MerchantCredentials;
  platformPrivateKey: KeyObject;
  platformPrivateKeyPem: string;
  platformPublicKeyPem: string;
  publicKeyId: string;
  /** A key WeChat Pay never had: forged notifications are signed with it. */
  forgerKey: KeyObject;
}

export function createWechatSetup(): WechatSetup {
  const platform = generateRsaKeyPair();
  const forger = generateRsaKeyPair();
  return {
    merchant: generateMerchantCredentials(),
    platformPrivateKey: createPrivateKey(platform.privateKey),
    platformPrivateKeyPem: platform.privateKey,
    platformPublicKeyPem: platform.publicKey,
    publicKeyId: generatePublicKeyId(),
    forgerKey: createPrivateKey(forger.privateKey),
  };
}

export interface SimulatorHandle {
  rpc: Rpc;
  baseUrl: string;
  /** WECHATPAY_* for the service. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSimulator(setup: WechatSetup): Promise<SimulatorHandle> {
  const rpc = forkHelper(join(__dirname, 'simulator-process.js'), 'wechat-simulator', {
    SIM_PRIVATE_KEY_PEM: setup.platformPrivateKeyPem,
    SIM_PUBLIC_KEY_ID: setup.publicKeyId,
    SIM_MERCHANT: JSON.stringify(setup.merchant),
  }, cpuProfileArgs('simulator'));
  const info = await rpc.call<{ baseUrl: string; adapter: Record<string, string> }>('info', undefined, 30_000);
  const a = info.adapter;
  return {
    rpc,
    baseUrl: info.baseUrl,
    env: wechatEnv(setup, info.baseUrl, a.platformPublicKey!),
    stop: async () => void (await rpc.stop()),
  };
}

export function wechatEnv(setup: WechatSetup, baseUrl: string, platformPublicKey = setup.platformPublicKeyPem): Record<string, string> {
  const m = setup.merchant;
  return {
    WECHATPAY_MCHID: m.mchid,
    WECHATPAY_APPID: m.appid,
    WECHATPAY_MERCHANT_SERIAL: m.merchantSerial,
    WECHATPAY_MERCHANT_PRIVATE_KEY: m.merchantPrivateKey,
    WECHATPAY_APIV3_KEY: m.apiV3Key,
    WECHATPAY_PUBLIC_KEY: platformPublicKey,
    WECHATPAY_PUBLIC_KEY_ID: setup.publicKeyId,
    WECHATPAY_BASE_URL: baseUrl,
  };
}

export interface SignedNotification {
  paymentNo: string;
  rawBody: string;
  headers: Record<string, string>;
  /** Signed with a key that is not WeChat Pay's: must be refused (400) and change nothing. */
  forged: boolean;
}

/** A `TRANSACTION.SUCCESS` for a payment, as the simulator's `pay` would notify it. */
export function paymentNotification(setup: WechatSetup, paymentNo: string, amount: number, forged = false): SignedNotification {
  const m = setup.merchant;
  const resource = {
    appid: m.appid,
    mchid: m.mchid,
    out_trade_no: paymentNo,
    transaction_id: `4200${randomBytes(12).toString('hex').replace(/[a-f]/g, (c) => String(c.charCodeAt(0) % 10)).slice(0, 24)}`,
    trade_type: 'NATIVE',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'OTHERS',
    attach: '',
    success_time: formatRfc3339China(new Date()),
    payer: { openid: `o${randomBytes(13).toString('hex').slice(0, 27)}` },
    amount: { total: amount, payer_total: amount, currency: 'CNY', payer_currency: 'CNY' },
    promotion_detail: [],
  };
  const built = buildNotification({ eventType: 'TRANSACTION.SUCCESS', resource, apiV3Key: m.apiV3Key });
  const headers = signNotification(built.rawBody, {
    privateKey: forged ? setup.forgerKey : setup.platformPrivateKey,
    publicKeyId: setup.publicKeyId,
  });
  return { paymentNo, rawBody: built.rawBody, headers, forged };
}
