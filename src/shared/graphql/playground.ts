/**
 * Self-hosted GraphiQL playground for admins.
 *
 * - `GET <graphqlPath>` from a browser (the request prefers `text/html`) returns the
 *   GraphiQL page; every other request to that path falls through to the next
 *   handler (Apollo), so GET queries keep working.
 * - All assets (GraphiQL, React, ReactDOM, the graphql-ws client and our own
 *   bootstrap script/stylesheet) are served by this router from node_modules under
 *   `assetsPath`; the page works without internet access.
 * - Subscriptions go over graphql-ws (`graphql-transport-ws`) on the same path; the
 *   `Authorization` header typed in GraphiQL's headers editor is sent as
 *   `connectionParams.authorization` on `connection_init`.
 * - No inline scripts: configuration is passed in a `<script type="application/json">`
 *   data block and the page is protected by a strict Content-Security-Policy.
 *
 * Mount it BEFORE the Apollo middleware:
 *   app.use(playgroundRouter({ graphqlPath: '/graphql' }));
 *   app.use('/graphql', expressMiddleware(apollo));
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';

export interface PlaygroundOptions {
  /** Path of the GraphQL endpoint (HTTP and WebSocket), e.g. '/graphql'. */
  graphqlPath: string;
  /** Where the static assets are served. Default '/playground-assets'. */
  assetsPath?: string;
  /** Headers pre-filled (as JSON) in GraphiQL's headers editor, e.g. `{ Authorization: 'Bearer …' }`. */
  defaultHeaders?: Record<string, string>;
  /** Operations shown in the editor on first open. */
  defaultQuery?: string;
  /** Page title. Default 'GraphQL Playground'. */
  title?: string;
}

/**
 * Content-Security-Policy of the playground page. Everything is same-origin:
 * - script-src 'self': no inline script, no eval (GraphiQL 3's bundle does not need it).
 * - style-src 'unsafe-inline': GraphiQL's dialogs (Radix / react-remove-scroll) inject
 *   `<style>` elements at runtime; styles only, scripts stay strict.
 * - font-src/img-src data:: graphiql.min.css embeds its fonts and icons as data: URIs.
 * - connect-src 'self' ws: wss:: HTTP queries + graphql-ws subscriptions.
 */
export const PLAYGROUND_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "worker-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60;

/** Browser-side bootstrap (served as `playground.js`). Plain ES2017, no build step. */
const BOOTSTRAP_JS = `(function () {
  'use strict';
  var mount = document.getElementById('graphiql');
  function fail(message) {
    mount.textContent = message;
    mount.className = 'playground-error';
  }
  var config;
  try {
    config = JSON.parse(document.getElementById('playground-config').textContent || '{}');
  } catch (err) {
    fail('Playground configuration is invalid: ' + err);
    return;
  }
  if (!window.React || !window.ReactDOM || !window.GraphiQL || !window.graphqlWs) {
    fail('Playground assets failed to load.');
    return;
  }

  var httpUrl = new URL(config.graphqlPath, window.location.href);
  httpUrl.hash = '';
  httpUrl.search = '';
  var wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';

  var defaultHeaders = config.defaultHeaders || {};

  function findAuthorization(headers) {
    if (!headers || typeof headers !== 'object') return undefined;
    for (var key in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === 'authorization') {
        var value = headers[key];
        return value === undefined || value === null ? undefined : String(value);
      }
    }
    return undefined;
  }

  // Authorization currently in the headers editor. Starts with the default; every
  // fetcher call carries the parsed editor content (fetcherOpts.headers) and updates it.
  var currentAuthorization = findAuthorization(defaultHeaders);

  // createFetcher does NOT forward fetcherOpts.headers to a provided wsClient, so the
  // ws client authenticates through connectionParams. connectionParams are only sent on
  // connection_init, therefore a new (lazy) client is created whenever the Authorization
  // changes; the previous lazy client closes its socket once its subscriptions end.
  var active = null;
  function fetcherFor(authorization) {
    if (active && active.authorization === authorization) return active.fetcher;
    var wsClient = window.graphqlWs.createClient({
      url: wsUrl.href,
      lazy: true,
      connectionParams: function () {
        return authorization === undefined ? {} : { authorization: authorization };
      },
    });
    active = {
      authorization: authorization,
      fetcher: window.GraphiQL.createFetcher({ url: httpUrl.href, wsClient: wsClient }),
    };
    return active.fetcher;
  }

  function fetcher(graphQLParams, fetcherOpts) {
    if (fetcherOpts) currentAuthorization = findAuthorization(fetcherOpts.headers);
    return fetcherFor(currentAuthorization)(graphQLParams, fetcherOpts);
  }

  var hasDefaultHeaders = Object.keys(defaultHeaders).length > 0;
  var props = {
    fetcher: fetcher,
    shouldPersistHeaders: false,
    isHeadersEditorEnabled: true,
  };
  if (typeof config.defaultQuery === 'string') props.defaultQuery = config.defaultQuery;
  if (hasDefaultHeaders) {
    props.defaultHeaders = JSON.stringify(defaultHeaders, null, 2);
    props.defaultEditorToolsVisibility = 'headers';
  }

  mount.textContent = '';
  window.ReactDOM.createRoot(mount).render(window.React.createElement(window.GraphiQL, props));
})();
`;

