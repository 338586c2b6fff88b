/** `npm run schema`: writes schema.graphql from the resolvers (a test fails when the committed file differs). */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { printAppSchema } from '../shared/graphql/schema';

writeFileSync('schema.graphql', printAppSchema());
console.log('wrote schema.graphql');
