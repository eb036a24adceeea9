import { z } from 'zod';
import type { Config } from '../../config.ts';

/**
 * The Slack chat platform's own variables (SLACK_BOT_TOKEN and SLACK_API_URL are shared with the
 * Slack user-group provider, grants/slack-usergroup/slack-env.ts). Slack is on in HTTP mode with
 * SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET, in Socket Mode with SLACK_BOT_TOKEN + SLACK_APP_TOKEN.
 */
export const slackChatEnv = z.object({
  // Verifies that requests to POST /slack/events come from Slack (HTTP mode).
  SLACK_SIGNING_SECRET: z.string().min(8, 'expected the Slack app signing secret').optional(),
  // An app-level token with connections:write switches to Socket Mode (no public URL needed).
  SLACK_APP_TOKEN: z
    .string()
    .regex(/^xapp-\S+$/, 'expected an app-level token (xapp-…)')
    .optional(),
});

/** Whether Slack is on: the bot token and a way in (signing secret for HTTP, app token for Socket Mode). */
export const slackChatOn = (config: Config): boolean =>
  Boolean(config.SLACK_BOT_TOKEN && (config.SLACK_SIGNING_SECRET || config.SLACK_APP_TOKEN));
