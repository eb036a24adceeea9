import { expect, test } from 'vitest';
import { helpMessage, stepUpMessage } from '../../../src/chat/messages.ts';

const url = 'https://elevate.example.com/auth/step-up/abc';
const expiresAt = new Date('2026-06-01T09:10:00Z');

test('a step-up answer says why and offers the link as a Verify your identity button', () => {
  const message = stepUpMessage({
    url,
    expiresAt,
    purpose: { kind: 'activation', roleName: 'prod-db', ask: {} },
  });
  expect(message.blocks).toEqual([
    {
      type: 'text',
      text: 'Your request for *prod-db* needs a fresh sign-in with MFA. The link works once, until 2026-06-01 09:10 UTC.',
    },
    { type: 'link', label: 'Verify your identity', url },
  ]);
  // The summary alone still carries the link (notifications, screen readers).
  expect(message.text).toBe(
    `Your request for prod-db needs a fresh sign-in with MFA. The link works once, until 2026-06-01 09:10 UTC. ${url}`,
  );
});

test('for a decision it names the verdict', () => {
  const message = stepUpMessage({
    url,
    expiresAt,
    purpose: { kind: 'decision', activationId: 'a1', verdict: 'deny', comment: 'no' },
  });
  expect(message.blocks[0]).toMatchObject({ text: expect.stringMatching(/^Denying this request needs/) });
});

test('the help mentions verification', () => {
  const text = JSON.stringify(helpMessage());
  expect(text).toContain('*Verify your identity*');
});
