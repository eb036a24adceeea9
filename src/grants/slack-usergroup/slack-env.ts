import { z } from 'zod';

/** Where the Slack Web API lives unless `SLACK_API_URL` says otherwise. */
export const DEFAULT_SLACK_API_URL = 'https://slack.com/api/';

/**
 * The Slack variables, shared by the `slack-usergroup` grant provider and the Slack chat platform
 * (one Slack app, one token). Both are optional: without `SLACK_BOT_TOKEN` the Slack parts stay off.
 */
export const slackEnv = z.object({
  // A bot token (xoxb-) normally; a user token (xoxp-) where only admins may edit user groups.
  SLACK_BOT_TOKEN: z
    .string()
    .regex(/^xox[a-z]-\S+$/, 'expected a Slack token (xoxb-… or xoxp-…)')
    .optional(),
  // The Web API base; the method name is appended, so it ends with `/api/` (a local fake, a proxy).
  SLACK_API_URL: z
    .url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://slack.com/api/' })
    .optional(),
});

/** The checked Slack variables. */
export type SlackEnv = z.output<typeof slackEnv>;
