/**
 * Credentials and endpoint of one merchant application on the Alipay open platform (支付宝开放平台), public-key mode
 * with RSA2 (SHA256withRSA): requests are signed with the application's private key, answers and notifications are
 * verified with the Alipay public key shown in the application's console.
 */
export interface AlipayConfig {
  /** The application id (APPID), 16 digits, e.g. `2021004123456789`. */
  appId: string;
  /**
   * The application private key (应用私钥), PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, what Alipay's key tool produces for
   * non-Java languages) or PKCS#8 (`BEGIN PRIVATE KEY`). The bare base64 body Alipay's tool shows is accepted too.
   */
  privateKey: string;
  /** The Alipay public key (支付宝公钥), PEM `BEGIN PUBLIC KEY` or its bare base64 body. Never the app's own public key. */
  alipayPublicKey: string;
  /** `https://openapi.alipay.com/gateway.do`, the sandbox gateway, or the simulator's `…/simulator/alipay/gateway.do`. */
  gateway: string;
  /** The merchant's Alipay user id (PID, `2088…`); when set, notifications for another seller are flagged. */
  sellerId?: string;
  /** Whole-request deadline in milliseconds. Default 10000. */
  timeoutMs?: number;
}

export const ALIPAY_DEFAULT_GATEWAY = 'https://openapi.alipay.com/gateway.do';
export const ALIPAY_DEFAULT_TIMEOUT_MS = 10_000;
