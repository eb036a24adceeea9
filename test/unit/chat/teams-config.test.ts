import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config.ts';

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines;
  }
  throw new Error('expected a ConfigError');
}

describe('Teams configuration', () => {
  test('defaults: off, authenticated, the public cloud', () => {
    const config = loadConfig({});
    expect(config.TEAMS_CLIENT_ID).toBeUndefined();
    expect(config.TEAMS_ALLOW_UNAUTHENTICATED).toBe(false);
    expect(config.TEAMS_OPENID_METADATA_URL).toBe(
      'https://login.botframework.com/v1/.well-known/openidconfiguration',
    );
    expect(config.TEAMS_LOGIN_URL).toBe('https://login.microsoftonline.com');
  });

  test('credentials come as a set, and each missing one is named', () => {
    expect(problems({ TEAMS_CLIENT_ID: 'abc' })).toEqual([
      'config: TEAMS_CLIENT_SECRET: is required with TEAMS_CLIENT_ID (Teams credentials)',
      'config: TEAMS_TENANT_ID: is required with TEAMS_CLIENT_ID (Teams credentials)',
    ]);
  });

  test('unauthenticated mode is refused in production, allowed in development', () => {
    expect(problems({ NODE_ENV: 'production', TEAMS_ALLOW_UNAUTHENTICATED: 'true' })).toEqual([
      expect.stringMatching(
        /^config: TEAMS_ALLOW_UNAUTHENTICATED="true": is refused when NODE_ENV=production/,
      ),
    ]);
    expect(loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true' }).TEAMS_ALLOW_UNAUTHENTICATED).toBe(true);
    expect(problems({ TEAMS_ALLOW_UNAUTHENTICATED: 'yes' })).toEqual([
      'config: TEAMS_ALLOW_UNAUTHENTICATED="yes": expected true or false',
    ]);
  });

  test('cloud endpoints must be URLs (and the secret is never echoed)', () => {
    const lines = problems({
      TEAMS_OPENID_METADATA_URL: 'login.example',
      TEAMS_CLIENT_ID: 'a',
      TEAMS_TENANT_ID: 'b',
      TEAMS_CLIENT_SECRET: '',
    });
    expect(lines).toContain('config: TEAMS_OPENID_METADATA_URL: expected an http(s) URL');
    expect(lines.join('\n')).not.toContain('login.example');
  });

  test('elevate serve with TEAMS_ALLOW_UNAUTHENTICATED=true and NODE_ENV=production does not start', async () => {
    const bin = new URL('../../../bin/elevate.js', import.meta.url).pathname;
    const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', TEAMS_ALLOW_UNAUTHENTICATED: 'true' };
    const failed = await promisify(execFile)(process.execPath, [bin, 'serve'], {
      env,
      timeout: 20_000,
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1 });
    const output = `${(failed as { stdout: string }).stdout}${(failed as { stderr: string }).stderr}`;
    expect(output.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^config: TEAMS_ALLOW_UNAUTHENTICATED="true": is refused when NODE_ENV=production/,
      ),
    ]);
  });
});
