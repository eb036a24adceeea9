import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  ButtonAction,
  SlackActionMiddlewareArgs,
  SlackViewMiddlewareArgs,
} from '@slack/bolt';
import { formProblem } from '../../elevation/policy.ts';
import { isStepUpNeeded } from '../../elevation/step-up-service.ts';
import { ElevateError, forbidden } from '../../errors.ts';
import { auditRefusal, explain, failureMessage } from '../answers.ts';
import { parseCommand } from '../command-text.ts';
import {
  activationForm,
  approvalsMessage,
  boardMessage,
  extensionForm,
  helpMessage,
  type Message,
  plainMessage,
  requestedText,
} from '../messages.ts';
import { openAdminMenu } from './admin-listeners.ts';
import { ACTION, BLOCK, COMMAND, VIEW } from './ids.ts';
import { formValues, renderMessage, renderModal } from './render.ts';
import { type Person, personOf, type SlackContext } from './slack-context.ts';

type ButtonArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;
type ViewArgs = SlackViewMiddlewareArgs & AllMiddlewareArgs;

/** Only people see ephemeral answers; `respond` posts them to the request's response_url. */
const ephemeral = (message: Message) => ({
  response_type: 'ephemeral' as const,
  replace_original: false,
  ...renderMessage(message),
});

/** Submits a form: a quick answer acks with inline errors, a slow one acks first and DMs problems. */
export async function submitForm(
  ctx: SlackContext,
  args: ViewArgs,
  work: (person: Person) => Promise<void>,
  errorBlock: (error: ElevateError) => string,
): Promise<void> {
  // Who submitted, decided on the server: someone we cannot resolve hears why on the form.
  const { user, team } = args.body;
  const person = await personOf(ctx, user.id, user.team_id ?? team?.id ?? '').catch((e) => e as Error);
  if (person instanceof Error) {
    const error = person instanceof ElevateError ? person : new ElevateError('unavailable', '');
    await args.ack({ response_action: 'errors', errors: { [errorBlock(error)]: explain(ctx, person) } });
    return;
  }
  const running = work(person).then(
    () => undefined,
    (error: unknown) => error,
  );
  const first = await Promise.race([running, new Promise((r) => setTimeout(r, 2000, 'late'))]);
  if (first === 'late') {
    await args.ack();
    ctx.track(
      running.then(async (error) => {
        if (error)
          await args.client.chat.postMessage({
            channel: args.body.user.id,
            ...renderMessage(failureMessage(ctx, error)),
          });
      }),
    );
    return;
  }
  if (isStepUpNeeded(first)) {
    // The sign-in happens in the browser: the form closes, and the button arrives as a DM.
    await args.ack();
    await args.client.chat.postMessage({ channel: user.id, ...renderMessage(failureMessage(ctx, first)) });
    return;
  }
  if (first instanceof ElevateError) {
    await args.ack({ response_action: 'errors', errors: { [errorBlock(first)]: first.message } });
    return;
  }
  if (first) {
    await args.ack({
      response_action: 'errors',
      errors: { [errorBlock(new ElevateError('unavailable', ''))]: explain(ctx, first) },
    });
    return;
  }
  await args.ack();
}

/** The form's block for a core error: its field when the form shows it, else the first input. */
function blockFor(view: { blocks: { block_id?: string }[] }, fallback: string) {
  return (error: ElevateError) => {
    const shown = new Set(view.blocks.map((b) => b.block_id));
    return error.field && shown.has(error.field) ? error.field : fallback;
  };
}

