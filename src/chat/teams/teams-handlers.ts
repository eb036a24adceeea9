import { isStepUpNeeded } from '../../elevation/step-up-service.ts';
import { ElevateError, forbidden } from '../../errors.ts';
import { resendAwaitingAccount } from '../../jobs/deliver-notifications.ts';
import { auditRefusal, explain, failureMessage, UnknownPerson, waitingReviewItem } from '../answers.ts';
import { parseCommand } from '../command-text.ts';
import {
  activationForm,
  alertCard,
  approvalsMessage,
  boardMessage,
  decisionForm,
  extensionForm,
  type Form,
  helpMessage,
  type Message,
  plainMessage,
  requestedText,
  reviewDecidedText,
  reviewForm,
} from '../messages.ts';
import {
  type AdaptiveCard,
  cardActivity,
  cardResponse,
  type DialogSubmitData,
  dialogButton,
  dialogMessage,
  dialogResponse,
  formDialog,
  messageResponse,
  REFRESH_VERB,
  renderMessage,
} from './render.ts';
import { ALERT_OPS, adminDialog, adminSubmit, notAdmin } from './teams-admin.ts';
import { type IncomingActivity, instant, type Person, personOf, type TeamsContext } from './teams-context.ts';
import { rememberConversation } from './teams-conversation-repository.ts';
import { approverCard, teamsCommand } from './teams-delivery.ts';
import { tenantOf } from './teams-identity.ts';

/** The review forms: the review service audits their refusals itself. */
const REVIEW_FORMS: ReadonlySet<string> = new Set(['reviewKeep', 'reviewRemove']);

/** What a handler answers: the invoke response body, or nothing for plain activities. */
type Answer = unknown;

/**
 * Dispatches one validated activity: messages (commands), `adaptiveCard/action` (Action.Execute),
 * `task/fetch` / `task/submit` (dialogs), and installs (conversation references, rosters).
 * `tenantId` set: activities from other tenants are refused (a single-tenant bot).
 */
