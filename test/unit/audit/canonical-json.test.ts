import { describe, expect, test } from 'vitest';
import { canonicalJson, GENESIS_HASH, hashEvent } from '../../../src/audit/audit-log.ts';

describe('canonicalJson', () => {
  test('sorts object keys at every depth', () => {
    const value = { b: 1, a: { d: [{ z: 1, y: { n: 2, m: 3 } }], c: null } };
    expect(canonicalJson(value)).toBe('{"a":{"c":null,"d":[{"y":{"m":3,"n":2},"z":1}]},"b":1}');
  });

  test('gives the same text whatever order the keys were inserted in', () => {
    const one = { actor: 'ana', nested: { x: 1, y: [1, 2], z: { q: true, p: false } } };
    const other = { nested: { z: { p: false, q: true }, y: [1, 2], x: 1 }, actor: 'ana' };
    expect(canonicalJson(other)).toBe(canonicalJson(one));
  });

  test('keeps arrays in their order', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalJson({ list: ['b', 'a', { b: 2, a: 1 }] })).toBe('{"list":["b","a",{"a":1,"b":2}]}');
  });

  test('writes dates as ISO strings and leaves out undefined values, as the jsonb column will', () => {
    expect(canonicalJson({ until: new Date(0), gone: undefined })).toBe(
      '{"until":"1970-01-01T00:00:00.000Z"}',
    );
  });
});

describe('hashEvent', () => {
  const event = {
    at: new Date('2026-06-01T09:00:00.123Z'),
    actor: 'cli:test',
    action: 'role.saved',
    subjectType: 'role',
    subjectId: 'db-admin',
    data: { settings: { requireApproval: true, approvers: ['bo@example.com', 'cy@example.com'] } },
  };
  const hash = hashEvent(GENESIS_HASH, event);

  test('is a SHA-256 hex digest that depends only on the content', () => {
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashEvent(GENESIS_HASH, { ...event, at: new Date(event.at.getTime()) })).toBe(hash);
    const reordered = {
      data: { settings: { approvers: ['bo@example.com', 'cy@example.com'], requireApproval: true } },
    };
    expect(hashEvent(GENESIS_HASH, { ...event, ...reordered })).toBe(hash);
  });

  test.each([
    ['prevHash', () => hashEvent('f'.repeat(64), event)],
    [
      'at (by one millisecond)',
      () => hashEvent(GENESIS_HASH, { ...event, at: new Date(event.at.getTime() + 1) }),
    ],
    ['actor', () => hashEvent(GENESIS_HASH, { ...event, actor: 'cli:other' })],
    ['action', () => hashEvent(GENESIS_HASH, { ...event, action: 'role.deleted' })],
    ['subjectType', () => hashEvent(GENESIS_HASH, { ...event, subjectType: 'eligibility' })],
    ['subjectId', () => hashEvent(GENESIS_HASH, { ...event, subjectId: 'db-admin2' })],
    [
      'data, deep inside',
      () =>
        hashEvent(GENESIS_HASH, {
          ...event,
          data: { settings: { requireApproval: true, approvers: ['bo@example.com', 'mallory@example.com'] } },
        }),
    ],
    [
      'the order of an array in data',
      () =>
        hashEvent(GENESIS_HASH, {
          ...event,
          data: { settings: { requireApproval: true, approvers: ['cy@example.com', 'bo@example.com'] } },
        }),
    ],
    [
      'the boundary between two fields',
      () => hashEvent(GENESIS_HASH, { ...event, actor: 'cli:testr', action: 'ole.saved' }),
    ],
  ])('changes when %s changes', (_field, changed) => {
    expect(changed()).not.toBe(hash);
  });
});