/** `/elevate`, the App Home, and the requester's buttons and forms. */
export function registerRequesterListeners(app: App, ctx: SlackContext): void {
  app.command(COMMAND, async ({ command, ack, respond, client }) => {
    await ack();
    let person: Person;
    try {
      person = await personOf(ctx, command.user_id, command.team_id);
    } catch (error) {
      await respond(ephemeral(plainMessage(explain(ctx, error))));
      return;
    }
    const parsed = parseCommand(command.text ?? '');
    try {
      switch (parsed.verb) {
        case 'board':
          await respond(
            ephemeral(boardMessage(await ctx.activations.listAccess(person.principal.id), ctx.clock())),
          );
          return;
        case 'help':
          await respond(ephemeral(helpMessage()));
          return;
        case 'approvals':
          await respond(
            ephemeral(approvalsMessage(await ctx.activations.listApprovals(person.principal.id))),
          );
          return;
        case 'admin':
          await openAdminMenu(ctx, person, command.trigger_id, (text) =>
            respond(ephemeral(plainMessage(text))),
          );
          return;
        case 'unknown':
          await respond(
            ephemeral(
              helpMessage(
                `I don't know "${parsed.text}".${parsed.suggestion ? ` Did you mean \`${COMMAND} ${parsed.suggestion}\`?` : ''}`,
              ),
            ),
          );
          return;
        case 'activate': {
          if (!parsed.roleName) {
            await respond(
              ephemeral(boardMessage(await ctx.activations.listAccess(person.principal.id), ctx.clock())),
            );
            return;
          }
          const ask = { durationMinutes: parsed.durationMinutes, justification: parsed.justification };
          // What the form can fix is found without a transaction, and the modal opens after the
          // one query it needs (the trigger_id lives 3 s). Anything else goes to the request,
          // which checks everything again.
          const entry = (await ctx.activations.listEligible(person.principal.id)).find(
            (e) => e.role.name === parsed.roleName,
          );
          const problem = entry && formProblem(entry.role, entry.eligibleUntil, ask, ctx.clock());
          if (entry && problem) {
            await client.views.open({
              trigger_id: command.trigger_id,
              view: renderModal(activationForm(entry.role, { ...ask, problem: problem.message })),
            });
            return;
          }
          try {
            const view = await ctx.activations.requestActivation({
              actor: person.actor,
              roleName: parsed.roleName,
              ...ask,
            });
            await respond(ephemeral(plainMessage(requestedText(view.role.name, view.activation.status))));
          } catch (error) {
            // Something the form can fix (a missing reason, a ticket, a duration): open it pre-filled.
            if (error instanceof ElevateError && error.field) {
              if (entry) {
                await client.views.open({
                  trigger_id: command.trigger_id,
                  view: renderModal(activationForm(entry.role, { ...ask, problem: error.message })),
                });
                return;
              }
            }
            throw error;
          }
          return;
        }
      }
    } catch (error) {
      await respond(ephemeral(failureMessage(ctx, error)));
    }
  });

  // A link button (Verify your identity) opens the browser; Slack still reports the click.
  app.action(ACTION.verifyIdentity, async ({ ack }) => {
    await ack();
  });

  app.event('app_home_opened', async ({ event }) => {
    if (event.tab !== 'home') return;
    await ctx.publishHome(event.user);
  });

  /** A board or message button: ack at once, act, then answer the clicker ephemerally. */
  const button = (
    actionId: string,
    act: (person: Person, value: string, args: ButtonArgs) => Promise<string | undefined>,
  ) =>
    app.action<BlockAction<ButtonAction>>(actionId, async (args) => {
      await args.ack();
      const { body, action } = args;
      const reply = async (message: Message) => {
        if (body.response_url) await args.respond(ephemeral(message));
        else await args.client.chat.postMessage({ channel: body.user.id, ...renderMessage(message) });
      };
      let person: Person | undefined;
      try {
        person = await personOf(ctx, body.user.id, body.user.team_id ?? body.team?.id ?? '');
        const text = await act(person, action.value ?? '', args);
        if (text) await reply(plainMessage(text));
        if (body.view?.type === 'home') await ctx.publishHome(body.user.id, person.principal);
      } catch (error) {
        await auditRefusal(ctx, person, error, actionId, { type: 'activation', id: action.value ?? '' });
        await reply(failureMessage(ctx, error));
      }
    });

  button(ACTION.activate, async (person, roleName, { body, client }) => {
    const entry = (await ctx.activations.listEligible(person.principal.id)).find(
      (e) => e.role.name === roleName,
    );
    if (!entry) return `You are not eligible for the role ${roleName}.`;
    await client.views.open({ trigger_id: body.trigger_id, view: renderModal(activationForm(entry.role)) });
    return undefined;
  });

  button(ACTION.extend, async (person, id, { body, client }) => {
    const view = await ctx.activations.get(id);
    // The form shows the activation, so only its owner may open it; extend() checks again.
    if (view.activation.principalId !== person.principal.id) {
      throw forbidden(`Only ${view.principal.email} can extend this activation.`);
    }
    await client.views.open({
      trigger_id: body.trigger_id,
      view: renderModal(extensionForm(view, ctx.clock())),
    });
    return undefined;
  });

  button(ACTION.deactivate, async (person, id) => {
    const view = await ctx.activations.deactivate({ actor: person.actor, activationId: id });
    return view.activation.status === 'ended'
      ? `Your ${view.role.name} is deactivated.`
      : `Deactivating ${view.role.name}: the target system is being asked to take it back.`;
  });

  button(ACTION.cancel, async (person, id) => {
    const view = await ctx.activations.cancel({ actor: person.actor, activationId: id });
    return `Your ${view.activation.kind === 'extension' ? 'extension' : 'request'} for ${view.role.name} is cancelled.`;
  });

  app.view(VIEW.activate, async (args) => {
    const { view } = args;
    const values = formValues(view.state);
    const roleName = view.private_metadata;
    await submitForm(
      ctx,
      args,
      async (person) => {
        await ctx.activations.requestActivation({
          actor: person.actor,
          roleName,
          durationMinutes: values.duration ? Number(values.duration) : undefined,
          startAt: values.start ? new Date(Number(values.start) * 1000) : undefined,
          justification: values.justification,
          ticketSystem: values.ticketSystem,
          ticketNumber: values.ticketNumber,
        });
      },
      blockFor(view, BLOCK.duration),
    );
  });

  app.view(VIEW.extend, async (args) => {
    const { view } = args;
    const values = formValues(view.state);
    await submitForm(
      ctx,
      args,
      async (person) => {
        try {
          await ctx.activations.extend({
            actor: person.actor,
            activationId: view.private_metadata,
            durationMinutes: Number(values.duration),
            justification: values.justification,
          });
        } catch (error) {
          await auditRefusal(ctx, person, error, 'extend', { type: 'activation', id: view.private_metadata });
          throw error;
        }
      },
      blockFor(view, BLOCK.duration),
    );
  });
}
