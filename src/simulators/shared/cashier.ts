/**
 * A browser cashier page for redirect-style payments (Alipay page/WAP, a bank's front gateway): what is being paid and
 * a plain HTML form whose buttons submit an outcome to the simulator, which then redirects back to the merchant.
 * No script and nothing from the internet, so it works in any browser and with a plain HTTP client.
 */
import { escapeHtml } from './html';

export interface CashierButton {
  label: string;
  /** The button submits `name=value` along with the hidden fields. */
  name: string;
  value: string;
  /** `primary` is the brand-coloured one. */
  primary?: boolean;
}

export interface CashierPageInput {
  /** The provider's name at the top, e.g. `Alipay cashier (simulator)`. */
  brand: string;
  brandColor: string;
  merchant: string;
  description: string;
  /** Already formatted, e.g. `¥88.00`. */
  amountText: string;
  /** Extra lines under the amount (ids, expiry). */
  details?: Array<[string, string]>;
  /** Where the form POSTs (form-encoded); relative URLs resolve against the page. */
  action?: string;
  hidden?: Record<string, string>;
  buttons?: CashierButton[];
  /** Shown instead of the form (paid, closed, failed, an error). */
  notice?: string;
  /** A provider error code shown with the notice (`data-testid="error-code"`). */
  errorCode?: string;
  /** Links under the card, e.g. back to the merchant. */
  links?: Array<{ label: string; href: string }>;
}

export function renderCashierPage(p: CashierPageInput): string {
  const details = (p.details ?? [])
    .map(([k, v]) => `<div class="row"><span>${escapeHtml(k)}</span><span>${escapeHtml(v)}</span></div>`)
    .join('');
  const hidden = Object.entries(p.hidden ?? {})
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  const buttons = (p.buttons ?? [])
    .map(
      (b, i) =>
        `<button type="submit" name="${escapeHtml(b.name)}" value="${escapeHtml(b.value)}" class="${b.primary ? 'primary' : 'secondary'}" data-testid="btn-${i}">${escapeHtml(b.label)}</button>`,
    )
    .join('');
  const body =
    p.notice !== undefined
      ? `<p class="notice" data-testid="notice">${escapeHtml(p.notice)}</p>${
          p.errorCode ? `<p class="code" data-testid="error-code">${escapeHtml(p.errorCode)}</p>` : ''
        }`
      : `<form method="post" action="${escapeHtml(p.action ?? '')}" class="actions">${hidden}${buttons}</form>`;
  const links = (p.links ?? []).map((l) => `<a href="${escapeHtml(l.href)}">${escapeHtml(l.label)}</a>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(p.brand)}</title>
<style>
  *{box-sizing:border-box} body{margin:0;background:#f5f5f5;font-family:-apple-system,"PingFang SC","Helvetica Neue",Arial,sans-serif;color:#111}
  header{background:${escapeHtml(p.brandColor)};color:#fff;padding:14px 16px;font-weight:600;text-align:center}
  main{max-width:480px;margin:0 auto}
  .card{background:#fff;margin:16px;border-radius:10px;padding:20px;text-align:center}
  .merchant{color:#555;font-size:15px}.desc{color:#888;font-size:13px;margin-top:6px;word-break:break-all}
  .amount{font-size:36px;font-weight:600;margin:14px 0}
  .row{display:flex;justify-content:space-between;font-size:12px;color:#999;margin-top:6px;gap:8px;word-break:break-all}
  .actions{margin:0 16px;display:flex;flex-direction:column;gap:10px}
  button{border:0;border-radius:8px;padding:14px;font-size:16px;cursor:pointer}
  button.primary{background:${escapeHtml(p.brandColor)};color:#fff} button.secondary{background:#fff;color:#333;border:1px solid #ddd}
  .notice{margin:16px;text-align:center;font-size:15px}.code{text-align:center;color:#d93025;font-family:monospace}
  .links{margin:16px;text-align:center}.links a{color:${escapeHtml(p.brandColor)};margin:0 8px}
</style></head>
<body>
<header>${escapeHtml(p.brand)}</header>
<main>
<div class="card">
  <div class="merchant" data-testid="merchant">${escapeHtml(p.merchant)}</div>
  <div class="desc" data-testid="description">${escapeHtml(p.description)}</div>
  <div class="amount" data-testid="amount">${escapeHtml(p.amountText)}</div>
  ${details}
</div>
${body}
<div class="links">${links}</div>
</main>
</body></html>`;
}
