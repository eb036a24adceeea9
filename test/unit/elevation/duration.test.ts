import { expect, test } from 'vitest';
import { formatDuration, parseDuration } from '../../../src/elevation/duration.ts';

test.each([
  ['30m', 30],
  ['8h', 480],
  ['2d', 2880],
  ['1h30m', 90],
  ['45min', 45],
  ['PT1H', 60],
  ['P2D', 2880],
  ['PT1H30M', 90],
  [' 2H ', 120],
])('%s is %i minutes', (text, minutes) => {
  expect(parseDuration(text)).toBe(minutes);
});

test.each(['9x', '', '0m', 'P', 'PT', '1.5h', '-1h', 'h', '10'])('%j is not a duration', (text) => {
  expect(parseDuration(text)).toBeUndefined();
});

test('format gives the shortest form and parses back', () => {
  for (const minutes of [1, 30, 60, 90, 1440, 1530, 10080]) {
    expect(parseDuration(formatDuration(minutes))).toBe(minutes);
  }
  expect(formatDuration(90)).toBe('1h30m');
  expect(formatDuration(2880)).toBe('2d');
});
