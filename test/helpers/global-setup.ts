import type { TestProject } from 'vitest/node' with { 'resolution-mode': 'import' };
import { postgresAvailable, redisAvailable } from './services';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: boolean;
    redis: boolean;
  }
}

/**
 * Checks once per run whether PostgreSQL and Redis answer. Under CI=true an unreachable service throws here and the
 * whole run fails; locally their suites are skipped with a warning printed once.
 */
export default async function setup(project: TestProject): Promise<void> {
  project.provide('postgres', await postgresAvailable());
  project.provide('redis', await redisAvailable());
}
