import { describe, expect, test } from 'vitest';
import { stepUpSettings } from '../../src/auth/step-up-env.ts';
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
  describe('step-up MFA', () => {
    const complete = {
      PUBLIC_URL: 'https://elevate.example.com/',
      OIDC_ISSUER: 'https://login.example.com/tenant/v2.0',
      OIDC_CLIENT_ID: 'elevate',
      OIDC_CLIENT_SECRET: 's3cret-value',
    };

    test('off when none is set; remember window 0 by default', () => {
      const config = loadConfig({});
      expect(stepUpSettings(config)).toBeUndefined();
      expect(config.ELEVATE_STEP_UP_REMEMBER_MINUTES).toBe(0);
    });

    test('on when all four are set; the public URL loses its trailing slash', () => {
      expect(
        stepUpSettings(
          loadConfig({ ...complete, OIDC_ACR_VALUES: 'mfa  phr', ELEVATE_STEP_UP_REMEMBER_MINUTES: '5' }),
        ),
      ).toEqual({
        publicUrl: 'https://elevate.example.com',
        issuer: 'https://login.example.com/tenant/v2.0',
        clientId: 'elevate',
        clientSecret: 's3cret-value',
        acrValues: ['mfa', 'phr'],
        rememberMinutes: 5,
      });
    });

    test('half a configuration names what is missing', () => {
      expect(problems({ OIDC_ISSUER: complete.OIDC_ISSUER, OIDC_CLIENT_ID: 'elevate' })).toEqual([
        'config: PUBLIC_URL: is needed for step-up MFA, since OIDC_ISSUER, OIDC_CLIENT_ID are set',
        'config: OIDC_CLIENT_SECRET: is needed for step-up MFA, since OIDC_ISSUER, OIDC_CLIENT_ID are set',
      ]);
    });

    test('plain http only on this machine; a bad remember window is named', () => {
      expect(problems({ ...complete, OIDC_ISSUER: 'http://idp.example.com' })).toEqual([
        'config: OIDC_ISSUER="http://idp.example.com": must use https (plain http is allowed only for localhost and 127.0.0.1, for development)',
      ]);
      expect(
        stepUpSettings(loadConfig({ ...complete, PUBLIC_URL: 'http://127.0.0.1:3000' }))?.publicUrl,
      ).toBe('http://127.0.0.1:3000');
      expect(problems({ ELEVATE_STEP_UP_REMEMBER_MINUTES: '90' })).toEqual([
        'config: ELEVATE_STEP_UP_REMEMBER_MINUTES="90": may be at most 60 (a step-up is meant to be fresh)',
      ]);
    });
  });
});
