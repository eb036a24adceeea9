import type { App, BlockAction, ButtonAction } from '@slack/bolt';
import { explain, waitingReviewItem } from '../answers.ts';
import { reviewDecidedText, reviewForm } from '../messages.ts';
import { ACTION, BLOCK, VIEW } from './ids.ts';
import { formValues, renderModal } from './render.ts';
import { submitForm } from './requester-listeners.ts';
import { personOf, type SlackContext } from './slack-context.ts';

/**
 * Access review notices: Keep / Remove open a modal for the justification, whose submit decides
 * through the review service (which checks the reviewer and audits a refusal, so nothing here does).
 */
export function registerReviewListeners(app: App, ctx: SlackContext): void {
  for (const [actionId, callbackId, decision] of [
    [ACTION.reviewKeep, VIEW.reviewKeep, 'keep'],
    [ACTION.reviewRemove, VIEW.reviewRemove, 'remove'],
  ] as const) {
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action, client, respond }) => {
      await ack();
      try {
        const person = await personOf(ctx, body.user.id, body.user.team_id ?? body.team?.id ?? '');
        const item = await waitingReviewItem(ctx.reviews, person, action.value ?? '', decision);
        const self = item.principal === person.principal.email;
        await client.views.open({
          trigger_id: body.trigger_id,
          view: renderModal(reviewForm(decision, item, self)),
        });
      } catch (error) {
        // Decided already, ended, or not theirs: told to the clicker only; the notice stays.
        const text = explain(ctx, error);
        if (body.response_url) await respond({ response_type: 'ephemeral', replace_original: false, text });
        else await client.chat.postMessage({ channel: body.user.id, text });
      }
    });

    app.view(callbackId, async (args) => {
      const itemId = args.view.private_metadata;
      const justification = formValues(args.view.state).justification ?? '';
      await submitForm(
        ctx,
        args,
        async (person) => {
          const item = await ctx.reviews.decide({ actor: person.actor, itemId, decision, justification });
          // The modal closes; the outcome goes to the reviewer's DM with the bot.
          await args.client.chat.postMessage({ channel: person.userId, text: reviewDecidedText(item) });
        },
        () => BLOCK.justification,
      );
    });
  }
}
