/**
 * The simulated customer's phone: one small self-contained HTML page (inline CSS and script, nothing from the
 * internet) showing what is being paid, with buttons that POST an outcome to the simulator.
 */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

export interface PhonePageButton {
  label: string;
  /** Merged into `payload` as the POSTed JSON. */
  fields: Record<string, unknown>;
  /** `primary` is the brand-coloured one. */
  primary?: boolean;
}

export interface PhonePageInput {
  /** The wallet's name at the top, e.g. `WeChat Pay (simulator)`. */
  brand: string;
  brandColor: string;
  merchant: string;
  description: string;
  /** Already formatted, e.g. `¥88.00`. */
  amountText: string;
  /** Extra lines under the amount (ids, expiry). */
  details?: Array<[string, string]>;
  /** Where the buttons POST to (relative URLs resolve against the page). */
  actionUrl: string;
  payload: Record<string, unknown>;
  buttons: PhonePageButton[];
  /** When set, the page shows this instead of the buttons (e.g. the order is closed). */
  notice?: string;
}

export function renderPhonePage(p: PhonePageInput): string {
  const details = (p.details ?? [])
    .map(([k, v]) => `<div class="row"><span>${escapeHtml(k)}</span><span>${escapeHtml(v)}</span></div>`)
    .join('');
  const buttons = p.notice
    ? `<p class="notice" data-testid="notice">${escapeHtml(p.notice)}</p>`
    : p.buttons
        .map(
          (b, i) =>
            `<button type="button" class="${b.primary ? 'primary' : 'secondary'}" data-index="${i}" data-testid="btn-${i}">${escapeHtml(b.label)}</button>`,
        )
        .join('');
  const config = { actionUrl: p.actionUrl, payload: p.payload, buttons: p.buttons.map((b) => b.fields) };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(p.brand)}</title>
<style>
  *{box-sizing:border-box} body{margin:0;background:#ededed;font-family:-apple-system,"PingFang SC","Helvetica Neue",Arial,sans-serif;color:#111}
  .phone{max-width:380px;min-height:100vh;margin:0 auto;background:#f7f7f7;display:flex;flex-direction:column}
  header{background:${escapeHtml(p.brandColor)};color:#fff;padding:14px 16px;font-weight:600;text-align:center}
  .card{background:#fff;margin:16px;border-radius:10px;padding:20px;text-align:center}
  .merchant{color:#555;font-size:15px}.desc{color:#888;font-size:13px;margin-top:6px;word-break:break-all}
  .amount{font-size:36px;font-weight:600;margin:14px 0}
  .row{display:flex;justify-content:space-between;font-size:12px;color:#999;margin-top:6px;gap:8px;word-break:break-all}
  .actions{margin:0 16px;display:flex;flex-direction:column;gap:10px}
  button{border:0;border-radius:8px;padding:14px;font-size:16px;cursor:pointer}
  button.primary{background:${escapeHtml(p.brandColor)};color:#fff} button.secondary{background:#fff;color:#333;border:1px solid #ddd}
  button:disabled{opacity:.5}
  .notice,.result{margin:16px;text-align:center;font-size:15px}.result.ok{color:#07c160}.result.err{color:#d93025}
</style></head>
<body><div class="phone">
<header>${escapeHtml(p.brand)}</header>
<div class="card">
  <div class="merchant" data-testid="merchant">${escapeHtml(p.merchant)}</div>
  <div class="desc" data-testid="description">${escapeHtml(p.description)}</div>
  <div class="amount" data-testid="amount">${escapeHtml(p.amountText)}</div>
  ${details}
</div>
<div class="actions">${buttons}</div>
<div class="result" data-testid="result" role="status"></div>
</div>
<script type="application/json" id="cfg">${scriptJson(config)}</script>
<script>
(function(){
  var cfg = JSON.parse(document.getElementById('cfg').textContent);
  var out = document.querySelector('[data-testid=result]');
  var buttons = document.querySelectorAll('button[data-index]');
  Array.prototype.forEach.call(buttons, function(btn){
    btn.addEventListener('click', function(){
      Array.prototype.forEach.call(buttons, function(b){ b.disabled = true; });
      out.className = 'result'; out.textContent = '…';
      var body = Object.assign({}, cfg.payload, cfg.buttons[Number(btn.getAttribute('data-index'))]);
      fetch(cfg.actionUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then(function(r){ return r.json().catch(function(){ return {}; }).then(function(j){ return { ok: r.ok, j: j }; }); })
        .then(function(x){
          out.className = 'result ' + (x.ok ? 'ok' : 'err');
          out.textContent = x.ok ? (x.j.trade_state || x.j.status || 'OK') : (x.j.message || x.j.code || 'Error');
          if (!x.ok) Array.prototype.forEach.call(buttons, function(b){ b.disabled = false; });
        })
        .catch(function(e){ out.className = 'result err'; out.textContent = String(e); Array.prototype.forEach.call(buttons, function(b){ b.disabled = false; }); });
    });
  });
})();
</script>
</body></html>`;
}
