import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { createRequire } from 'node:module';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  PLAYGROUND_CONTENT_SECURITY_POLICY,
  playgroundRouter,
} from '../../src/shared/graphql/playground';

// graphql and graphql-ws are loaded with Node's own require on purpose:
// - a plain `import 'graphql'` is resolved by Vite to graphql's index.mjs while graphql-ws
//   (loaded by Node) gets graphql's CommonJS build: two graphql instances, and graphql-ws
//   fails with "Cannot use GraphQLSchema from another module or realm";
// - tsconfig's `moduleResolution: node` cannot resolve the `graphql-ws/use/ws` export,
//   so its types are referenced by file.
const requireFromHere = createRequire(__filename);
const { buildSchema, graphql } = requireFromHere('graphql') as typeof import('graphql');
const { useServer } = requireFromHere(
  'graphql-ws/use/ws',
) as typeof import('../../node_modules/graphql-ws/dist/use/ws.cjs');

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
const IN_CI = process.env.CI === 'true';
const DEFAULT_AUTH = 'Bearer dev-token-123';
const TYPED_AUTH = 'Bearer typed-by-admin';
const TICKS = 3;
if (!HAS_CHROMIUM && !IN_CI) {
  console.warn(`[playground.test] ${CHROMIUM} not found: the browser test is skipped (it fails when CI=true).`);
}

