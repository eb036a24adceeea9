import type { App, BlockAction, ButtonAction } from '@slack/bolt';
import { auditRefusal, explain, failureMessage } from '../answers.ts';
import { approvalCardOf } from '../chat-platform.ts';
import { decisionForm } from '../messages.ts';
import { ACTION, BLOCK, VIEW } from './ids.ts';
import { formValues, renderMessage, renderModal } from './render.ts';
import { submitForm } from './requester-listeners.ts';
import { type Person, personOf, type SlackContext } from './slack-context.ts';

/**
 * Approver cards: Approve at once, Approve with a comment, Deny with a reason (modals). The core
 * decides who may decide; a late click hears who decided first, a refused one is audited.
 */
export function registerApprovalListeners(app: App, ctx: SlackContext): void {
  app.action<BlockAction<ButtonAction>>(ACTION.approve, async ({ ack, body, action, respond, client }) => {
    await ack();
    const id = action.value ?? '';
    let person: Person | undefined;
    try {
      person = await personOf(ctx, body.user.id, body.user.team_id ?? body.team?.id ?? '');
      const outcome = await ctx.activations.approve({ actor: person.actor, activationId: id });
      // The clicked copy shows the outcome at once; the other copies follow through the outbox.
      const card = renderMessage(await approvalCardOf(ctx.activations, outcome.view, ctx.clock()));
      if (body.response_url) await respond({ replace_original: true, ...card });
      if (outcome.outcome === 'recorded') {
        const text = `Your approval is recorded; ${outcome.approvalsMissing} more needed.`;
        if (body.response_url) await respond({ response_type: 'ephemeral', replace_original: false, text });
        else await client.chat.postMessage({ channel: body.user.id, text });
      }
    } catch (error) {
      await auditRefusal(ctx, person, error, 'approve', { type: 'activation', id });
      const answer = renderMessage(failureMessage(ctx, error));
      if (body.response_url)
        await respond({ response_type: 'ephemeral', replace_original: false, ...answer });
      else await client.chat.postMessage({ channel: body.user.id, ...answer });
    }
  });

  for (const [actionId, verdict] of [
    [ACTION.approveWithComment, 'approve'],
    [ACTION.deny, 'deny'],
  ] as const) {
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action, client, respond }) => {
      await ack();
      const id = action.value ?? '';
      let person: Person | undefined;
      try {
        // Only someone who may decide sees the form: a forged button reveals nothing.
        person = await personOf(ctx, body.user.id, body.user.team_id ?? body.team?.id ?? '');
        const view = await ctx.activations.decidable({ actor: person.actor, activationId: id });
        await client.views.open({
          trigger_id: body.trigger_id,
          view: renderModal(decisionForm(verdict, view)),
        });
      } catch (error) {
        await auditRefusal(ctx, person, error, verdict, { type: 'activation', id });
        const text = explain(ctx, error);
        if (body.response_url) await respond({ response_type: 'ephemeral', replace_original: false, text });
      }
    });
  }

  for (const [callbackId, verdict] of [
    [VIEW.approve, 'approve'],
    [VIEW.deny, 'deny'],
  ] as const) {
    app.view(callbackId, async (args) => {
      const { view } = args;
      const id = view.private_metadata;
      const comment = formValues(view.state).comment ?? '';
      await submitForm(
        ctx,
        args,
        async (person) => {
          try {
            if (verdict === 'deny')
              await ctx.activations.deny({ actor: person.actor, activationId: id, comment });
            else await ctx.activations.approve({ actor: person.actor, activationId: id, comment });
          } catch (error) {
            await auditRefusal(ctx, person, error, verdict, { type: 'activation', id });
            throw error;
          }
        },
        () => BLOCK.comment,
      );
    });
  }
}
