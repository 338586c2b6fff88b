/**
 * The simulator's own certificate world, shaped like UnionPay's (CFCA-issued) one: a root CA, a middle CA under
 * it, and UnionPay's signing certificate under the middle CA with the CN UnionPay's SDKs check
 * (`041@Z…@中国银联股份有限公司@00000001`). Merchants' signing certificates are issued by the same middle CA.
 *
 * Keys come from node:crypto (fast); certificates are built and signed with node-forge (node:crypto cannot issue
 * certificates). Everything is PEM, so adapters and tests verify with whatever they like.
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { certIdOf, formatAcpTime, UNIONPAY_CN_NAME } from '../../payments/providers/unionpay/crypto';

/** A certificate and its private key, both PEM (PKCS#8 key). */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** The serial number in decimal (ACP `certId`). */
  certId: string;
}

export interface UnionPayPki {
  root: IssuedCertificate;
  middle: IssuedCertificate;
  /** UnionPay's signing certificate (`signPubKeyCert`) and key. */
  signer: IssuedCertificate;
}

export interface NameAttribute {
  /** `C`, `O`, `OU`, `CN`, … */
  shortName: string;
  value: string;
}

export interface IssueOptions {
  subject: NameAttribute[];
  /** Signs the certificate; omitted: self-signed. */
  issuer?: IssuedCertificate;
  /** A CA certificate (basicConstraints cA, keyCertSign). Default false. */
  ca?: boolean;
  /** Default: one hour ago. */
  notBefore?: Date;
  /** Default: `notBefore` + `days`. */
  notAfter?: Date;
  /** Default 3650 for CAs, 1825 otherwise. */
  days?: number;
  /** Reuse this key pair (PKCS#8 PEM) instead of generating one. */
  keyPem?: string;
}

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

function newRsaKey(): string {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  }).privateKey;
}

/** A positive serial of 8 random bytes (hex, first bit clear), like CFCA's. */
function randomSerialHex(): string {
  const b = randomBytes(8);
  b[0] = (b[0] & 0x7f) | 0x10;
  return b.toString('hex');
}

function toForgeAttrs(attrs: NameAttribute[]): forge.pki.CertificateField[] {
  // UTF8String for everything: CNs carry Chinese.
  return attrs.map((a) => ({ shortName: a.shortName, value: a.value, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class }));
}

/** Issues one X.509 v3 certificate (SHA-256 with RSA). */
export function issueCertificate(o: IssueOptions): IssuedCertificate {
  const keyPem = o.keyPem ?? newRsaKey();
  const privateKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  cert.serialNumber = randomSerialHex();
  const notBefore = o.notBefore ?? new Date(Date.now() - HOUR_MS);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = o.notAfter ?? new Date(notBefore.getTime() + (o.days ?? (o.ca ? 3650 : 1825)) * DAY_MS);
  cert.setSubject(toForgeAttrs(o.subject));

  let signingKey = privateKey;
  if (o.issuer) {
    const issuerCert = forge.pki.certificateFromPem(o.issuer.certPem);
    cert.setIssuer(issuerCert.subject.attributes);
    signingKey = forge.pki.privateKeyFromPem(o.issuer.keyPem) as forge.pki.rsa.PrivateKey;
  } else {
    cert.setIssuer(toForgeAttrs(o.subject));
  }
  cert.setExtensions(
    o.ca
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
          { name: 'subjectKeyIdentifier' },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, nonRepudiation: true, critical: true },
          { name: 'subjectKeyIdentifier' },
        ],
  );
  cert.sign(signingKey, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  return { certPem, keyPem, certId: certIdOf(new X509Certificate(certPem)) };
}

/** `041@Z<date>@中国银联股份有限公司@00000001`: the CN of UnionPay's production signing certificates. */
export function unionPaySignerCn(owner: string = UNIONPAY_CN_NAME): string {
  return `041@Z${formatAcpTime(new Date()).slice(0, 8)}@${owner}@00000001`;
}

export interface CreatePkiOptions {
  /** CN of the signing certificate; default `unionPaySignerCn()`. Tests use other owners to see them refused. */
  signerCn?: string;
  /** Label put in the O of every certificate, to tell simulators apart. Default `UnionPay Simulator`. */
  organization?: string;
}

/** A root CA and a middle CA under it, both named after `org`. */
export function createCaChain(org: string): { root: IssuedCertificate; middle: IssuedCertificate } {
  const root = issueCertificate({
    subject: [
      { shortName: 'C', value: 'CN' },
      { shortName: 'O', value: org },
      { shortName: 'CN', value: `${org} Root CA` },
    ],
    ca: true,
  });
  const middle = issueCertificate({
    subject: [
      { shortName: 'C', value: 'CN' },
      { shortName: 'O', value: org },
      { shortName: 'CN', value: `${org} OCA1` },
    ],
    issuer: root,
    ca: true,
  });
  return { root, middle };
}

/** A fresh root → middle → UnionPay signer chain. */
export function createUnionPayPki(options: CreatePkiOptions = {}): UnionPayPki {
  const org = options.organization ?? 'UnionPay Simulator';
  const { root, middle } = createCaChain(org);
  const signer = issueCertificate({
    subject: [
      { shortName: 'C', value: 'CN' },
      { shortName: 'O', value: org },
      { shortName: 'OU', value: 'UnionPay' },
      { shortName: 'CN', value: options.signerCn ?? unionPaySignerCn() },
    ],
    issuer: middle,
  });
  return { root, middle, signer };
}

/** A merchant signing certificate for `merId`, issued by `issuer` (the simulator's middle CA). */
export function issueMerchantCertificate(merId: string, issuer: IssuedCertificate): IssuedCertificate {
  return issueCertificate({
    subject: [
      { shortName: 'C', value: 'CN' },
      { shortName: 'O', value: 'UnionPay Simulator' },
      { shortName: 'OU', value: 'Merchants' },
      { shortName: 'CN', value: `041@Z${merId}@${merId}@00000001` },
    ],
    issuer,
  });
}
