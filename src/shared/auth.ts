import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { DomainError, ErrorCode } from './errors';

export type Role = 'customer' | 'admin';

export interface User {
  /** The customer's (or admin's) id: the token's `sub`. */
  id: string;
  role: Role;
}

/** The history actor for a user: `customer:alice`, `admin:bob`. */
export const actorOf = (user: User): string => `${user.role}:${user.id}`;

export function signToken(secret: string, user: User, expiresIn: jwt.SignOptions['expiresIn'] = '12h'): string {
  return jwt.sign({ role: user.role }, secret, { algorithm: 'HS256', subject: user.id, expiresIn });
}

/**
 * The secret as a KeyObject, made once: given a string, jsonwebtoken first tries (and fails) to read it as a public
 * key on every verify, which cost more than half a millisecond per request.
 */
const secretKeys = new Map<string, KeyObject>();
function secretKey(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) secretKeys.set(secret, (key = createSecretKey(Buffer.from(secret, 'utf8'))));
  return key;
}

/** Verifies an HS256 bearer token (`exp` enforced) and reads `sub` and `role`; UNAUTHENTICATED otherwise. */
export function verifyToken(secret: string, token: string): User {
  let claims: jwt.JwtPayload | string;
  try {
    claims = jwt.verify(token, secretKey(secret), { algorithms: ['HS256'] });
  } catch (err) {
    const expired = err instanceof jwt.TokenExpiredError;
    throw new DomainError(ErrorCode.UNAUTHENTICATED, expired ? 'The token has expired' : 'The token is not valid');
  }
  if (typeof claims === 'string' || !claims.exp) {
    throw new DomainError(ErrorCode.UNAUTHENTICATED, 'The token must carry an expiry (exp)');
  }
  const { sub, role } = claims;
  if (typeof sub !== 'string' || !sub || sub.length > 128 || (role !== 'customer' && role !== 'admin')) {
    throw new DomainError(ErrorCode.UNAUTHENTICATED, 'The token needs a sub and a role of customer or admin');
  }
  return { id: sub, role };
}

/** Reads `Bearer <token>`; null when absent. */
export function userFromAuthorization(secret: string, header: unknown): User | null {
  if (header === undefined || header === null || header === '') return null;
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  if (!m) throw new DomainError(ErrorCode.UNAUTHENTICATED, 'Authorization must be "Bearer <token>"');
  return verifyToken(secret, m[1]!);
}

export function requireUser(user: User | null): User {
  if (!user) throw new DomainError(ErrorCode.UNAUTHENTICATED, 'Sign in first: send Authorization: Bearer <token>');
  return user;
}

export function requireAdmin(user: User | null): User {
  const u = requireUser(user);
  if (u.role !== 'admin') throw new DomainError(ErrorCode.FORBIDDEN, 'This needs the admin role');
  return u;
}