export function createTeamsHandlers(ctx: TeamsContext, options: { tenantId?: string }) {
  /** An answer in the conversation the activity came from, threaded to it (`replyToId`). */
  const reply = async (activity: IncomingActivity, message: Message, adaptive?: AdaptiveCard) => {
    await ctx.connector.send(activity.serviceUrl, activity.conversation.id, {
      ...cardActivity(message, adaptive),
      ...(activity.id ? { replyToId: activity.id } : {}),
    });
  };

  /**
   * Remembers how to reach the channel or group chat an activity came from (and its team's
   * General channel), for proactive posts there: the alerts channel.
   */
  async function rememberShared(activity: IncomingActivity): Promise<void> {
    const type = activity.conversation.conversationType ?? '';
    if (type !== 'channel' && type !== 'groupChat') return;
    const ids = new Set([
      activity.conversation.id,
      activity.channelData?.channel?.id,
      activity.channelData?.team?.id,
    ]);
    for (const id of ids) {
      if (!id) continue;
      const at = { tenant: tenantOf(activity), serviceUrl: activity.serviceUrl, now: ctx.clock() };
      await rememberConversation(ctx.db, { ...at, id, conversationType: type });
    }
  }

  async function board(person: Person, notice?: string): Promise<AdaptiveCard> {
    const message = boardMessage(
      await ctx.activations.listAccess(person.principal.id),
      ctx.clock(),
      teamsCommand,
    );
    return renderMessage(message, { notice });
  }

  // ---- messages: the commands ----

  async function onMessage(activity: IncomingActivity): Promise<void> {
    const text = (activity.text ?? '')
      .replace(/<at>[^<]*<\/at>/g, ' ')
      .replace(/&nbsp;/g, ' ')
      .trim()
      .replace(/^elevate\b/i, '')
      .trim();
    await rememberShared(activity);
    let person: Person;
    try {
      person = await personOf(ctx, activity);
    } catch (error) {
      await reply(activity, plainMessage(explain(ctx, error)));
      return;
    }
    // In a channel or group chat everyone would read the answer (roles, other people's requests):
    // it goes to the person's 1:1 chat with the bot, and the channel only hears where it went.
    const personal = activity.conversation.conversationType === 'personal';
    const answer = async (message: Message, adaptive?: AdaptiveCard) => {
      const to = personal ? undefined : await ctx.identity.conversationOf(person.principal);
      if (!to) return reply(activity, message, adaptive);
      await ctx.connector.send(to.serviceUrl, to.conversationId, cardActivity(message, adaptive));
      await reply(activity, plainMessage('I answered you in our 1:1 chat.'));
    };
    const parsed = parseCommand(text);
    try {
      switch (parsed.verb) {
        case 'board': {
          const message = boardMessage(
            await ctx.activations.listAccess(person.principal.id),
            ctx.clock(),
            teamsCommand,
          );
          await answer(message);
          return;
        }
        case 'help':
          await answer(helpMessage(undefined, teamsCommand));
          return;
        case 'approvals':
          await answer(approvalsMessage(await ctx.activations.listApprovals(person.principal.id)));
          return;
        case 'admin': {
          if (!person.principal.isAdmin) {
            const refusal = notAdmin();
            await auditRefusal(ctx, person, refusal, 'admin.open', {
              type: 'principal',
              id: person.principal.email,
            });
            await answer(plainMessage(refusal.message));
            return;
          }
          const message = plainMessage(
            'Roles, eligibility, assignments, running activations, access reviews and the audit trail.',
          );
          await reply(
            activity,
            message,
            withButton(
              renderMessage(message),
              dialogButton('Open admin', 'admin', '', { style: 'positive' }),
            ),
          );
          return;
        }
        case 'unknown':
          await reply(
            activity,
            helpMessage(
              `I don't know "${parsed.text}".${parsed.suggestion ? ` Did you mean \`${teamsCommand(parsed.suggestion)}\`?` : ''}`,
              teamsCommand,
            ),
          );
          return;
        case 'activate': {
          if (!parsed.roleName) {
            await reply(
              activity,
              boardMessage(await ctx.activations.listAccess(person.principal.id), ctx.clock(), teamsCommand),
            );
            return;
          }
          const ask = { durationMinutes: parsed.durationMinutes, justification: parsed.justification };
          try {
            const view = await ctx.activations.requestActivation({
              actor: person.actor,
              roleName: parsed.roleName,
              ...ask,
            });
            await answer(plainMessage(requestedText(view.role.name, view.activation.status)));
          } catch (error) {
            // Something the form can fix (a reason, a ticket, a duration): offer it, pre-filled.
            if (error instanceof ElevateError && error.field) {
              const access = await ctx.activations.listAccess(person.principal.id);
              if (access.eligible.some((e) => e.role.name === parsed.roleName)) {
                const message = plainMessage(`${error.message} Open the form to complete the request.`);
                const button = dialogButton(
                  'Open the form',
                  'activate',
                  parsed.roleName ?? '',
                  { style: 'positive' },
                  { duration: ask.durationMinutes, justification: ask.justification },
                );
                await answer(message, withButton(renderMessage(message), button));
                return;
              }
            }
            throw error;
          }
          return;
        }
      }
    } catch (error) {
      await answer(failureMessage(ctx, error));
    }
  }

  // ---- Action.Execute: act at once, answer with the card as it is now ----

  async function onCardAction(activity: IncomingActivity): Promise<Answer> {
    const action = ((activity.value ?? {}) as { action?: { verb?: unknown; data?: { value?: unknown } } })
      .action;
    const verb = String(action?.verb ?? '');
    const id = String(action?.data?.value ?? '');
    let person: Person | undefined;
    try {
      person = await personOf(ctx, activity);
      switch (verb) {
        case 'approve': {
          const outcome = await ctx.activations.approve({ actor: person.actor, activationId: id });
          const notice =
            outcome.outcome === 'recorded'
              ? `Your approval is recorded; ${outcome.approvalsMissing} more needed.`
              : undefined;
          return cardResponse(
            (await approverCard(ctx.activations, outcome.view, ctx.clock(), [activity.from.id], notice)).card,
          );
        }
        case REFRESH_VERB: {
          // The automatic refresh shows the request only to someone who may decide on it.
          const view = await ctx.activations
            .decidable({ actor: person.actor, activationId: id })
            .catch(async (error) => {
              if (error instanceof ElevateError && error.code === 'conflict') return ctx.activations.get(id);
              throw error;
            });
          return cardResponse(
            (await approverCard(ctx.activations, view, ctx.clock(), [activity.from.id])).card,
          );
        }
        case 'cancel': {
          const view = await ctx.activations.cancel({ actor: person.actor, activationId: id });
          const what = view.activation.kind === 'extension' ? 'extension' : 'request';
          return cardResponse(await board(person, `Your ${what} for ${view.role.name} is cancelled.`));
        }
        case 'deactivate': {
          const view = await ctx.activations.deactivate({ actor: person.actor, activationId: id });
          const text =
            view.activation.status === 'ended'
              ? `Your ${view.role.name} is deactivated.`
              : `Deactivating ${view.role.name}: the target system is being asked to take it back.`;
          return cardResponse(await board(person, text));
        }
        case 'alertRemoveEligibility':
        case 'alertRevoke': {
          // The alert's card (an admin's chat, or the alerts channel's one card) becomes the
          // outcome, with no button left to click.
          const alert = await ctx.alerts[ALERT_OPS[verb]]({ actor: person.actor, alertId: id });
          return cardResponse(renderMessage(alertCard(alert)));
        }
        default:
          return messageResponse('This button is not one Elevate knows; type `help` for the commands.');
      }
    } catch (error) {
      // The alert service audits its own refusals (alert.action_refused); the rest are audited here.
      if (!(verb in ALERT_OPS)) await auditRefusal(ctx, person, error, verb, { type: 'activation', id });
      // Approve waits for a step-up: the link on top of the request, whose buttons stay for another
      // try (a new link) should this one expire. The copy is updated in place once a decision counts.
      if (isStepUpNeeded(error)) {
        const { message } = await approverCard(
          ctx.activations,
          await ctx.activations.get(id),
          ctx.clock(),
          [],
        );
        const stepUp = failureMessage(ctx, error);
        return cardResponse(
          renderMessage({
            text: stepUp.text,
            blocks: [...stepUp.blocks, { type: 'divider' }, ...message.blocks],
          }),
        );
      }
      // A click on a decided card: the card shows the outcome, with who decided first on top.
      if (verb === 'approve' && error instanceof ElevateError && error.code === 'conflict') {
        const view = await ctx.activations.get(id).catch(() => undefined);
        if (view)
          return cardResponse(
            (await approverCard(ctx.activations, view, ctx.clock(), [activity.from.id], error.message)).card,
          );
      }
      return messageResponse(explain(ctx, error));
    }
  }

  // ---- dialogs ----

  async function onDialogOpen(activity: IncomingActivity): Promise<Answer> {
    const data = ((activity.value ?? {}) as { data?: Record<string, unknown> }).data ?? {};
    const dialog = String(data.dialog ?? '');
    const value = String(data.value ?? '');
    let person: Person | undefined;
    try {
      person = await personOf(ctx, activity);
      switch (dialog) {
        case 'activate': {
          const access = await ctx.activations.listAccess(person.principal.id);
          const entry = access.eligible.find((e) => e.role.name === value);
          if (!entry) return dialogMessage(`You are not eligible for the role ${value}.`);
          const duration = Number(data.duration);
          const form = activationForm(entry.role, {
            durationMinutes: Number.isFinite(duration) && duration > 0 ? duration : undefined,
            justification: typeof data.justification === 'string' ? data.justification : undefined,
          });
          return formDialog(form);
        }
        case 'extend': {
          const view = await ctx.activations.get(value);
          // The form shows the activation, so only its owner may open it; extend() checks again.
          if (view.activation.principalId !== person.principal.id)
            throw forbidden(`Only ${view.principal.email} can extend this activation.`);
          return formDialog(extensionForm(view, ctx.clock()));
        }
        case 'approveWithComment':
        case 'deny': {
          // Only someone who may decide sees the form: forged card data reveals nothing.
          const view = await ctx.activations.decidable({ actor: person.actor, activationId: value });
          return formDialog(decisionForm(dialog === 'deny' ? 'deny' : 'approve', view));
        }
        case 'admin':
          return await adminDialog(ctx, person);
        case 'reviewKeep':
        case 'reviewRemove': {
          // Only the item's own reviewer sees the form; anyone else hears why (the service audits a refusal).
          const decision = dialog === 'reviewKeep' ? 'keep' : 'remove';
          const item = await waitingReviewItem(ctx.reviews, person, value, decision);
          return formDialog(reviewForm(decision, item, item.principal === person.principal.email));
        }
        default:
          return dialogMessage('This dialog is not one Elevate knows.');
      }
    } catch (error) {
      if (!REVIEW_FORMS.has(dialog))
        await auditRefusal(ctx, person, error, dialog, { type: 'activation', id: value });
      return dialogMessage(explain(ctx, error));
    }
  }

  async function onDialogSubmit(activity: IncomingActivity): Promise<Answer> {
    const data = (((activity.value ?? {}) as { data?: DialogSubmitData }).data ?? {}) as DialogSubmitData;
    const form = String(data.form ?? '');
    const subject = String(data.subject ?? '');
    let person: Person | undefined;
    try {
      person = await personOf(ctx, activity);
    } catch (error) {
      return dialogMessage(explain(ctx, error));
    }
    const text = (name: string) => (typeof data[name] === 'string' ? (data[name] as string) : undefined);
    // A problem the form can show: re-open it with what the person typed and the error on its field.
    const again = async (build: () => Promise<Form>, error: unknown) => {
      if (!(error instanceof ElevateError) || error.code === 'forbidden' || isStepUpNeeded(error))
        throw error;
      const shown = await build();
      const onField = error.field && shown.inputs.some((i) => i.name === error.field);
      return formDialog(shown, {
        values: data,
        ...(onField && error.field
          ? { errors: { [error.field]: error.message } }
          : { notice: error.message }),
      });
    };
    // The admin dialog audits its own refusals (adminSubmit), as the review service does.
    const admin = Boolean(data.action) || form.startsWith('admin');
    try {
      if (admin) return await adminSubmit(ctx, person, data);
      switch (form) {
        case 'activate': {
          const access = await ctx.activations.listAccess(person.principal.id);
          const entry = access.eligible.find((e) => e.role.name === subject);
          if (!entry) return dialogMessage(`You are not eligible for the role ${subject}.`);
          try {
            const view = await ctx.activations.requestActivation({
              actor: person.actor,
              roleName: subject,
              durationMinutes: text('duration') ? Number(text('duration')) : undefined,
              startAt: instant(data, 'start'),
              justification: text('justification'),
              ticketSystem: text('ticketSystem'),
              ticketNumber: text('ticketNumber'),
            });
            return dialogMessage(requestedText(view.role.name, view.activation.status));
          } catch (error) {
            return await again(async () => activationForm(entry.role), error);
          }
        }
        case 'extend': {
          try {
            const view = await ctx.activations.extend({
              actor: person.actor,
              activationId: subject,
              durationMinutes: Number(text('duration')),
              justification: text('justification'),
            });
            return dialogMessage(
              view.activation.status === 'pending_approval'
                ? `Extension of ${view.role.name} requested; the approvers are asked.`
                : `${view.role.name} is extended.`,
            );
          } catch (error) {
            return await again(
              async () => extensionForm(await ctx.activations.get(subject), ctx.clock()),
              error,
            );
          }
        }
        case 'approve':
        case 'deny': {
          const comment = text('comment') ?? '';
          try {
            if (form === 'deny') {
              const view = await ctx.activations.deny({
                actor: person.actor,
                activationId: subject,
                comment,
              });
              return dialogMessage(`You denied ${view.principal.email}'s request for ${view.role.name}.`);
            }
            const outcome = await ctx.activations.approve({
              actor: person.actor,
              activationId: subject,
              comment,
            });
            return dialogMessage(
              outcome.outcome === 'recorded'
                ? `Your approval is recorded; ${outcome.approvalsMissing} more needed.`
                : `You approved ${outcome.view.principal.email}'s request for ${outcome.view.role.name}.`,
            );
          } catch (error) {
            if (error instanceof ElevateError && error.code === 'conflict') throw error;
            const verdict = form === 'deny' ? 'deny' : 'approve';
            return await again(async () => decisionForm(verdict, await ctx.activations.get(subject)), error);
          }
        }
        case 'reviewKeep':
        case 'reviewRemove': {
          const decision = form === 'reviewKeep' ? 'keep' : 'remove';
          const justification = text('justification') ?? '';
          try {
            const item = await ctx.reviews.decide({
              actor: person.actor,
              itemId: subject,
              decision,
              justification,
            });
            return dialogMessage(reviewDecidedText(item));
          } catch (error) {
            // A missing justification goes back onto the form; a refusal or a conflict is one line.
            if (error instanceof ElevateError && error.code === 'conflict') throw error;
            return await again(async () => {
              const item = await waitingReviewItem(ctx.reviews, person, subject, decision);
              return reviewForm(decision, item, item.principal === person.principal.email);
            }, error);
          }
        }
        default:
          return dialogMessage('This form is not one Elevate knows.');
      }
    } catch (error) {
      if (!admin && !REVIEW_FORMS.has(form))
        await auditRefusal(ctx, person, error, form || String(data.action ?? 'dialog'), {
          type: 'activation',
          id: subject || String(data.value ?? ''),
        });
      // A step-up needs its button, so it is a card dialog; anything else is one line.
      if (isStepUpNeeded(error))
        return dialogResponse('Verify your identity', renderMessage(failureMessage(ctx, error)));
      return dialogMessage(explain(ctx, error));
    }
  }

  // ---- installs: remember how to reach people ----

  async function onInstall(activity: IncomingActivity): Promise<void> {
    const personal = activity.conversation.conversationType === 'personal';
    if (activity.type === 'installationUpdate' && activity.action?.startsWith('remove')) return;
    if (activity.type === 'conversationUpdate') {
      const added = activity.membersAdded ?? [];
      if (added.length === 0) return;
      // In a personal chat the one added is the bot; in a team, people joining are linked too.
      if (personal && !added.some((m) => m.id === activity.recipient.id)) return;
    }
    if (!personal) {
      await rememberShared(activity);
      const linked = await ctx.identity.linkRoster(activity);
      ctx.log.info({ tenant: tenantOf(activity), linked }, 'Teams roster linked');
      return;
    }
    try {
      const person = await personOf(ctx, activity);
      // What could not reach them before (an approver's card, a review notice) goes out now.
      const resent = await resendAwaitingAccount(ctx.db, {
        recipientId: person.principal.id,
        now: ctx.clock(),
      });
      if (resent > 0)
        ctx.log.info({ principal: person.principal.id, resent }, 'notices resent after install');
      await reply(activity, helpMessage('Hi! I am Elevate: ask for a role when you need it.', teamsCommand));
    } catch (error) {
      if (error instanceof UnknownPerson) await reply(activity, plainMessage(error.message));
      else throw error;
    }
  }

  /** One activity in, the invoke answer (or nothing) out. */
  return async function handle(activity: IncomingActivity): Promise<Answer> {
    const invoke = activity.type === 'invoke';
    // Nowhere to answer, and (with authentication on) no service URL the token vouched for.
    if (!activity.serviceUrl || !activity.conversation?.id || !activity.from?.id) return undefined;
    if (options.tenantId && tenantOf(activity) && tenantOf(activity) !== options.tenantId) {
      ctx.log.warn({ tenant: tenantOf(activity) }, 'Teams activity from another tenant refused');
      const text = 'This Elevate serves another organization.';
      if (invoke)
        return activity.name === 'adaptiveCard/action' ? messageResponse(text) : dialogMessage(text);
      if (activity.type === 'message') await reply(activity, plainMessage(text));
      return undefined;
    }
    if (activity.type === 'message') return onMessage(activity);
    if (activity.type === 'conversationUpdate' || activity.type === 'installationUpdate')
      return onInstall(activity);
    if (!invoke) return undefined;
    if (activity.name === 'adaptiveCard/action') return onCardAction(activity);
    if (activity.name === 'task/fetch') return onDialogOpen(activity);
    if (activity.name === 'task/submit') return onDialogSubmit(activity);
    return undefined;
  };
}

/** A card with one more button at the bottom. */
function withButton(adaptive: AdaptiveCard, button: Record<string, unknown>): AdaptiveCard {
  return { ...adaptive, actions: [...(adaptive.actions ?? []), button] };
}
