import { createHmac, timingSafeEqual } from 'node:crypto';

/** HS256 JWT check with node:crypto only (signature, `exp`, `sub`, `role`): what a bare server must still do. */
export function verifyBearer(secret: string, header: unknown): { id: string; role: string } | null {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return null;
  const token = header.slice(7).trim();
  const dot1 = token.indexOf('.');
  const dot2 = token.indexOf('.', dot1 + 1);
  if (dot1 < 0 || dot2 < 0) return null;
  const expected = createHmac('sha256', secret).update(token.slice(0, dot2)).digest();
  const given = Buffer.from(token.slice(dot2 + 1), 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const claims = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString('utf8')) as {
      sub?: string;
      role?: string;
      exp?: number;
    };
    if (!claims.exp || claims.exp * 1000 < Date.now() || typeof claims.sub !== 'string' || typeof claims.role !== 'string') return null;
    return { id: claims.sub, role: claims.role };
  } catch {
    return null;
  }
}
