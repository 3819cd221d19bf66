import { ConfigError, loadConfig } from '../shared/config';
import { startApi } from './server';

async function main(): Promise<void> {
  const config = loadConfig();
  const api = await startApi(config);
  console.log(JSON.stringify({ level: 30, name: 'api', msg: `listening on ${api.url}` }));
  const shutdown = () => void api.stop().then(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
