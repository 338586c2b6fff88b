import { GraphQLError, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import depthLimit from 'graphql-depth-limit';
import { getComplexity, simpleEstimator } from 'graphql-query-complexity/cjs'; // the CommonJS build: its ESM build imports graphql/index.mjs, a second graphql

/** Deepest selection a client may send (Order → history → … stays far below this). */
export const MAX_DEPTH = 10;
/** Highest query cost (one point per field; lists count once). */
export const MAX_COMPLEXITY = 1000;

export const validationRules: ValidationRule[] = [depthLimit(MAX_DEPTH)];

/** BAD_USER_INPUT-style error when an operation costs more than MAX_COMPLEXITY. */
export function assertComplexity(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName?: string | null,
): void {
  const complexity = getComplexity({
    schema,
    query: document,
    variables: variables ?? {},
    operationName: operationName ?? undefined,
    estimators: [simpleEstimator({ defaultComplexity: 1 })],
  });
  if (complexity > MAX_COMPLEXITY) {
    throw new GraphQLError(`The query is too complex: ${complexity} > ${MAX_COMPLEXITY}`, {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED', complexity, maximumComplexity: MAX_COMPLEXITY },
    });
  }
}