const schema = buildSchema(/* GraphQL */ `
  type Query {
    hello: String
  }
  type Subscription {
    tick: Int
  }
`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const rootValue = {
  hello: () => 'world',
  tick: async function* () {
    for (let i = 1; i <= TICKS; i++) {
      await sleep(100);
      yield { tick: i };
    }
  },
};

let server: http.Server;
let wsServer: WebSocketServer;
let disposeWs: () => void | Promise<void>;
let baseUrl: string;
const wsAuthorizations: Array<string | undefined> = [];
const httpAuthorizations: Array<string | undefined> = [];

beforeAll(async () => {
  const app = express();
  app.use(
    playgroundRouter({
      graphqlPath: '/graphql',
      defaultHeaders: { Authorization: DEFAULT_AUTH },
      defaultQuery: 'subscription { tick }',
      title: 'Test playground',
    }),
  );
  // Injection probe: everything user-supplied must be escaped in the page.
  app.use(
    playgroundRouter({
      graphqlPath: '/evil',
      assetsPath: '/evil-assets',
      title: '</title><script>alert(1)</script>',
      defaultQuery: '# </script><script>alert(2)</script>\n{ hello }',
      defaultHeaders: { 'X-Evil': '</script><!--' },
    }),
  );
  // Stand-in for Apollo: GET (JSON) and POST.
  app.get('/graphql', async (req, res) => {
    const source = typeof req.query.query === 'string' ? req.query.query : '';
    res.json(await graphql({ schema, source, rootValue }));
  });
  app.post('/graphql', express.json(), async (req, res) => {
    httpAuthorizations.push(req.get('authorization'));
    const { query, variables, operationName } = req.body ?? {};
    res.json(
      await graphql({ schema, source: query, variableValues: variables, operationName, rootValue }),
    );
  });

  server = http.createServer(app);
  wsServer = new WebSocketServer({ server, path: '/graphql' });
  const disposable = useServer(
    {
      schema,
      roots: { query: rootValue, subscription: rootValue },
      onConnect: (ctx) => {
        const auth = ctx.connectionParams?.authorization;
        wsAuthorizations.push(typeof auth === 'string' ? auth : undefined);
        return true;
      },
    },
    wsServer,
  );
  disposeWs = () => disposable.dispose();

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await disposeWs?.();
  await new Promise<void>((resolve) => wsServer?.close(() => resolve()));
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

function assetUrls(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, '&'));
}

describe('GraphQL playground (HTTP)', () => {
  it('serves an HTML page with only local assets and a strict CSP', async () => {
    const res = await fetch(`${baseUrl}/graphql`, {
      headers: { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('vary')).toMatch(/Accept/i);
    const csp = res.headers.get('content-security-policy');
    expect(csp).toBe(PLAYGROUND_CONTENT_SECURITY_POLICY);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("connect-src 'self' ws: wss:");

    const html = await res.text();
    expect(html).toContain('<title>Test playground</title>');
    expect(html).not.toMatch(/https?:\/\//); // no CDN, no absolute URLs to anywhere
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline executable script

    const urls = assetUrls(html);
    expect(urls.length).toBeGreaterThanOrEqual(7);
    for (const url of urls) {
      // same-origin asset, or the inline empty favicon (prevents a /favicon.ico 404)
      if (url !== 'data:,') expect(url).toMatch(/^\/playground-assets\/[\w.-]+\?v=[0-9a-f]+$/);
    }
    for (const name of [
      'graphiql.min.js',
      'graphiql.min.css',
      'react.production.min.js',
      'react-dom.production.min.js',
      'graphql-ws.min.js',
      'playground.js',
    ]) {
      expect(urls.some((u) => u.startsWith(`/playground-assets/${name}?`))).toBe(true);
    }

    for (const url of urls.filter((u) => u.startsWith('/'))) {
      const asset = await fetch(`${baseUrl}${url}`);
      expect(asset.status, url).toBe(200);
      expect(asset.headers.get('cache-control'), url).toMatch(/max-age=31536000.*immutable/);
      expect(asset.headers.get('content-type'), url).toMatch(
        url.includes('.css') ? /^text\/css/ : /^(text|application)\/javascript/,
      );
      expect((await asset.arrayBuffer()).byteLength, url).toBeGreaterThan(0);
    }

    // Pre-filled configuration is present (as JSON data, not code).
    const config = JSON.parse(
      /<script id="playground-config" type="application\/json">([^<]*)<\/script>/.exec(html)![1],
    );
    expect(config).toEqual({
      graphqlPath: '/graphql',
      defaultHeaders: { Authorization: DEFAULT_AUTH },
      defaultQuery: 'subscription { tick }',
    });
  });

  it('escapes everything injected into the page', async () => {
    const res = await fetch(`${baseUrl}/evil`, { headers: { Accept: 'text/html' } });
    const html = await res.text();
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('</script><!--');
    expect(html).toContain('<title>&#60;/title&#62;&#60;script&#62;alert(1)&#60;/script&#62;</title>');
    const config = JSON.parse(
      /<script id="playground-config" type="application\/json">([^<]*)<\/script>/.exec(html)![1],
    );
    expect(config.defaultQuery).toBe('# </script><script>alert(2)</script>\n{ hello }');
    expect(config.defaultHeaders).toEqual({ 'X-Evil': '</script><!--' });
  });

  it('falls through to the GraphQL endpoint when HTML is not wanted', async () => {
    for (const accept of ['application/json', 'application/graphql-response+json, application/json', '*/*']) {
      const res = await fetch(`${baseUrl}/graphql?query=${encodeURIComponent('{ hello }')}`, {
        headers: { Accept: accept },
      });
      expect(res.status, accept).toBe(200);
      expect(res.headers.get('content-type'), accept).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ data: { hello: 'world' } });
    }
    const unknownAsset = await fetch(`${baseUrl}/playground-assets/..%2Fpackage.json`);
    expect(unknownAsset.status).toBe(404);
    const notAnAsset = await fetch(`${baseUrl}/playground-assets/index.js`);
    expect(notAnAsset.status).toBe(404);
  });
});

describe('GraphQL playground (browser)', () => {
  const reason = HAS_CHROMIUM ? '' : ` [SKIPPED: ${CHROMIUM} not found; set CI=true to make this fail]`;

  it.skipIf(!HAS_CHROMIUM && !IN_CI)(
    `renders offline, runs a subscription over graphql-ws with the editor's Authorization${reason}`,
    async () => {
      if (!HAS_CHROMIUM) throw new Error(`${CHROMIUM} is required in CI (apt-get install chromium)`);

      const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'playground-chromium-'));
      let context: BrowserContext | undefined;
      try {
        // playwright-core refuses `--user-data-dir` in `args` for chromium.launch();
        // launchPersistentContext passes the fresh directory as --user-data-dir itself.
        context = await chromium.launchPersistentContext(userDataDir, {
          executablePath: CHROMIUM,
          headless: true,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
          viewport: { width: 1400, height: 900 },
        });

        const requested: string[] = [];
        const problems: string[] = [];
        context.on('request', (req) => requested.push(req.url()));
        const page: Page = context.pages()[0] ?? (await context.newPage());
        page.on('websocket', (ws) => requested.push(ws.url()));
        page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
        page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
        page.on('console', (msg) => {
          if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
        });
        await page.addInitScript(() => {
          document.addEventListener('securitypolicyviolation', (e) => {
            console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
          });
        });

        await page.goto(`${baseUrl}/graphql`, { waitUntil: 'load' });

        // The GraphiQL editor renders with the default query and headers.
        await page.locator('.graphiql-container').waitFor({ state: 'visible', timeout: 15_000 });
        const queryEditor = page.locator('.graphiql-query-editor .CodeMirror');
        await queryEditor.waitFor({ state: 'visible' });
        await expect.poll(() => queryEditor.innerText()).toContain('subscription { tick }');
        const headersText = await page.evaluate(() => {
          const editors = Array.from(document.querySelectorAll<HTMLElement>('.graphiql-editor-tool .CodeMirror'));
          return editors.map((el) => (el as unknown as { CodeMirror: { getValue(): string } }).CodeMirror.getValue());
        });
        expect(headersText.some((v) => v.includes(DEFAULT_AUTH))).toBe(true);

        // Run the subscription: results stream in over the websocket.
        const result = page.locator('.result-window');
        await page.locator('.graphiql-execute-button').click();
        await expect.poll(() => result.innerText(), { timeout: 10_000 }).toContain(`"tick": ${TICKS}`);
        expect(wsAuthorizations).toContain(DEFAULT_AUTH);
        fs.mkdirSync('test-output', { recursive: true });
        await page.screenshot({ path: 'test-output/playground.png' });

        // The admin types another token in the headers editor: the next subscription
        // opens a new connection authenticated with it.
        await page.evaluate((auth) => {
          const editors = Array.from(document.querySelectorAll<HTMLElement>('.graphiql-editor-tool .CodeMirror'));
          const headers = editors
            .map((el) => (el as unknown as { CodeMirror: { getValue(): string; setValue(v: string): void } }).CodeMirror)
            .find((cm) => cm.getValue().includes('Authorization'));
          if (!headers) throw new Error('headers editor not found');
          headers.setValue(JSON.stringify({ Authorization: auth }));
        }, TYPED_AUTH);
        const before = wsAuthorizations.length;
        await page.locator('.graphiql-execute-button').click();
        await expect.poll(() => wsAuthorizations.slice(before), { timeout: 10_000 }).toContain(TYPED_AUTH);
        await expect.poll(() => result.innerText(), { timeout: 10_000 }).toContain(`"tick": ${TICKS}`);

        // A plain query goes over HTTP with the editor's headers.
        await page.evaluate(() => {
          const cm = (document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as {
            CodeMirror: { setValue(v: string): void };
          }).CodeMirror;
          cm.setValue('{ hello }');
        });
        // GraphiQL re-parses the editor (debounced 100ms) to decide HTTP vs websocket.
        await page.waitForFunction(() => {
          const cm = (document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as {
            CodeMirror: { documentAST?: { definitions: Array<{ operation?: string }> } };
          }).CodeMirror;
          return cm.documentAST?.definitions[0]?.operation === 'query';
        });
        const wsBefore = wsAuthorizations.length;
        await page.locator('.graphiql-execute-button').click();
        await expect.poll(() => result.innerText(), { timeout: 10_000 }).toContain('"hello": "world"');
        expect(httpAuthorizations).toContain(TYPED_AUTH);
        expect(wsAuthorizations.length).toBe(wsBefore);

        // Open the settings dialog too (Radix dialogs inject styles) and check CSP.
        await page.locator('button[aria-label="Open settings dialog"]').click();
        await page.locator('.graphiql-dialog').waitFor({ state: 'visible' });
        await page.keyboard.press('Escape');

        // Everything came from our server: no CDN, no fonts, no telemetry.
        const origin = new URL(baseUrl);
        for (const url of requested) {
          const u = new URL(url);
          expect(u.hostname, url).toBe('127.0.0.1');
          expect(u.port, url).toBe(origin.port);
        }
        expect(requested.some((u) => u.startsWith(`ws://127.0.0.1:${origin.port}/graphql`))).toBe(true);
        expect(problems).toEqual([]);
      } finally {
        await context?.close();
        fs.rmSync(userDataDir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
