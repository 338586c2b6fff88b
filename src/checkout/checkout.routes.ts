/**
 * `GET /checkout/:orderNo`: the checkout page, served by the service itself (see the contract).
 *
 * - The HTML is a static skeleton (the same for everyone); the browser reads the customer's token from the URL
 *   fragment (`#token=…`, never sent to a server), keeps it in sessionStorage and loads the order over POST /graphql.
 * - Its script, stylesheet and the graphql-ws browser client are served by this router under `/checkout-assets`
 *   (graphql-ws from node_modules, the rest from strings so they ship in `dist/`), with long-lived versioned URLs.
 * - Strict CSP: same-origin scripts only, no inline script or style, images from self and `data:` (the QR code),
 *   connections to self and ws:/wss: (graphql-ws).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { CHECKOUT_JS } from './checkout.client';
import { CHECKOUT_CONTENT_SECURITY_POLICY, renderCheckoutPage, renderNotFoundPage } from './checkout.page';
import { CHECKOUT_CSS } from './checkout.styles';

export { CHECKOUT_CONTENT_SECURITY_POLICY } from './checkout.page';

export const CHECKOUT_ASSETS_PATH = '/checkout-assets';
const ORDER_NO = /^[0-9A-Za-z]{1,40}$/;
const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60;

type Asset =
  | { kind: 'file'; file: string; version: string }
  | { kind: 'inline'; body: string; contentType: string; version: string };

function digest(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

function loadAssets(): Map<string, Asset> {
  // graphql-ws's "exports" map hides umd/; its package.json is exported, so resolve the package root through it.
  const graphqlWsDir = path.dirname(require.resolve('graphql-ws/package.json'));
  const graphqlWsUmd = path.join(graphqlWsDir, 'umd', 'graphql-ws.min.js');
  return new Map<string, Asset>([
    ['graphql-ws.min.js', { kind: 'file', file: graphqlWsUmd, version: digest(readFileSync(graphqlWsUmd)) }],
    ['checkout.js', { kind: 'inline', body: CHECKOUT_JS, contentType: 'text/javascript; charset=utf-8', version: digest(CHECKOUT_JS) }],
    ['checkout.css', { kind: 'inline', body: CHECKOUT_CSS, contentType: 'text/css; charset=utf-8', version: digest(CHECKOUT_CSS) }],
  ]);
}

/** The requester's address as the service sees it (behind a trusted proxy: the client's), for WECHAT_H5's payer IP. */
function clientIpOf(req: Request): string | null {
  const ip = (req.ip ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return ip || null;
}

function pageHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': CHECKOUT_CONTENT_SECURITY_POLICY,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
  });
}

export function checkoutRouter(): Router {
  const assets = loadAssets();
  const assetUrl = (name: string): string => {
    const asset = assets.get(name);
    if (!asset) throw new Error(`checkoutRouter: unknown asset ${name}`);
    return `${CHECKOUT_ASSETS_PATH}/${encodeURIComponent(name)}?v=${asset.version}`;
  };
  const notFoundHtml = renderNotFoundPage(assetUrl);

  const router = express.Router();

  router.get('/checkout/:orderNo', (req: Request, res: Response) => {
    const orderNo = req.params.orderNo;
    pageHeaders(res);
    if (typeof orderNo !== 'string' || !ORDER_NO.test(orderNo)) {
      res.status(404).type('html').send(notFoundHtml);
      return;
    }
    res.type('html').send(
      renderCheckoutPage({ orderNo, graphqlPath: '/graphql', clientIp: clientIpOf(req), assetUrl }),
    );
  });

  // Some providers (UnionPay's front gateway) send the browser back to returnUrl with a form POST: answer with the
  // page itself through a 303, so a reload does not post again. The posted fields are ignored; the page asks the
  // service, which learnt the result from the verified notification.
  router.post('/checkout/:orderNo', (req: Request, res: Response) => {
    const orderNo = req.params.orderNo;
    if (typeof orderNo !== 'string' || !ORDER_NO.test(orderNo)) return void res.status(404).type('html').send(notFoundHtml);
    res.redirect(303, `/checkout/${encodeURIComponent(orderNo)}`);
  });

  router.get(`${CHECKOUT_ASSETS_PATH}/:name`, (req: Request, res: Response, next: NextFunction) => {
    const name = req.params.name;
    const asset = typeof name === 'string' ? assets.get(name) : undefined;
    if (!asset) {
      next();
      return;
    }
    const headers = { 'X-Content-Type-Options': 'nosniff', 'Cross-Origin-Resource-Policy': 'same-origin' };
    if (asset.kind === 'inline') {
      res.set({ ...headers, 'Cache-Control': `public, max-age=${ONE_YEAR_SECONDS}, immutable` });
      res.type(asset.contentType).send(asset.body);
      return;
    }
    res.sendFile(asset.file, { maxAge: ONE_YEAR_SECONDS * 1000, immutable: true, headers }, (err) => {
      if (err && !res.headersSent) next(err);
    });
  });

  return router;
}
