import { randomDigits } from '../shared/credentials';
import { createCaChain, issueMerchantCertificate, type IssuedCertificate } from './pki';

/** Everything a merchant holds for UnionPay ACP 5.1.0 (`signMethod=01`): what `UnionPayConfig` needs of its own. */
export interface UnionPayMerchantCredentials {
  /** 15 digits, like UnionPay's test merchants (`777290058…`). */
  merId: string;
  /** PKCS#8 PEM. */
  signPrivateKey: string;
  /** PEM of the merchant signing certificate: what `registerMerchant` takes. */
  signCert: string;
  /** The certificate's serial number in decimal. */
  certId: string;
}

/** A merchant id shaped like UnionPay's test merchants: `777290058` + 6 digits. */
export function randomMerId(): string {
  return `777290058${randomDigits(6)}`;
}

let sharedIssuer: IssuedCertificate | undefined;

/**
 * Fresh merchant credentials: an RSA 2048 key and a signing certificate for it. In the simulator's world merchant
 * certificates come from the same test CA as UnionPay's own: pass the simulator's middle CA as `issuer`
 * (`simulator.issueMerchantCredentials()` does); without one, a process-wide test CA is used. The simulator trusts
 * whatever certificate is registered with it, as UnionPay trusts the certificate it issued to a merchant.
 */
export function generateUnionPayMerchantCredentials(options: { merId?: string; issuer?: IssuedCertificate } = {}): UnionPayMerchantCredentials {
  const issuer = options.issuer ?? (sharedIssuer ??= createCaChain('UnionPay Simulator Merchant CA').middle);
  const merId = options.merId ?? randomMerId();
  const cert = issueMerchantCertificate(merId, issuer);
  return { merId, signPrivateKey: cert.keyPem, signCert: cert.certPem, certId: cert.certId };
}
