/**
 * The checkout page's script (served as `/checkout-assets/checkout.js`). Plain ES2017, no build step, no globals
 * except `window.__checkout` (a test hook to drop the socket). Kept in a string so it ships in `dist/`.
 *
 * Flow: token from `#token=…` → sessionStorage (and out of the address bar) → `orderByNo` over POST /graphql →
 * `paymentStatusChanged` over graphql-ws (first message: the snapshot) → channel picker → `payOrder` → QR / redirect /
 * JSAPI / card hand-off. The socket reconnects forever with backoff; every (re)subscription starts with a snapshot,
 * so a payment made while the page was away shows as soon as it is back.
 *
 * Written without backticks and `${` so it can live in a String.raw template.
 */
export const CHECKOUT_JS = String.raw`(function () {
  'use strict';

  var TOKEN_KEY = 'checkout.token';
  var LIVE = { PENDING_PAYMENT: true, PAYING: true };
  var PAID = { PAID: true, PROCESSING: true, COMPLETED: true };
  var SIMULATOR_LINKS = {
    WECHAT_NATIVE: { path: '/simulator/wechatpay/scan', param: 'code_url', from: 'qr', label: 'Open the WeChat Pay simulator ("the phone")' },
    ALIPAY_QR: { path: '/simulator/alipay/scan', param: 'qr_code', from: 'qr', label: 'Open the Alipay simulator ("the phone")' },
    UNIONPAY_QR: { path: '/simulator/unionpay/scan', param: 'qrCode', from: 'qr', label: 'Open the UnionPay simulator ("the phone")' },
    STRIPE_CARD: { path: '/simulator/stripe/pay', param: 'client_secret', from: 'secret', label: 'Open the Stripe simulator card form' }
  };
  var ORDER_QUERY = 'query CheckoutOrder($orderNo: String!) { orderByNo(orderNo: $orderNo) { id orderNo status currency ' +
    'subtotalAmount discountAmount shippingAmount totalAmount paidAmount refundedAmount couponCode expiresAt paidAt ' +
    'items { sku name unitPriceAmount quantity lineTotalAmount } } }';
  var PAY_MUTATION = 'mutation CheckoutPay($input: PayOrderInput!) { payOrder(input: $input) { ' +
    'payment { id paymentNo channel status amount currency expiresAt } qrCodeUrl qrCodeImage redirectUrl jsapiParams clientSecret } }';
  var CANCEL_MUTATION = 'mutation CheckoutCancel($orderId: ID!, $reason: String) { cancelOrder(orderId: $orderId, reason: $reason) { id status } }';
  var STATUS_SUBSCRIPTION = 'subscription CheckoutStatus($orderId: ID!) { paymentStatusChanged(orderId: $orderId) { ' +
    'orderId orderNo orderStatus paymentId paymentNo paymentStatus channel totalAmount paidAmount refundedAmount occurredAt } }';

  function $(id) { return document.getElementById(id); }
  function show(el, visible) { el.hidden = !visible; }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  var cfg;
  try {
    cfg = JSON.parse($('checkout-config').textContent || '{}');
  } catch (err) {
    cfg = {};
  }
  var channels = Array.isArray(cfg.channels) ? cfg.channels : [];
  var channelInfo = {};
  channels.forEach(function (c) { channelInfo[c.channel] = c; });

  // ---- token: URL fragment → sessionStorage, and out of the address bar ---------------------------------------
  function takeToken() {
    var token = null;
    var hash = window.location.hash.replace(/^#/, '');
    if (hash) {
      var params = new URLSearchParams(hash);
      var fromHash = params.get('token');
      if (fromHash) {
        token = fromHash;
        try { window.sessionStorage.setItem(TOKEN_KEY, fromHash); } catch (e) { /* storage disabled: keep it in memory */ }
        params.delete('token');
        var rest = params.toString();
        window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search + (rest ? '#' + rest : ''));
      }
    }
    if (!token) {
      try { token = window.sessionStorage.getItem(TOKEN_KEY); } catch (e) { token = null; }
    }
    return token;
  }
  var token = takeToken();

  // ---- money and time ------------------------------------------------------------------------------------------
  function minorDigits(currency) {
    if (currency === 'CNY') return 2;
    try {
      return new Intl.NumberFormat('en', { style: 'currency', currency: currency }).resolvedOptions().maximumFractionDigits;
    } catch (e) {
      return 2;
    }
  }
  /** Minor units (an integer) as text, without floating point: 12800 CNY → ¥128.00; 1999 USD → USD 19.99. */
  function money(amount, currency) {
    var n = Number(amount) || 0;
    var digits = minorDigits(currency);
    var s = String(Math.abs(Math.round(n)));
    var major = s;
    var minor = '';
    if (digits > 0) {
      while (s.length <= digits) s = '0' + s;
      major = s.slice(0, s.length - digits);
      minor = s.slice(s.length - digits);
    }
    major = major.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    var text = major + (digits > 0 ? '.' + minor : '');
    return (n < 0 ? '-' : '') + (currency === 'CNY' ? '\u00a5' + text : currency + ' ' + text);
  }
  var clockSkew = 0; // server time − local time, from the Date header of GraphQL answers
  function serverNow() { return Date.now() + clockSkew; }
  function noteServerDate(header) {
    var t = header ? Date.parse(header) : NaN;
    if (!isNaN(t)) {
      var skew = t - Date.now();
      clockSkew = Math.abs(skew) > 2000 ? skew : 0;
    }
  }
  function formatLeft(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    var h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60);
    var sec = total % 60;
    var mm = (h > 0 && m < 10 ? '0' : '') + m;
    return (h > 0 ? h + ':' : '') + mm + ':' + (sec < 10 ? '0' : '') + sec;
  }

  // ---- GraphQL over HTTP -------------------------------------------------------------------------------------
  var graphqlUrl = new URL(cfg.graphqlPath || '/graphql', window.location.href);
  graphqlUrl.hash = '';
  graphqlUrl.search = '';
  function gql(query, variables) {
    return window.fetch(graphqlUrl.href, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: 'Bearer ' + token },
      body: JSON.stringify({ query: query, variables: variables }),
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (res) {
      noteServerDate(res.headers.get('date'));
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (body && body.errors && body.errors.length) {
          var first = body.errors[0];
          var err = new Error(first.message || 'Request failed');
          err.code = first.extensions && first.extensions.code;
          throw err;
        }
        if (!res.ok || !body || !body.data) throw new Error('The service answered HTTP ' + res.status);
        return body.data;
      });
    });
  }

  // ---- state and rendering ---------------------------------------------------------------------------------
  var order = null;
  var status = null;
  var streamed = false; // once the subscription has spoken, it owns the status
  var lastPaymentStatus = null;
  var countdown = null;
  var sessionSeq = 0;

  function notice(text) {
    var n = $('notice');
    n.textContent = text;
    show(n, true);
    show($('loading'), false);
  }

  function renderOrder() {
    show($('loading'), false);
    $('order-no').textContent = order.orderNo;
    var tbody = $('items');
    tbody.textContent = '';
    order.items.forEach(function (item) {
      var tr = el('tr', { 'data-testid': 'item' });
      var name = el('td');
      name.appendChild(el('span', { class: 'name' }, item.name));
      name.appendChild(el('span', { class: 'sku' }, item.sku));
      tr.appendChild(name);
      tr.appendChild(el('td', { class: 'num' }, '\u00d7' + item.quantity));
      tr.appendChild(el('td', { class: 'num' }, money(item.unitPriceAmount, order.currency)));
      tr.appendChild(el('td', { class: 'num' }, money(item.lineTotalAmount, order.currency)));
      tbody.appendChild(tr);
    });
    $('subtotal').textContent = money(order.subtotalAmount, order.currency);
    $('discount').textContent = order.discountAmount > 0
      ? money(-order.discountAmount, order.currency) + (order.couponCode ? ' (' + order.couponCode + ')' : '')
      : money(0, order.currency);
    $('shipping').textContent = order.shippingAmount > 0 ? money(order.shippingAmount, order.currency) : 'Free';
    $('total').textContent = money(order.totalAmount, order.currency);
    show($('order'), true);
  }

  function banner(kind, text) {
    var b = $('status-message');
    if (!kind) { show(b, false); b.textContent = ''; return; }
    b.className = 'banner ' + kind;
    b.textContent = text;
    show(b, true);
  }

  function expired() {
    return Boolean(order && order.expiresAt && Date.parse(order.expiresAt) <= serverNow());
  }

  function setStatus(next) {
    if (!next) return;
    var changed = next !== status;
    status = next;
    var s = $('payment-status');
    s.textContent = next;
    s.className = 'status s-' + next.toLowerCase();
    var live = Boolean(LIVE[next]);
    show($('pay'), live);
    if (!live) {
      show($('session'), false);
      show($('pay-error'), false);
      stopCountdown();
    } else {
      startCountdown();
    }
    if (PAID[next]) {
      var paidText = 'Paid \u2713 ' + money(order.paidAmount || order.totalAmount, order.currency);
      if (order.paidAt) paidText += ' on ' + new Date(order.paidAt).toLocaleString();
      banner('ok', paidText + '. Thank you!');
    } else if (next === 'CANCELLED') {
      banner('bad', expired()
        ? 'This order expired before it was paid and has been cancelled.'
        : 'This order has been cancelled.');
    } else if (next === 'REFUNDED') {
      banner('info', 'This order has been refunded (' + money(order.refundedAmount || order.paidAmount, order.currency) + ').');
    } else if (next === 'PAYING') {
      banner('info', 'Waiting for your payment\u2026');
    } else {
      banner(null);
    }
    if (changed && !live) refreshDetails();
  }

  function refreshDetails() {
    gql(ORDER_QUERY, { orderNo: order.orderNo }).then(function (data) {
      if (!data.orderByNo) return;
      order = data.orderByNo;
      renderOrder();
      if (!streamed) setStatus(order.status);
      else if (status && !LIVE[status]) setStatus(status); // re-render the banner with paidAt/refunds
    }).catch(function () { /* details only; the status came from the stream */ });
  }

  function startCountdown() {
    var e = $('expiry');
    if (!order.expiresAt) { show(e, false); return; }
    if (countdown) return;
    var tick = function () {
      var left = Date.parse(order.expiresAt) - serverNow();
      if (left > 0) {
        e.className = 'expiry';
        e.textContent = 'Pay within ' + formatLeft(left) + ' \u2014 the order is cancelled after that.';
        $('pay-button').disabled = payBusy;
      } else {
        e.className = 'expiry over';
        e.textContent = 'Time is up: this order can no longer be paid.';
        $('pay-button').disabled = true;
      }
    };
    tick();
    show(e, true);
    countdown = window.setInterval(tick, 1000);
  }
  function stopCountdown() {
    if (countdown) window.clearInterval(countdown);
    countdown = null;
    show($('expiry'), false);
  }

  // ---- the channel picker and payOrder -------------------------------------------------------------------
  var payBusy = false;

  function renderChannels() {
    var box = $('channels');
    box.textContent = '';
    var group = null;
    channels.forEach(function (c) {
      if (c.group !== group) {
        group = c.group;
        box.appendChild(el('div', { class: 'group' }, group));
      }
      var label = el('label', { 'data-testid': 'channel-' + c.channel });
      var input = el('input', { type: 'radio', name: 'channel', value: c.channel });
      label.appendChild(input);
      label.appendChild(el('span', null, c.label));
      box.appendChild(label);
    });
    box.addEventListener('change', function () {
      var picked = selectedChannel();
      show($('openid-row'), picked === 'WECHAT_JSAPI');
      show($('pay-error'), false);
    });
  }

  function selectedChannel() {
    var checked = document.querySelector('input[name=channel]:checked');
    return checked ? checked.value : null;
  }

  function payError(text) {
    var e = $('pay-error');
    e.textContent = text;
    show(e, Boolean(text));
  }

  function returnUrl() {
    return window.location.origin + window.location.pathname;
  }

  function onPay(event) {
    event.preventDefault();
    if (payBusy || !order) return;
    var channel = selectedChannel();
    if (!channel) return payError('Pick a way to pay first.');
    var input = { orderId: order.id, channel: channel };
    var info = channelInfo[channel] || {};
    if (channel === 'WECHAT_JSAPI') {
      var openid = $('openid').value.trim();
      if (!openid) return payError('JSAPI payments need your WeChat openid.');
      input.openid = openid;
    }
    if (channel === 'WECHAT_H5' && cfg.clientIp) input.clientIp = cfg.clientIp;
    if (info.kind === 'redirect' || info.kind === 'card') input.returnUrl = returnUrl();
    payError('');
    payBusy = true;
    $('pay-button').disabled = true;
    $('pay-button').textContent = 'Starting payment\u2026';
    var seq = ++sessionSeq;
    show($('session'), false);
    gql(PAY_MUTATION, { input: input }).then(function (data) {
      if (seq === sessionSeq) renderSession(channel, data.payOrder);
    }).catch(function (err) {
      if (seq !== sessionSeq) return;
      if (err.code === 'ALREADY_PAID') refreshDetails();
      payError(err.message || 'The payment could not be started.');
    }).then(function () {
      payBusy = false;
      $('pay-button').textContent = 'Pay';
      $('pay-button').disabled = expired();
    });
  }

  function probe(url) {
    // Simulators exist only when the service runs them (never in production): link only to a path that answers.
    return window.fetch(url, { method: 'HEAD', cache: 'no-store', credentials: 'same-origin', redirect: 'manual' })
      .then(function (res) { return res.status === 200; }, function () { return false; });
  }

  function safeHttpUrl(value) {
    try {
      var u = new URL(value, window.location.href);
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderSession(channel, s) {
    var box = $('session');
    box.textContent = '';
    var info = channelInfo[channel] || { group: channel, label: '' };
    var seq = sessionSeq;
    var sim = SIMULATOR_LINKS[channel];
    var simValue = null;

    if (s.qrCodeImage && /^data:image\//.test(s.qrCodeImage)) {
      box.appendChild(el('p', null, 'Scan with ' + info.group + ' to pay ' + money(s.payment.amount, s.payment.currency)));
      box.appendChild(el('img', { src: s.qrCodeImage, alt: info.group + ' QR code', 'data-testid': 'qr-image', width: '224', height: '224' }));
      if (s.qrCodeUrl) box.appendChild(el('code', { 'data-testid': 'qr-code-text' }, s.qrCodeUrl));
      if (sim && sim.from === 'qr') simValue = s.qrCodeUrl;
    }
    if (s.redirectUrl) {
      var target = safeHttpUrl(s.redirectUrl);
      if (target) {
        box.appendChild(el('p', null, 'Continue on ' + info.group + '\u2019s page; you will come back here afterwards.'));
        var go = el('a', { class: 'button', href: target, 'data-testid': 'redirect-button' }, 'Continue to pay');
        box.appendChild(go);
      } else {
        box.appendChild(el('p', { class: 'error' }, 'The payment page address is not valid.'));
      }
    }
    if (s.jsapiParams) {
      var params = null;
      try { params = JSON.parse(s.jsapiParams); } catch (e) { params = null; }
      box.appendChild(el('p', null, 'Open this page inside WeChat to pay. wx.requestPayment parameters:'));
      box.appendChild(el('pre', { 'data-testid': 'jsapi-params' }, params ? JSON.stringify(params, null, 2) : s.jsapiParams));
      if (params && window.WeixinJSBridge && typeof window.WeixinJSBridge.invoke === 'function') {
        var wx = el('button', { type: 'button', class: 'primary', 'data-testid': 'jsapi-button' }, 'Pay in WeChat');
        wx.addEventListener('click', function () {
          window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, function () { /* the stream tells the outcome */ });
        });
        box.appendChild(wx);
      }
    }
    if (s.clientSecret) {
      box.appendChild(el('p', null, 'Card payment: the card form confirms this PaymentIntent with its client secret.'));
      box.appendChild(el('code', { 'data-testid': 'client-secret' }, s.clientSecret));
      if (sim && sim.from === 'secret') simValue = s.clientSecret;
    }
    if (!box.childNodes.length) box.appendChild(el('p', null, 'Payment started; waiting for the provider\u2026'));
    show(box, true);

    if (sim && simValue) {
      var href = sim.path + '?' + sim.param + '=' + encodeURIComponent(simValue);
      probe(href).then(function (ok) {
        if (!ok || seq !== sessionSeq) return;
        var p = el('p');
        p.appendChild(el('a', { class: 'sim', href: href, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'simulator-link' }, sim.label));
        box.appendChild(p);
      });
    }
  }

  // ---- cancel ----------------------------------------------------------------------------------------------
  function wireCancel() {
    $('cancel-button').addEventListener('click', function () {
      show($('cancel-button'), false);
      show($('cancel-confirm-row'), true);
    });
    $('cancel-abort').addEventListener('click', function () {
      show($('cancel-confirm-row'), false);
      show($('cancel-button'), true);
    });
    $('cancel-confirm').addEventListener('click', function () {
      var button = $('cancel-confirm');
      button.disabled = true;
      gql(CANCEL_MUTATION, { orderId: order.id, reason: 'cancelled by the customer at checkout' }).then(function (data) {
        setStatus(data.cancelOrder.status);
      }).catch(function (err) {
        payError(err.message || 'The order could not be cancelled.');
      }).then(function () {
        button.disabled = false;
        show($('cancel-confirm-row'), false);
        show($('cancel-button'), true);
      });
    });
  }

  // ---- paymentStatusChanged over graphql-ws ---------------------------------------------------------------
  var client = null;
  var currentSocket = null;
  var everConnected = false;
  var holdUntil = 0;
  var wakeRetry = null;
  var pongTimer = null;

  function connection(state, text) {
    var c = $('connection');
    c.setAttribute('data-state', state);
    c.textContent = text;
    show(c, state !== 'idle');
  }

  function retryWait(retries) {
    // Exponential backoff with jitter, capped at 15 s; an 'online' event cuts the wait short.
    var until = Date.now() + Math.min(15000, 500 * Math.pow(2, retries)) + Math.floor(Math.random() * 300);
    return new Promise(function (resolve) {
      var timer = null;
      function check() {
        var left = Math.max(until, holdUntil) - Date.now();
        if (left <= 0) {
          wakeRetry = null;
          resolve();
        } else {
          timer = window.setTimeout(check, left);
        }
      }
      wakeRetry = function () {
        until = 0;
        window.clearTimeout(timer);
        check();
      };
      check();
    });
  }
  window.addEventListener('online', function () { if (wakeRetry) wakeRetry(); });

  function applyEvent(ev) {
    if (!ev || !order || ev.orderId !== order.id) return;
    streamed = true;
    order.paidAmount = ev.paidAmount;
    order.refundedAmount = ev.refundedAmount;
    order.totalAmount = ev.totalAmount;
    if (ev.paymentStatus === 'FAILED' && lastPaymentStatus !== 'FAILED' && LIVE[ev.orderStatus]) {
      payError('The payment did not go through. Try again or pick another way to pay.');
    }
    lastPaymentStatus = ev.paymentStatus;
    setStatus(ev.orderStatus);
  }

  function subscribe() {
    if (!window.graphqlWs || typeof window.graphqlWs.createClient !== 'function') {
      notice('Live updates are unavailable (the realtime client did not load). Reload the page to see the latest status.');
      return;
    }
    var wsUrl = new URL(graphqlUrl.href);
    wsUrl.protocol = graphqlUrl.protocol === 'https:' ? 'wss:' : 'ws:';
    client = window.graphqlWs.createClient({
      url: wsUrl.href,
      lazy: true,
      retryAttempts: Infinity,
      shouldRetry: function () { return true; },
      retryWait: retryWait,
      keepAlive: 10000,
      connectionParams: function () { return { authorization: 'Bearer ' + token }; },
      on: {
        connecting: function () {
          connection(everConnected ? 'reconnecting' : 'connecting', everConnected ? 'reconnecting\u2026' : 'connecting\u2026');
        },
        opened: function (socket) { currentSocket = socket; },
        connected: function () {
          everConnected = true;
          connection('live', 'live');
        },
        closed: function (event) {
          currentSocket = null;
          window.clearTimeout(pongTimer);
          if (!everConnected) return;
          var why = event && event.code === 4403 ? ' (not authorised)' : '';
          connection('reconnecting', 'reconnecting\u2026' + why);
        },
        ping: function (received) {
          // A ping we sent that gets no pong within 5 s means a dead socket: drop it so the client reconnects.
          if (!received) pongTimer = window.setTimeout(function () { if (client) client.terminate(); }, 5000);
        },
        pong: function (received) { if (received) window.clearTimeout(pongTimer); }
      }
    });
    startSubscription();
  }

  function startSubscription() {
    client.subscribe({ query: STATUS_SUBSCRIPTION, variables: { orderId: order.id } }, {
      next: function (message) {
        if (message.errors && message.errors.length) {
          notice('Live updates stopped: ' + (message.errors[0].message || 'error'));
          return;
        }
        applyEvent(message.data && message.data.paymentStatusChanged);
      },
      error: function (err) {
        if (Array.isArray(err)) {
          // GraphQL errors (e.g. the order is not visible to this token): retrying will not help.
          connection('idle', '');
          notice('Live updates are unavailable: ' + ((err[0] && err[0].message) || 'error'));
          return;
        }
        // A close the client treats as fatal: keep trying anyway, after a pause.
        connection('reconnecting', 'reconnecting\u2026');
        window.setTimeout(startSubscription, 3000);
      },
      complete: function () { /* the server ends the stream only when it shuts down; the client reconnects */ }
    });
  }

  // A hook for tests: drop the socket as a network failure would, optionally staying away holdMs.
  Object.defineProperty(window, '__checkout', {
    value: Object.freeze({
      dropSocket: function (holdMs) {
        holdUntil = Date.now() + Math.max(0, Math.min(Number(holdMs) || 0, 60000));
        if (client) client.terminate();
        else if (currentSocket) currentSocket.close(4499, 'dropped');
      }
    })
  });

  // ---- start ------------------------------------------------------------------------------------------------
  function start() {
    if (!cfg.orderNo) return notice('This checkout page is misconfigured.');
    if (!token) {
      return notice('This checkout link is missing its sign-in token. Open the payment link from your order again.');
    }
    renderChannels();
    wireCancel();
    $('pay-form').addEventListener('submit', onPay);
    gql(ORDER_QUERY, { orderNo: cfg.orderNo }).then(function (data) {
      if (!data.orderByNo) return notice('Order ' + cfg.orderNo + ' was not found for this sign-in.');
      order = data.orderByNo;
      renderOrder();
      if (!streamed) setStatus(order.status);
      subscribe();
    }).catch(function (err) {
      if (err.code === 'UNAUTHENTICATED') notice('Your sign-in has expired. Open the payment link from your order again.');
      else notice('The order could not be loaded: ' + (err.message || 'error') + '. Reload the page to try again.');
    });
  }

  start();
})();
`;
