import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BLOCK, VIEW } from '../../src/chat/slack/ids.ts';
import { FAKE_SLACK_APP_TOKEN } from '../support/fake-slack-api.ts';
import { type ElevateServer, SLASH_COMMAND, startElevate, stateOf } from '../support/slack-harness.ts';
import { messageText, type SlackView } from '../support/slack-workspace.ts';

/**
 * Slack in Socket Mode (SLACK_APP_TOKEN set), end to end: the real server asks the local Slack for
 * a connection (`apps.connections.open` with the app-level token), opens the WebSocket it was
 * given, and takes Slack's envelopes from it — `hello`, then slash commands and interactions —
 * acking each with its `envelope_id` (and a view's answer in the ack's payload). What it does in
 * answer reaches the local Web API and response_url as in HTTP mode.
 */

const USER = 'USOCKET';
const email = (user: string) => `${user.slice(1).toLowerCase()}@example.com`;
let elevate: ElevateServer;

beforeAll(async () => {
  elevate = await startElevate({
    policy: `
roles:
  - { name: socket-role, scope: local, provider: { type: none }, settings: { maxDuration: 2h } }
eligibility:
  - { principal: ${email(USER)}, role: socket-role }
`,
    env: { SLACK_APP_TOKEN: FAKE_SLACK_APP_TOKEN },
  });
  elevate.slack.addUser(USER, email(USER), 'socket');
  await elevate.slack.api.socket.connected();
}, 120_000);

afterAll(async () => {
  if (!elevate) return;
  const output = elevate.output();
  expect(await elevate.stop(), output).toBe(0);
});

/** The payload of a slash command envelope: the fields Slack posts in HTTP mode, as an object. */
function slashCommand(text: string) {
  const slack = elevate.slack;
  return {
    token: 'verification-token-unused',
    team_id: slack.api.team.id,
    team_domain: 'fake',
    channel_id: slack.dm(USER),
    channel_name: 'directmessage',
    user_id: USER,
    user_name: 'socket',
    command: SLASH_COMMAND,
    text,
    api_app_id: 'A0ELEVATE',
    is_enterprise_install: 'false',
    response_url: slack.responseUrl(USER),
    trigger_id: slack.trigger(USER),
  };
}

/** The payload of an `interactive` envelope submitting `view` with these fields. */
function viewSubmission(view: SlackView, fields: Record<string, unknown>) {
  return {
    type: 'view_submission',
    team: { id: elevate.slack.api.team.id, domain: 'fake' },
    user: { id: USER, username: 'socket', name: 'socket', team_id: elevate.slack.api.team.id },
    api_app_id: 'A0ELEVATE',
    token: 'verification-token-unused',
    trigger_id: elevate.slack.trigger(USER),
    is_enterprise_install: false,
    enterprise: null,
    view: {
      ...view.raw,
      id: view.id,
      type: view.type,
      callback_id: view.callback_id ?? '',
      private_metadata: view.private_metadata ?? '',
      hash: view.hash,
      state: { values: stateOf(view, fields) },
      app_id: 'A0ELEVATE',
    },
    response_urls: [],
  };
}

describe('Slack in Socket Mode', () => {
  test('connects with the app-level token and serves no HTTP route', async () => {
    const opened = elevate.slack.api.callsTo('apps.connections.open');
    expect(opened.length).toBeGreaterThanOrEqual(1);
    expect(opened.every((call) => call.status === 200 && !call.error)).toBe(true);
    expect(elevate.output()).not.toContain('"level":50');
    const response = await elevate.signed('command=%2Felevate&text=', 'application/x-www-form-urlencoded');
    expect(response.status).toBe(404);
  });

  test('a slash command envelope is acked with its envelope_id and the board reaches response_url', async () => {
    const before = elevate.slack.messagesFor(USER).length;
    const payload = slashCommand('');
    const ack = await elevate.slack.api.socket.send('slash_commands', payload);
    expect(typeof ack.envelope_id).toBe('string');
    const board = await elevate.slack.waitFor('the board over Socket Mode', () =>
      elevate.slack
        .messagesFor(USER)
        .slice(before)
        .find((m) => /your roles/i.test(messageText(m))),
    );
    expect(board.responseUrl).toBe(payload.response_url);
    expect(messageText(board)).toContain('socket-role');
  });

  test('/elevate activate opens the modal (views.open), and its submission is answered in the ack', async () => {
    const payload = slashCommand('activate socket-role');
    await elevate.slack.api.socket.send('slash_commands', payload);
    const modal = await elevate.slack.waitFor('the activation modal', () =>
      elevate.slack.viewsFor(USER).find((v) => v.callback_id === VIEW.activate && !v.closed),
    );
    const open = elevate.slack.api
      .callsTo('views.open')
      .find((call) => call.args.trigger_id === payload.trigger_id);
    expect(open?.status).toBe(200);
    expect(open?.error).toBeUndefined();

    // A problem comes back on its field, in the ack's payload (Socket Mode has no HTTP answer).
    const refused = await elevate.slack.api.socket.send(
      'interactive',
      viewSubmission(modal, { [BLOCK.justification]: '' }),
    );
    expect(refused.payload).toMatchObject({
      response_action: 'errors',
      errors: { [BLOCK.justification]: expect.stringMatching(/justification/i) },
    });

    const accepted = await elevate.slack.api.socket.send(
      'interactive',
      viewSubmission(modal, { [BLOCK.justification]: 'rotate the socket certificates' }),
    );
    expect(accepted.payload ?? {}).toEqual({});
    const active = await elevate.slack.waitFor('the requester told the role is active', () =>
      elevate.slack
        .messagesFor(USER)
        .find(
          (m) => m.source === 'dm' && /socket-role/.test(messageText(m)) && /active/i.test(messageText(m)),
        ),
    );
    expect(active.channel).toBe(elevate.slack.dm(USER));
  });
});
