import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

/** The ConfigError `loadConfig(env)` throws, or a failure when it throws none. */
function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  test('an empty environment takes every default', () => {
    const config = loadConfig({});
    // toMatchObject: sections added later (chat platforms, providers) bring their own defaults.
    expect(config).toMatchObject({
      NODE_ENV: 'development',
      PORT: 3000,
      LOG_LEVEL: 'info',
      ELEVATE_DATA_DIR: './.data',
    });
    expect(config.DATABASE_URL).toBeUndefined(); // embedded PGlite
    expect(config.ELEVATE_POLICY_FILE).toBeUndefined();
  });

  test('reads and coerces set values', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      PORT: '8080',
      LOG_LEVEL: 'debug',
      DATABASE_URL: 'postgres://elevate:pw@db:5432/elevate',
      ELEVATE_DATA_DIR: '/var/lib/elevate',
      ELEVATE_POLICY_FILE: '/etc/elevate/policy.yaml',
    });
    expect(config).toMatchObject({
      NODE_ENV: 'production',
      PORT: 8080,
      LOG_LEVEL: 'debug',
      DATABASE_URL: 'postgres://elevate:pw@db:5432/elevate',
      ELEVATE_POLICY_FILE: '/etc/elevate/policy.yaml',
    });
  });

  test('PORT=0 is allowed (any free port)', () => {
    expect(loadConfig({ PORT: '0' }).PORT).toBe(0);
  });

  test('an empty variable counts as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '', LOG_LEVEL: '' })).toMatchObject({
      PORT: 3000,
      LOG_LEVEL: 'info',
    });
    expect(loadConfig({ DATABASE_URL: '' }).DATABASE_URL).toBeUndefined();
  });

  test('lists every problem at once, one line per variable, naming it', () => {
    const lines = problems({
      PORT: 'abc',
      LOG_LEVEL: 'loud',
      NODE_ENV: 'staging',
      DATABASE_URL: 'mysql://root:hunter2@db/elevate',
    });
    expect(lines).toHaveLength(4);
    for (const name of ['PORT', 'LOG_LEVEL', 'NODE_ENV', 'DATABASE_URL']) {
      expect(lines.filter((line) => line.startsWith(`config: ${name}`))).toHaveLength(1);
    }
    for (const line of lines) expect(line).not.toContain('\n');
    expect(lines.find((line) => line.startsWith('config: PORT'))).toBe(
      'config: PORT="abc": expected a port number',
    );
  });

  test('an out-of-range port says what it expects', () => {
    expect(problems({ PORT: '70000' })).toEqual(['config: PORT="70000": expected a port number (0-65535)']);
  });

  test('the in-flight lease takes seconds or minutes, 60s by default, within 5s to 60m', () => {
    expect(loadConfig({}).ELEVATE_IN_FLIGHT_LEASE).toBe(60_000);
    expect(loadConfig({ ELEVATE_IN_FLIGHT_LEASE: '5s' }).ELEVATE_IN_FLIGHT_LEASE).toBe(5_000);
    expect(loadConfig({ ELEVATE_IN_FLIGHT_LEASE: '1m30s' }).ELEVATE_IN_FLIGHT_LEASE).toBe(90_000);
    for (const bad of ['2s', '61m', '10', 'soon']) {
      expect(problems({ ELEVATE_IN_FLIGHT_LEASE: bad })).toEqual([
        `config: ELEVATE_IN_FLIGHT_LEASE="${bad}": use 5s to 60m, e.g. 30s or 2m`,
      ]);
    }
  });

  test('never echoes a value that may hold a secret', () => {
    const [line] = problems({ DATABASE_URL: 'mysql://root:hunter2@db/elevate' });
    expect(line).toBe('config: DATABASE_URL: expected a postgres:// or postgresql:// URL');
    expect(line).not.toContain('hunter2');
  });

  test('the error message is the lines, so an uncaught one still reads well', () => {
    try {
      loadConfig({ PORT: 'x', LOG_LEVEL: 'y' });
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).message).toBe((error as ConfigError).lines.join('\n'));
    }
  });
});
