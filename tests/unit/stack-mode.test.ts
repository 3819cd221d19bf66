import { temporalModeFromEnv } from '../../devstack/temporal-mode';

describe('temporalModeFromEnv (TEMPORAL_MODE, DEV_TEMPORAL, BENCH_TEMPORAL)', () => {
  it('is the dev server unless set to server', () => {
    expect(temporalModeFromEnv(undefined)).toBe('dev');
    expect(temporalModeFromEnv('')).toBe('dev');
    expect(temporalModeFromEnv('dev')).toBe('dev');
    expect(temporalModeFromEnv('server')).toBe('server');
  });

  it('refuses anything else, naming the variable and the accepted values', () => {
    expect(() => temporalModeFromEnv('postgres', 'BENCH_TEMPORAL')).toThrow('BENCH_TEMPORAL=postgres is not one of dev, server');
  });
});
