import { expect, test } from 'vitest';
import { reviewInput } from '../../../src/chat/admin-form-values.ts';
import type { ElevateError } from '../../../src/errors.ts';

const problem = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return `${(error as ElevateError).field}: ${(error as Error).message}`;
  }
  return 'no problem';
};

test('the start-a-review form becomes the review service input; defaults as the CLI', () => {
  expect(
    reviewInput(
      {
        role: 'db,payroll',
        reviewerMode: 'named',
        duration: '3d',
        recurrence: 'monthly',
        unreviewed: 'remove',
      },
      ['rev@example.com'],
    ),
  ).toEqual({
    roleNames: ['db', 'payroll'],
    reviewers: 'named',
    reviewerEmails: ['rev@example.com'],
    durationMinutes: 3 * 1440,
    recurrence: 'monthly',
    unreviewed: 'remove',
  });
  expect(reviewInput({ role: 'db', recurrence: 'none' }, [])).toEqual({
    roleNames: ['db'],
    reviewers: 'approvers',
    reviewerEmails: [],
    durationMinutes: undefined,
    recurrence: null,
    unreviewed: 'keep',
  });
});

test('a value the form cannot hold is a problem on its field', () => {
  expect(problem(() => reviewInput({ role: 'db', duration: 'a while' }, []))).toBe(
    'duration: "a while" is not a duration (use 30m, 8h, 2d or ISO 8601).',
  );
  expect(problem(() => reviewInput({ role: 'db', reviewerMode: 'everyone' }, []))).toBe(
    'reviewerMode: "everyone" is not one of approvers, named, self.',
  );
  expect(problem(() => reviewInput({ role: 'db', recurrence: 'daily' }, []))).toBe(
    'recurrence: "daily" is not one of weekly, monthly, quarterly.',
  );
  expect(problem(() => reviewInput({ role: 'db', unreviewed: 'ignore' }, []))).toBe(
    'unreviewed: "ignore" is not one of keep, remove.',
  );
});
