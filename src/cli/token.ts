/** `npm run token -- --sub alice --role admin [--ttl 12h]`: prints a bearer token signed with JWT_SECRET (or the dev secret). */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/config';
import { signToken } from '../shared/auth';

const { values } = parseArgs({
  options: { sub: { type: 'string' }, role: { type: 'string', default: 'customer' }, ttl: { type: 'string', default: '12h' } },
});
if (!values.sub || (values.role !== 'customer' && values.role !== 'admin')) {
  console.error('usage: npm run token -- --sub <id> [--role customer|admin] [--ttl 12h]');
  process.exit(2);
}
try {
  const config = loadConfig();
  console.log(signToken(config.jwtSecret, { id: values.sub, role: values.role }, values.ttl as `${number}h`));
} catch (err) {
  if (err instanceof ConfigError) for (const line of err.problems) console.error(`config error: ${line}`);
  else console.error(err);
  process.exit(1);
}
