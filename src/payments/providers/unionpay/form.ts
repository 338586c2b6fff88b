/**
 * The auto-submitting form that carries a signed front request (or UnionPay's signed front return) in the
 * customer's browser: `frontTransReq.do` wants a browser POST, while a payment session only hands out a
 * `redirectUrl`. The page is self-contained (no assets), submits itself with one inline script whose hash is pinned
 * by `FRONT_FORM_CSP`, and offers a button when scripts are off.
 */
import { createHash } from 'node:crypto';
import type { AcpFields } from './types';

/** The only script on the page; `FRONT_FORM_CSP` allows exactly this text. */
export const FRONT_FORM_SCRIPT = "document.getElementById('acp-form').submit();";

/**
 * Content-Security-Policy for the page: nothing may load, only the pinned script runs. `form-action` is left
 * open on purpose: browsers apply it to the redirects that follow the POST (UnionPay → bank pages).
 */
export const FRONT_FORM_CSP = `default-src 'none'; script-src 'sha256-${createHash('sha256')
  .update(FRONT_FORM_SCRIPT, 'utf8')
  .digest('base64')}'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'`;

/** Headers to send with a page from `renderFrontForm`. */
export const FRONT_FORM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': FRONT_FORM_CSP,
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An HTML page that POSTs `fields` (UTF-8 form encoding) to `action` as soon as it loads. */
export function renderFrontForm(fields: AcpFields, action: string, title = 'Redirecting to UnionPay…'): string {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>body{font-family:-apple-system,"PingFang SC","Helvetica Neue",Arial,sans-serif;text-align:center;margin-top:20vh;color:#333}button{padding:12px 24px;font-size:16px}</style>
</head><body>
<form id="acp-form" method="post" action="${escapeHtml(action)}" accept-charset="UTF-8">
${inputs}
<p>${escapeHtml(title)}</p>
<noscript><button type="submit">Continue</button></noscript>
</form>
<script>${FRONT_FORM_SCRIPT}</script>
</body></html>`;
}

/** A small page for a link that cannot be used (bad signature, expired). */
export function renderFrontFormError(message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Payment link unavailable</title></head>
<body style="font-family:-apple-system,Arial,sans-serif;text-align:center;margin-top:20vh;color:#333">
<p data-testid="error">${escapeHtml(message)}</p></body></html>`;
}
