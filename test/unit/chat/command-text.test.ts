import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../../src/chat/command-text.ts';
import { durationChoices } from '../../../src/chat/messages.ts';

describe('parseCommand', () => {
  it('reads the board, subcommands and the fast path', () => {
    expect(parseCommand('')).toEqual({ verb: 'board' });
    expect(parseCommand('status')).toEqual({ verb: 'board' });
    expect(parseCommand('Approvals')).toEqual({ verb: 'approvals' });
    expect(parseCommand('activate DB-Admin 2h fix the index')).toEqual({
      verb: 'activate',
      roleName: 'db-admin',
      durationMinutes: 120,
      justification: 'fix the index',
    });
    expect(parseCommand('activate db-admin fix it')).toMatchObject({
      durationMinutes: undefined,
      justification: 'fix it',
    });
  });

  it('suggests the nearest subcommand', () => {
    expect(parseCommand('aprovals')).toEqual({ verb: 'unknown', text: 'aprovals', suggestion: 'approvals' });
    expect(parseCommand('xyzzy')).toEqual({ verb: 'unknown', text: 'xyzzy', suggestion: undefined });
  });
});

describe('durationChoices', () => {
  it('stays within the role bounds and offers both ends', () => {
    expect(durationChoices(30, 480, [60])).toEqual([30, 60, 120, 240, 480]);
  });
});
