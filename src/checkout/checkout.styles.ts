/** The checkout page's stylesheet (served as `/checkout-assets/checkout.css`; inline here so it ships in `dist/`). */
export const CHECKOUT_CSS = `*{box-sizing:border-box}
[hidden]{display:none !important}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f3f4f6;color:#111827;font:15px/1.5 -apple-system,"PingFang SC","Microsoft YaHei","Helvetica Neue",Arial,sans-serif}
.checkout{max-width:640px;margin:0 auto;padding:16px}
.top{display:flex;align-items:center;justify-content:space-between;gap:12px}
h1{font-size:22px;margin:8px 0 12px}
h2{font-size:17px;margin:0 0 12px}
.card{background:#fff;border-radius:12px;padding:16px 18px;margin:0 0 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.muted{color:#6b7280}
.notice{background:#fff7ed;border:1px solid #fdba74;color:#9a3412;border-radius:10px;padding:12px 14px}
.error{color:#b91c1c;margin:10px 0 0}
.connection{font-size:12px;border-radius:999px;padding:3px 10px;background:#e5e7eb;color:#374151}
.connection[data-state=reconnecting]{background:#fef3c7;color:#92400e}
.connection[data-state=live]{background:#dcfce7;color:#166534}
.order-head{display:flex;flex-wrap:wrap;justify-content:space-between;gap:8px;margin-bottom:10px}
.status{display:inline-block;font:600 12px/1.6 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:1px 8px;border-radius:6px;background:#e5e7eb}
.status.s-paying,.status.s-pending_payment{background:#dbeafe;color:#1e40af}
.status.s-paid,.status.s-processing,.status.s-completed{background:#dcfce7;color:#166534}
.status.s-cancelled{background:#fee2e2;color:#991b1b}
.status.s-refunded{background:#f3e8ff;color:#6b21a8}
.banner{border-radius:10px;padding:12px 14px;font-weight:600;margin:6px 0 12px}
.banner.ok{background:#dcfce7;color:#14532d;font-size:18px}
.banner.bad{background:#fee2e2;color:#7f1d1d}
.banner.info{background:#eff6ff;color:#1e3a8a}
table.items{width:100%;border-collapse:collapse;margin:4px 0 8px}
.items th,.items td{padding:6px 4px;border-bottom:1px solid #f0f0f0;text-align:left;vertical-align:top}
.items th{font-size:12px;color:#6b7280;font-weight:500}
.items .num{text-align:right;white-space:nowrap}
.items .sku{display:block;font-size:12px;color:#9ca3af}
.totals{display:grid;grid-template-columns:1fr auto;gap:2px 16px;margin:8px 0 0}
.totals dt{color:#6b7280}.totals dd{margin:0;text-align:right;white-space:nowrap}
.totals .grand{font-weight:700;font-size:18px;color:#111827;margin-top:4px}
.expiry{margin:10px 0 0;color:#92400e}
.expiry.over{color:#b91c1c;font-weight:600}
.channels{display:grid;gap:6px}
.channels .group{font-size:12px;color:#6b7280;margin-top:6px}
.channels label{display:flex;align-items:center;gap:8px;border:1px solid #e5e7eb;border-radius:8px;padding:8px 10px;cursor:pointer}
.channels label:has(input:checked){border-color:#2563eb;background:#eff6ff}
.field{margin:12px 0 0}.field label{display:block;font-size:13px;color:#374151;margin-bottom:4px}
.field input{width:100%;padding:8px 10px;border:1px solid #d1d5db;border-radius:8px;font:inherit}
button{font:inherit;cursor:pointer}
button:disabled{opacity:.55;cursor:default}
button.primary,a.button{display:inline-block;margin-top:14px;border:0;border-radius:8px;padding:11px 22px;background:#2563eb;color:#fff;font-weight:600;text-decoration:none}
button.danger{border:0;border-radius:6px;padding:4px 10px;background:#dc2626;color:#fff}
button.link{border:0;background:none;color:#6b7280;text-decoration:underline;padding:0}
.session{margin-top:16px;border-top:1px solid #f0f0f0;padding-top:14px;text-align:center}
.session img{width:224px;height:224px;image-rendering:pixelated;border:1px solid #e5e7eb;border-radius:8px}
.session code,.session pre{display:block;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f9fafb;border-radius:6px;padding:6px 8px;word-break:break-all;white-space:pre-wrap;text-align:left}
.session a.sim{display:inline-block;margin-top:8px}
.cancel{margin-top:16px;font-size:13px;color:#6b7280;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
`;
