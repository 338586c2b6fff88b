import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';

/**
 * The one place that reads the environment. Every option of the contract, its default, and how it is validated.
 * `loadConfig` reports every bad variable at once (one line each, naming it) through ConfigError; main.ts prints
 * those lines and exits.
 */
export interface AppConfig {
  nodeEnv: string;
  production: boolean;
  host: string;
  port: number;
  /** PUBLIC_BASE_URL: the external base URL for notify_urls. Unset: the address the server listens on. */
  publicBaseUrl?: string;
  dataDir: string;
  database: { driver: 'sqlite'; path: string } | { driver: 'postgresql'; url: string };
  redisUrl?: string;
  jwtSecret: string;
  autoMigrate: boolean;
  seedDemo: boolean;
  /** An order unpaid this long after creation is cancelled; `expiresAt` = `createdAt` + this. */
  paymentTimeoutSeconds: number;
  /** Increasing seconds after a payment's creation at which the provider is queried while no result came. */
  paymentQueryDelays: number[];
  simulatorTimeScale: number;
  paymentSimulator: boolean;
  /** Mutations per authenticated customer (or per IP when anonymous) per minute; admins are not limited. */
  rateLimitPerMinute: number;
  /** Shipping fee rule: `shippingFlatFee` fen per order, free when the subtotal after discount reaches the threshold. */
  shipping: { flatFee: number; freeThreshold: number | null };
  /** RECONCILE_DAILY_AT: `HH:MM` China time at which yesterday is reconciled for every provider; unset: no daily run. */
  reconcileDailyAt?: string;
  logLevel: string;
  wechatpay?: WechatPayEnv;
  alipay?: AlipayEnv;
  stripe?: StripeEnv;
  unionpay?: UnionPayEnv;
}

export interface UnionPayEnv {
  merId: string;
  signPrivateKey: string;
  signCert: string;
  rootCert: string;
  middleCert: string;
  gatewayUrl: string;
  /** UNIONPAY_FILE_TRANSFER_URL: fileTransfer.do's host (reconciliation files); default UnionPay's for its gateways. */
  fileTransferUrl?: string;
  gatewayChannelType?: '07' | '08';
  allowTestEnvironmentSigner: boolean;
}

export interface WechatPayEnv {
  mchid: string;
  appid: string;
  merchantSerial: string;
  merchantPrivateKey: string;
  apiV3Key: string;
  platformPublicKey: string;
  platformPublicKeyId: string;
  baseUrl: string;
}

export interface AlipayEnv {
  appId: string;
  privateKey: string;
  alipayPublicKey: string;
  gateway: string;
  sellerId?: string;
}

