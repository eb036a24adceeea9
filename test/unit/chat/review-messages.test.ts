import { expect, test } from 'vitest';
import { notificationMessage } from '../../../src/chat/messages.ts';

const now = new Date('2026-06-01T09:00:00Z');
const item = (n: number) => ({
  itemId: `item-${n}`,
  principal: `m${n}@example.com`,
  role: 'db',
  lastActivatedAt: null,
  activations90d: 0,
});

test('a reviewer notice lists each member with their use of the role, with Keep / Remove (value: the item id), at most 20 of them', () => {
  const data = { endAt: '2026-06-08T09:00:00.000Z', unreviewed: 'remove', items: [item(1)] };
  const one = notificationMessage('review_requested', data, undefined, now);
  expect(one.text).toBe(
    'Access review: decide Keep or Remove, with a justification, for 1 member(s) by 2026-06-08 09:00 UTC.',
  );
  expect(one.blocks).toContainEqual({
    type: 'fields',
    fields: [
      ['Member', 'm1@example.com'],
      ['Role', 'db'],
      ['Last activated', 'never'],
      ['Activations (90 days)', '0'],
    ],
  });
  expect(one.blocks).toContainEqual({
    type: 'actions',
    actions: [
      { name: 'reviewKeep', label: 'Keep', value: 'item-1', style: 'primary' },
      { name: 'reviewRemove', label: 'Remove', value: 'item-1', style: 'danger' },
    ],
  });
  expect(one.blocks.at(-1)).toEqual({ type: 'context', text: 'Anything not decided is removed at the end.' });
  const many = notificationMessage(
    'review_requested',
    { ...data, items: Array.from({ length: 45 }, (_, n) => item(n)) },
    undefined,
    now,
  );
  expect(many.blocks.filter((b) => b.type === 'fields')).toHaveLength(20);
  expect(many.blocks.filter((b) => b.type === 'actions')).toHaveLength(20);
  expect(many.blocks).toContainEqual({ type: 'context', text: '…and 25 more.' });
  expect(many.blocks.length).toBeLessThanOrEqual(50);
});

test('self-review asks the member; a removed member is told why and by whom', () => {
  const self = notificationMessage('review_requested', { self: true, items: [item(1)] }, undefined, now);
  expect(self.text).toContain('do you still need these roles?');
  expect(self.blocks.flatMap((b) => (b.type === 'actions' ? b.actions.map((a) => a.label) : []))).toEqual([
    'Keep (justify)',
    'I no longer need it',
  ]);
  const byDefault = notificationMessage(
    'eligibility_removed',
    { role: 'db', reviewId: 'r', decidedBy: 'system', reason: 'nobody reviewed it' },
    undefined,
    now,
  );
  expect(byDefault.text).toBe(
    'You are no longer eligible for *db*: an access review removed it (decided by the review default: “nobody reviewed it”).',
  );
});

test('a decided item shows its outcome, who decided, when and why, in place of its buttons', () => {
  const decided = {
    ...item(1),
    decision: 'keep',
    decidedBy: 'judge@example.com',
    decidedAt: '2026-06-02T10:30:00.000Z',
    justification: 'on call',
  };
  const removed = {
    ...item(2),
    decision: 'remove',
    decidedBy: 'judge@example.com',
    decidedAt: null,
    justification: 'left',
  };
  const message = notificationMessage(
    'review_requested',
    { items: [decided, removed, item(3)] },
    undefined,
    now,
  );
  const texts = message.blocks.flatMap((b) => (b.type === 'text' ? [b.text] : []));
  expect(texts).toContain('*Kept* — decided by judge@example.com at 2026-06-02 10:30 UTC: “on call”');
  expect(texts).toContain('*Remove* (at the end of the review) — decided by judge@example.com: “left”');
  // Only the undecided member keeps Keep / Remove.
  const buttons = message.blocks.flatMap((b) => (b.type === 'actions' ? b.actions.map((a) => a.value) : []));
  expect(buttons).toEqual(['item-3', 'item-3']);
});
