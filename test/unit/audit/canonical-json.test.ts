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

  // Stored hashes were made with this definition: whatever path canonicalJson takes, it must
  // write exactly this text for every value.
  const definition = (value: unknown) =>
    JSON.stringify(value, (_key, inner) =>
      inner && typeof inner === 'object' && !Array.isArray(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : inner,
    );

  test.each([
    ['integer-like keys, which JSON.stringify writes first', { b: 1, 10: 'x', 2: 'y', a: { 1: true, z: 0 } }],
    ['numbers', { n: [0, -0, 1.5, -2e-7, 1e21, Number.MAX_SAFE_INTEGER, Number.NaN, Infinity] }],
    ['strings to escape', { 'k"\\': 'line\nbreak\t"quoted" \u2028 \ud800 é 😀', '': '' }],
    [
      'undefined, functions and symbols',
      { a: undefined, f: () => 1, list: [undefined, () => 1, Symbol('s')] },
    ],
    ['dates and toJSON, nested', { at: [new Date(5)], custom: { toJSON: () => ({ b: 1, a: 2 }) } }],
    ['a null-prototype object', Object.assign(Object.create(null), { b: 1, a: 2 })],
    [
      'keys that differ by case and by code unit',
      { B: 1, a: 2, A: 3, b: 4, é: 5, e: 6, '😀': 7, '\uffff': 8 },
    ],
    ['empty containers', { o: {}, l: [], n: null, t: true, f: false }],
    ['a top-level string, number, null and array', ['s', 1, null, [{ y: 1, x: 2 }]]],
  ])('writes what the definition writes: %s', (_what, value) => {
    expect(canonicalJson(value)).toBe(definition(value));
  });

  test('writes what the definition writes for generated data', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const keys = ['a', 'b', 'role', 'endAt', 'z', '_', 'Role', 'ä', '1', '01', '-1', 'x y'];
    const make = (depth: number): unknown => {
      const pick = Math.floor(random() * (depth > 3 ? 5 : 7));
      if (pick === 0) return null;
      if (pick === 1) return random() < 0.5;
      if (pick === 2) return Math.round(random() * 1e6) / (random() < 0.5 ? 1 : 1000);
      if (pick === 3) return keys[Math.floor(random() * keys.length)]?.repeat(1 + Math.floor(random() * 3));
      if (pick === 4) return random() < 0.1 ? undefined : 'text';
      if (pick === 5) return Array.from({ length: Math.floor(random() * 4) }, () => make(depth + 1));
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 6); i > 0; i--) {
        object[keys[Math.floor(random() * keys.length)] as string] = make(depth + 1);
      }
      return object;
    };
    for (let i = 0; i < 2_000; i++) {
      const value = { data: make(0) };
      expect(canonicalJson(value)).toBe(definition(value));
    }
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
