import { GraphQLError, parse, specifiedRules, validate, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import depthLimit from 'graphql-depth-limit';
import { getComplexity, simpleEstimator } from 'graphql-query-complexity/cjs'; // the CommonJS build: its ESM build imports graphql/index.mjs, a second graphql

/** Deepest selection a client may send (Order → history → … stays far below this). */
export const MAX_DEPTH = 10;
/** Highest query cost (one point per field; lists count once). */
export const MAX_COMPLEXITY = 1000;

export const validationRules: ValidationRule[] = [depthLimit(MAX_DEPTH)];

/**
 * Complexity per parsed document and operation. The estimator counts fields only (no argument-dependent costs), so
 * the result does not depend on variables, and Apollo hands us the same cached DocumentNode for a repeated query.
 */
const complexityCache = new WeakMap<DocumentNode, Map<string, number>>();

/** GRAPHQL_VALIDATION_FAILED when an operation costs more than MAX_COMPLEXITY. */
export function assertComplexity(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName?: string | null,
): void {
  let perOperation = complexityCache.get(document);
  if (!perOperation) complexityCache.set(document, (perOperation = new Map()));
  let complexity = perOperation.get(operationName ?? '');
  if (complexity === undefined) {
    complexity = getComplexity({
      schema,
      query: document,
      variables: variables ?? {},
      operationName: operationName ?? undefined,
      estimators: [simpleEstimator({ defaultComplexity: 1 })],
    });
    perOperation.set(operationName ?? '', complexity);
  }
  if (complexity > MAX_COMPLEXITY) {
    throw new GraphQLError(`The query is too complex: ${complexity} > ${MAX_COMPLEXITY}`, {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED', complexity, maximumComplexity: MAX_COMPLEXITY },
    });
  }
}

const MAX_CACHED_DOCUMENTS = 1000;
/** Query text → the first copy of that text seen, and its parsed and validated document (or its errors). */
const preparedDocuments = new Map<string, { query: string; prepared: DocumentNode | readonly GraphQLError[] }>();

/**
 * Parses and validates (with the depth limit) a query for graphql-ws, cached by its text: checkout screens send the
 * same subscription over and over, and parse + validate is most of what a subscribe costs (the complexity check, which
 * needs the variables, is cached per document by `assertComplexity`). The cache
 * keeps at most MAX_CACHED_DOCUMENTS texts and starts over when full (clients send a handful of distinct queries).
 */
export function prepareDocument(schema: GraphQLSchema, query: string): DocumentNode | readonly GraphQLError[] {
  const cached = preparedDocuments.get(query);
  if (cached) return cached.prepared;
  let prepared: DocumentNode | readonly GraphQLError[];
  try {
    const document = parse(query);
    const errors = validate(schema, document, [...specifiedRules, ...validationRules]);
    prepared = errors.length ? errors : document;
  } catch (err) {
    prepared = [err instanceof GraphQLError ? err : new GraphQLError((err as Error).message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })];
  }
  if (preparedDocuments.size >= MAX_CACHED_DOCUMENTS) preparedDocuments.clear();
  preparedDocuments.set(query, { query, prepared });
  return prepared;
}

/**
 * graphql-ws's JSON reviver: a `query` text already prepared is replaced by the cached copy of the same text. graphql-ws
 * keeps each subscribe message for the subscription's whole life, so without this every held subscription keeps its own
 * copy of a query thousands of others share. The value is equal either way, so a `query` found elsewhere (a variable
 * of that name) is unchanged.
 */
export function shareQueryText(key: string, value: unknown): unknown {
  return key === 'query' && typeof value === 'string' ? (preparedDocuments.get(value)?.query ?? value) : value;
}