const BOOTSTRAP_CSS = `html, body { height: 100%; margin: 0; }
#graphiql { height: 100%; }
.playground-error { padding: 2rem; font: 16px/1.5 system-ui, sans-serif; color: #b00020; }
`;

type Asset =
  | { name: string; kind: 'file'; file: string; version: string }
  | { name: string; kind: 'inline'; body: string; contentType: string; version: string };

function packageDir(pkg: string): string {
  // Subpaths like 'react/umd/…' are blocked by the packages' "exports" maps; their
  // package.json is exported, so resolve the package root through it.
  return path.dirname(require.resolve(`${pkg}/package.json`));
}

function fileAsset(name: string, file: string): Asset {
  const version = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
  return { name, kind: 'file', file, version };
}

function inlineAsset(name: string, body: string, contentType: string): Asset {
  const version = createHash('sha256').update(body).digest('hex').slice(0, 16);
  return { name, kind: 'inline', body, contentType, version };
}

function loadAssets(): Map<string, Asset> {
  const graphiqlJs = require.resolve('graphiql/graphiql.min.js');
  const graphiqlCss = require.resolve('graphiql/graphiql.min.css');
  const assets: Asset[] = [
    fileAsset('graphiql.min.css', graphiqlCss),
    fileAsset('react.production.min.js', path.join(packageDir('react'), 'umd', 'react.production.min.js')),
    fileAsset(
      'react-dom.production.min.js',
      path.join(packageDir('react-dom'), 'umd', 'react-dom.production.min.js'),
    ),
    fileAsset('graphiql.min.js', graphiqlJs),
    fileAsset('graphql-ws.min.js', path.join(packageDir('graphql-ws'), 'umd', 'graphql-ws.min.js')),
    inlineAsset('playground.js', BOOTSTRAP_JS, 'text/javascript; charset=utf-8'),
    inlineAsset('playground.css', BOOTSTRAP_CSS, 'text/css; charset=utf-8'),
  ];
  const map = new Map(assets.map((a) => [a.name, a]));
  // Source maps referenced by the GraphiQL bundle (only fetched by devtools); optional.
  for (const file of [`${graphiqlJs}.map`, `${graphiqlCss}.map`]) {
    if (existsSync(file)) map.set(path.basename(file), { name: path.basename(file), kind: 'file', file, version: 'map' });
  }
  return map;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside a `<script type="application/json">` block. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function normalizePath(p: string, what: string): string {
  if (!p.startsWith('/')) throw new Error(`playgroundRouter: ${what} must start with '/' (got '${p}')`);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

export function playgroundRouter(opts: PlaygroundOptions): Router {
  const graphqlPath = normalizePath(opts.graphqlPath, 'graphqlPath');
  const assetsPath = normalizePath(opts.assetsPath ?? '/playground-assets', 'assetsPath');
  if (assetsPath === graphqlPath) throw new Error('playgroundRouter: assetsPath must differ from graphqlPath');
  const title = opts.title ?? 'GraphQL Playground';

  const assets = loadAssets();
  const assetUrl = (name: string): string => {
    const asset = assets.get(name);
    if (!asset) throw new Error(`playgroundRouter: unknown asset ${name}`);
    return `${assetsPath}/${encodeURIComponent(name)}?v=${asset.version}`;
  };

  const config = {
    graphqlPath,
    defaultHeaders: opts.defaultHeaders ?? {},
    defaultQuery: opts.defaultQuery,
  };

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${escapeHtml(assetUrl('graphiql.min.css'))}">
<link rel="stylesheet" href="${escapeHtml(assetUrl('playground.css'))}">
</head>
<body>
<div id="graphiql">Loading…</div>
<noscript>The GraphQL playground needs JavaScript.</noscript>
<script id="playground-config" type="application/json">${jsonForScript(config)}</script>
<script src="${escapeHtml(assetUrl('react.production.min.js'))}"></script>
<script src="${escapeHtml(assetUrl('react-dom.production.min.js'))}"></script>
<script src="${escapeHtml(assetUrl('graphiql.min.js'))}"></script>
<script src="${escapeHtml(assetUrl('graphql-ws.min.js'))}"></script>
<script src="${escapeHtml(assetUrl('playground.js'))}"></script>
</body>
</html>
`;

  const router = express.Router();

  router.get(graphqlPath, (req: Request, res: Response, next: NextFunction) => {
    // The response of this path depends on Accept (HTML page vs. Apollo's JSON).
    res.vary('Accept');
    // Only when HTML is preferred: browsers send text/html first; clients sending
    // nothing or */* get the first type of the list, i.e. they fall through to Apollo.
    const preferred = req.accepts(['application/json', 'application/graphql-response+json', 'text/html']);
    if (preferred !== 'text/html') {
      next();
      return;
    }
    res.set({
      'Content-Security-Policy': PLAYGROUND_CONTENT_SECURITY_POLICY,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
    });
    res.type('html').send(html);
  });

  router.get(`${assetsPath}/:name`, (req: Request, res: Response, next: NextFunction) => {
    const name = req.params.name;
    const asset = typeof name === 'string' ? assets.get(name) : undefined;
    if (!asset) {
      next();
      return;
    }
    const headers = {
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Resource-Policy': 'same-origin',
    };
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
