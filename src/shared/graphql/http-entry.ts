import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import proxyaddr from 'proxy-addr';
import getRawBody from 'raw-body';
import type { Logger } from '../logger';
import type { GraphQLContext } from './context';

/** Largest GraphQL request body accepted. */
export const GRAPHQL_BODY_LIMIT = '256kb';
/** Express's `trust proxy`, for both entries: the client's address comes from X-Forwarded-For only behind a local proxy. */
export const TRUST_PROXY = 'loopback';
const trusted = proxyaddr.compile(TRUST_PROXY);

/**
 * Tags a request, for both entries: its id (the caller's `x-request-id` when it is a plain token, else a new one) in
 * the `x-request-id` answer header, and one debug log line when it is answered. Returns the id.
 */
export function tagRequest(req: IncomingMessage, res: ServerResponse, log: Logger): string {
  const header = req.headers['x-request-id'];
  const requestId = typeof header === 'string' && /^[\w.-]{1,100}$/.test(header) ? header : randomUUID();
  res.setHeader('x-request-id', requestId);
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    log.debug({ requestId, method: req.method, path: (req.url ?? '').split('?')[0], status: res.statusCode, ms }, 'request');
  });
  return requestId;
}

/** Builds an operation's context from the HTTP request (authentication), the client's address and the request id. */
export type ContextFor = (req: IncomingMessage, ip: string, requestId: string) => Promise<GraphQLContext>;

/**
 * `POST /graphql` with a JSON body (what SPAs send for every query and mutation), answered by a plain `node:http`
 * handler in front of Express, as provider callbacks are: Express's router, body parser and CORS middleware were
 * about an eighth of createOrder's CPU (README, "Performance"). It does what the Express route does: `x-request-id`,
 * the CORS headers `cors()` sets on a simple request, a JSON body of at most 256 KB (413 beyond, 400 when it is not a
 * JSON object or array; an empty body is `{}`), the client's address as Express's `req.ip`, Apollo's answer as it
 * is, the request log. Everything else on `/graphql` — GET (the playground, queries over GET), the OPTIONS preflight,
 * another content type, charset or content encoding — goes on to the Express route. Answers `true` when it took the
 * request.
 */
export function graphqlPostHandler(apollo: ApolloServer<GraphQLContext>, contextFor: ContextFor, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST' || !/^\/graphql\/?(?:\?|$)/.test(req.url ?? '') || !plainJson(req)) return false;
    handle(req, res).catch((err) => {
      log.error({ err }, 'unhandled error answering POST /graphql');
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: 'internal server error' });
    });
    return true;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = tagRequest(req, res, log);
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-expose-headers', 'x-request-id');

    let body: unknown;
    try {
      const text = await getRawBody(req, { limit: GRAPHQL_BODY_LIMIT, length: req.headers['content-length'], encoding: 'utf8' });
      body = parseBody(text);
    } catch (err) {
      return send(res, (err as { status?: number }).status ?? 400, { error: (err as Error).message });
    }
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const answer = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: 'POST', headers, search: query < 0 ? '' : url.slice(query), body },
      context: () => contextFor(req, proxyaddr(req, trusted), requestId),
    });
    for (const [key, value] of answer.headers) res.setHeader(key, value);
    res.statusCode = answer.status ?? 200;
    if (answer.body.kind === 'complete') {
      res.setHeader('content-length', Buffer.byteLength(answer.body.string));
      res.end(answer.body.string);
      return;
    }
    for await (const chunk of answer.body.asyncIterator) res.write(chunk);
    res.end();
  }
}

/** `application/json`, in UTF-8 if a charset is named, not compressed: the bodies this entry reads itself. */
function plainJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  const encoding = req.headers['content-encoding'];
  if (encoding && encoding.toLowerCase() !== 'identity') return false;
  return !!type && /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i.test(type);
}

/** As Express's `json()` parses (strict): an object or an array; nothing at all is `{}`. */
function parseBody(text: string): unknown {
  const start = text.trimStart();
  if (start === '') return {};
  if (start[0] !== '{' && start[0] !== '[') throw Object.assign(new Error('the body is not a JSON object or array'), { status: 400 });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw Object.assign(new Error((err as Error).message), { status: 400 });
  }
}

function send(res: ServerResponse, status: number, json: unknown): void {
  const body = JSON.stringify(json);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
}
