/**
 * Credentials and endpoint of one merchant on WeChat Pay API v3, "WeChat Pay public key" mode
 * (微信支付公钥模式: responses and callbacks are signed with a key identified by `PUB_KEY_ID_…`, not a platform
 * certificate serial).
 */
export interface WechatPayConfig {
  /** Merchant id (商户号), e.g. `1900000109`. */
  mchid: string;
  /** The app id bound to the merchant (公众号 / 小程序 / 移动应用 AppID), e.g. `wxd678efh567hg6787`. */
  appid: string;
  /** Serial number of the merchant API certificate (商户API证书序列号), sent as `serial_no`. */
  merchantSerial: string;
  /** The merchant API private key, PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`). */
  merchantPrivateKey: string;
  /** The APIv3 key (APIv3密钥): 32 bytes, decrypts callback resources. */
  apiV3Key: string;
  /** The WeChat Pay public key, PEM (`BEGIN PUBLIC KEY`). */
  platformPublicKey: string;
  /** Its id, `PUB_KEY_ID_…`: the `Wechatpay-Serial` every verified response and callback must carry. */
  platformPublicKeyId: string;
  /** `https://api.mch.weixin.qq.com`, or the simulator's `…/simulator/wechatpay`. */
  baseUrl: string;
  /** Whole-request deadline in milliseconds. Default 10000. */
  timeoutMs?: number;
}

export const WECHATPAY_DEFAULT_BASE_URL = 'https://api.mch.weixin.qq.com';
export const WECHATPAY_DEFAULT_TIMEOUT_MS = 10_000;