export interface StripeEnv {
  secretKey: string;
  webhookSecret: string;
  apiBase?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const intIn = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

const bool = z.enum(['true', 'false', '1', '0', 'on', 'off']).transform((v) => ['true', '1', 'on'].includes(v));

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL (${protocols.join(' or ')})`);

const schema = z.object({
  NODE_ENV: z.string().default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: intIn(0, 65535).default(4000),
  PUBLIC_BASE_URL: url(['http:', 'https:']).optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .refine((v) => /^postgres(ql)?:\/\//.test(v) || v.startsWith('sqlite:'), 'must be postgres://… or sqlite:PATH')
    .optional(),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  AUTO_MIGRATE: bool.default(true),
  SEED_DEMO: bool.default(true),
  PAYMENT_TIMEOUT_SECONDS: intIn(1, 7 * 24 * 3600).default(900),
  PAYMENT_QUERY_DELAYS: z
    .string()
    .regex(/^\d+(\s*,\s*\d+)*$/, 'must be a comma-separated list of seconds')
    .transform((v) => v.split(',').map((s) => Number(s.trim())))
    .refine((a) => a.every((n, i) => n > 0 && (i === 0 || n > a[i - 1]!)), 'must be positive and increasing')
    .default([10, 30, 60, 300, 600]),
  SIMULATOR_TIME_SCALE: z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'must be a positive number')
    .transform(Number)
    .refine((n) => n > 0, 'must be a positive number')
    .default(1),
  PAYMENT_SIMULATOR: z.enum(['on', 'off']).optional(),
  RATE_LIMIT_PER_MINUTE: intIn(1, 1_000_000).default(600),
  SHIPPING_FLAT_FEE: intIn(0, 100_000_00).default(1000),
  SHIPPING_FREE_THRESHOLD: intIn(0, 1_000_000_00).optional(),
  RECONCILE_DAILY_AT: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM, 24-hour China time (e.g. 10:30)').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const WECHATPAY_VARS = [
  'WECHATPAY_MCHID',
  'WECHATPAY_APPID',
  'WECHATPAY_MERCHANT_SERIAL',
  'WECHATPAY_MERCHANT_PRIVATE_KEY',
  'WECHATPAY_APIV3_KEY',
  'WECHATPAY_PUBLIC_KEY',
  'WECHATPAY_PUBLIC_KEY_ID',
] as const;
const ALIPAY_VARS = ['ALIPAY_APP_ID', 'ALIPAY_PRIVATE_KEY', 'ALIPAY_PUBLIC_KEY'] as const;
const STRIPE_VARS = ['STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'] as const;
const UNIONPAY_VARS = ['UNIONPAY_MER_ID', 'UNIONPAY_SIGN_PRIVATE_KEY', 'UNIONPAY_SIGN_CERT', 'UNIONPAY_ROOT_CERT', 'UNIONPAY_MIDDLE_CERT'] as const;

export function loadConfig(env: Env = process.env): AppConfig {
  const problems: string[] = [];
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]);
      problems.push(`${name}: ${issue.message} (got ${JSON.stringify(env[name])})`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const dataDir = resolve(e.DATA_DIR);
  const publicBaseUrl = e.PUBLIC_BASE_URL?.replace(/\/$/, '');

  let jwtSecret = e.JWT_SECRET;
  if (!jwtSecret) {
    if (production) problems.push('JWT_SECRET: required when NODE_ENV=production');
    else jwtSecret = devJwtSecret(dataDir);
  }

  const wechatpay = group(env, WECHATPAY_VARS, problems, (v) => {
    const apiV3Key = v.WECHATPAY_APIV3_KEY;
    if (Buffer.byteLength(apiV3Key) !== 32) problems.push('WECHATPAY_APIV3_KEY: must be exactly 32 bytes');
    return {
      mchid: v.WECHATPAY_MCHID,
      appid: v.WECHATPAY_APPID,
      merchantSerial: v.WECHATPAY_MERCHANT_SERIAL,
      merchantPrivateKey: pem('WECHATPAY_MERCHANT_PRIVATE_KEY', v.WECHATPAY_MERCHANT_PRIVATE_KEY, problems),
      apiV3Key,
      platformPublicKey: pem('WECHATPAY_PUBLIC_KEY', v.WECHATPAY_PUBLIC_KEY, problems),
      platformPublicKeyId: v.WECHATPAY_PUBLIC_KEY_ID,
      baseUrl: (env.WECHATPAY_BASE_URL || 'https://api.mch.weixin.qq.com').replace(/\/$/, ''),
    };
  });
  const alipay = group(env, ALIPAY_VARS, problems, (v) => ({
    appId: v.ALIPAY_APP_ID,
    privateKey: pem('ALIPAY_PRIVATE_KEY', v.ALIPAY_PRIVATE_KEY, problems),
    alipayPublicKey: pem('ALIPAY_PUBLIC_KEY', v.ALIPAY_PUBLIC_KEY, problems),
    gateway: env.ALIPAY_GATEWAY || 'https://openapi.alipay.com/gateway.do',
    sellerId: env.ALIPAY_SELLER_ID || undefined,
  }));
  const stripe = group(env, STRIPE_VARS, problems, (v) => ({
    secretKey: v.STRIPE_SECRET_KEY,
    webhookSecret: v.STRIPE_WEBHOOK_SECRET,
    apiBase: env.STRIPE_API_BASE || undefined,
  }));

  const unionpay = group(env, UNIONPAY_VARS, problems, (v) => {
    const channelType = env.UNIONPAY_GATEWAY_CHANNEL_TYPE;
    if (channelType && channelType !== '07' && channelType !== '08') problems.push('UNIONPAY_GATEWAY_CHANNEL_TYPE: must be 07 or 08');
    return {
      merId: v.UNIONPAY_MER_ID,
      signPrivateKey: pem('UNIONPAY_SIGN_PRIVATE_KEY', v.UNIONPAY_SIGN_PRIVATE_KEY, problems),
      signCert: pem('UNIONPAY_SIGN_CERT', v.UNIONPAY_SIGN_CERT, problems),
      rootCert: pem('UNIONPAY_ROOT_CERT', v.UNIONPAY_ROOT_CERT, problems),
      middleCert: pem('UNIONPAY_MIDDLE_CERT', v.UNIONPAY_MIDDLE_CERT, problems),
      gatewayUrl: env.UNIONPAY_GATEWAY_URL || 'https://gateway.95516.com/gateway/api/',
      fileTransferUrl: env.UNIONPAY_FILE_TRANSFER_URL || undefined,
      gatewayChannelType: (channelType || undefined) as '07' | '08' | undefined,
      allowTestEnvironmentSigner: env.UNIONPAY_ALLOW_TEST_SIGNER === 'true',
    };
  });

  if (problems.length) throw new ConfigError(problems);

  return {
    nodeEnv: e.NODE_ENV,
    production,
    host: e.HOST,
    port: e.PORT,
    publicBaseUrl,
    dataDir,
    database: databaseConfig(e.DATABASE_URL, dataDir),
    redisUrl: e.REDIS_URL,
    jwtSecret: jwtSecret!,
    autoMigrate: e.AUTO_MIGRATE,
    seedDemo: e.SEED_DEMO,
    paymentTimeoutSeconds: e.PAYMENT_TIMEOUT_SECONDS,
    paymentQueryDelays: e.PAYMENT_QUERY_DELAYS,
    simulatorTimeScale: e.SIMULATOR_TIME_SCALE,
    paymentSimulator: (e.PAYMENT_SIMULATOR ?? (production ? 'off' : 'on')) === 'on',
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    shipping: { flatFee: e.SHIPPING_FLAT_FEE, freeThreshold: e.SHIPPING_FREE_THRESHOLD ?? 9900 },
    reconcileDailyAt: e.RECONCILE_DAILY_AT,
    logLevel: e.LOG_LEVEL,
    wechatpay,
    alipay,
    stripe,
    unionpay,
  };
}

function databaseConfig(databaseUrl: string | undefined, dataDir: string): AppConfig['database'] {
  if (databaseUrl && !databaseUrl.startsWith('sqlite:')) return { driver: 'postgresql', url: databaseUrl };
  const path = databaseUrl ? databaseUrl.slice('sqlite:'.length) : join(dataDir, 'orders.sqlite3');
  return { driver: 'sqlite', path: path === ':memory:' || isAbsolute(path) ? path : resolve(path) };
}

/** A provider's credentials are all-or-nothing: some but not all set is a misconfiguration. */
function group<K extends string, T>(
  env: Env,
  names: readonly K[],
  problems: string[],
  build: (values: Record<K, string>) => T,
): T | undefined {
  const present = names.filter((n) => env[n]);
  if (present.length === 0) return undefined;
  const missing = names.filter((n) => !env[n]);
  if (missing.length) {
    for (const n of missing) problems.push(`${n}: required because ${present.join(', ')} ${present.length > 1 ? 'are' : 'is'} set`);
    return undefined;
  }
  return build(Object.fromEntries(names.map((n) => [n, env[n]!])) as Record<K, string>);
}

/** PEM text (literal newlines or `\n` escapes) or a path to a PEM file. */
function pem(name: string, value: string, problems: string[]): string {
  let text = value.replace(/\\n/g, '\n');
  if (!text.startsWith('-----BEGIN')) {
    try {
      text = readFileSync(value, 'utf8');
    } catch {
      problems.push(`${name}: neither PEM text nor a readable PEM file path`);
      return '';
    }
  }
  if (!/^-----BEGIN [A-Z0-9 ]+-----/.test(text.trim())) problems.push(`${name}: not PEM text`);
  return text.trim() + '\n';
}

/** Development only: a secret generated once and kept in DATA_DIR, so tokens survive restarts. */
function devJwtSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}
