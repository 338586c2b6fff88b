/**
 * Credentials and endpoints of one merchant on the UnionPay online gateway (银联全渠道, ACP 5.1.0, `signMethod=01`).
 *
 * UnionPay signs every answer and notification with a certificate it sends inside the message (`signPubKeyCert`);
 * the merchant trusts it only when it chains to UnionPay's middle and root certificates configured here
 * (`acp_prod_middle.cer`, `acp_prod_root.cer` in UnionPay's SDK bundles) and names UnionPay as its owner.
 */
export interface UnionPayConfig {
  /** Merchant id (商户号, 15 digits), e.g. `777290058110048`. */
  merId: string;
  /** The merchant signing private key, PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`). */
  signPrivateKey: string;
  /**
   * The merchant signing certificate, PEM (the certificate inside UnionPay's `.pfx`). Its serial number in decimal
   * is the `certId` sent with every request; its public key must match `signPrivateKey`.
   */
  signCert: string;
  /** UnionPay's root certificate, PEM: the trust anchor for `signPubKeyCert`. */
  rootCert: string;
  /** UnionPay's middle (intermediate) certificate, PEM: must be issued by `rootCert` and issue `signPubKeyCert`. */
  middleCert: string;
  /**
   * The gateway's API base, ending in `/gateway/api/`: `https://gateway.95516.com/gateway/api/` (production),
   * `https://gateway.test.95516.com/gateway/api/` (UnionPay's test environment) or the simulator's
   * `…/simulator/unionpay/gateway/api/`. `frontTransReq.do`, `backTransReq.do` and `queryTrans.do` are resolved
   * against it.
   */
  gatewayUrl: string;
  /**
   * Public URL of this service's page that turns a signed front-consume request into the auto-submitting form the
   * browser POSTs to `frontTransReq.do` (`UnionPayProvider.frontFormPage`). UNIONPAY_GATEWAY payments answer
   * `redirectUrl = frontFormUrl?<signed fields>`. Usually `${PUBLIC_BASE_URL}/pay/unionpay/front`.
   */
  frontFormUrl: string;
  /**
   * Where `fileTransfer.do` (the daily reconciliation file) lives: UnionPay serves it from its own host,
   * `https://filedownload.95516.com/` (production) or `https://filedownload.test.95516.com/` (test environment), the
   * default for those gateways; the simulator's `…/simulator/unionpay/filedownload/`. Without it (another gateway
   * host), days cannot be reconciled.
   */
  fileTransferUrl?: string;
  /** `channelType` of gateway payments: `07` (PC/web, default) or `08` (mobile). QR payments always send `08`. */
  gatewayChannelType?: '07' | '08';
  /**
   * Also accept signers whose CN owner field is `00040000:SIGN`, the name UnionPay's test environment certificate
   * carries (the official SDK's `acpsdk.ifValidateCNName=false`). Never in production. Default false.
   */
  allowTestEnvironmentSigner?: boolean;
  /** Whole-request deadline in milliseconds (connect, send, read the answer). Default 10000. */
  timeoutMs?: number;
}

export const UNIONPAY_PRODUCTION_GATEWAY_URL = 'https://gateway.95516.com/gateway/api/';
export const UNIONPAY_TEST_GATEWAY_URL = 'https://gateway.test.95516.com/gateway/api/';
export const UNIONPAY_PRODUCTION_FILE_TRANSFER_URL = 'https://filedownload.95516.com/';
export const UNIONPAY_TEST_FILE_TRANSFER_URL = 'https://filedownload.test.95516.com/';
export const UNIONPAY_DEFAULT_TIMEOUT_MS = 10_000;
/** Where this service is expected to serve `UnionPayProvider.frontFormPage` (see `frontFormUrl`). */
export const UNIONPAY_FRONT_FORM_PATH = '/pay/unionpay/front';

export interface UnionPayEndpoints {
  /** `…/frontTransReq.do`: browser form POST (gateway consume). */
  frontTransUrl: string;
  /** `…/backTransReq.do`: server-to-server transactions (QR code, refund). */
  backTransUrl: string;
  /** `…/queryTrans.do`: transaction status query. */
  queryTransUrl: string;
}

/** The three endpoints of a gateway base URL (a missing trailing slash is added). */
export function unionPayEndpoints(gatewayUrl: string): UnionPayEndpoints {
  const base = gatewayUrl.endsWith('/') ? gatewayUrl : `${gatewayUrl}/`;
  return {
    frontTransUrl: new URL('frontTransReq.do', base).toString(),
    backTransUrl: new URL('backTransReq.do', base).toString(),
    queryTransUrl: new URL('queryTrans.do', base).toString(),
  };
}

/** `fileTransferUrl`, or UnionPay's file host of the gateway's environment; undefined for any other gateway. */
export function unionPayFileTransferUrl(config: Pick<UnionPayConfig, 'gatewayUrl' | 'fileTransferUrl'>): string | undefined {
  if (config.fileTransferUrl) return config.fileTransferUrl;
  const host = new URL(config.gatewayUrl).host;
  if (host === 'gateway.95516.com') return UNIONPAY_PRODUCTION_FILE_TRANSFER_URL;
  if (host === 'gateway.test.95516.com') return UNIONPAY_TEST_FILE_TRANSFER_URL;
  return undefined;
}
