import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  ButtonAction,
  SlackActionMiddlewareArgs,
} from '@slack/bolt';
import { auditEvents } from '../../audit/audit.sql.ts';
import { desc } from '../../db/drizzle.ts';
import { OPEN_STATUSES } from '../../elevation/activation.sql.ts';
import { findPrincipalByEmail } from '../../elevation/principal-repository.ts';
import { getRoleByName, listEligibilities, listRoles } from '../../elevation/role-repository.ts';
import { forbidden, invalid } from '../../errors.ts';
import { listFailedNotifications } from '../../jobs/deliver-notifications.ts';
import { parseSettings, parseYaml, reviewInput } from '../admin-form-values.ts';
import {
  activationsPage,
  adminMenuForm,
  alertsPage,
  assignmentForm,
  auditPage,
  deliveriesPage,
  eligibilityPage,
  reviewStartedText,
  reviewStartForm,
  reviewsPage,
  roleForm,
  rolesPage,
  scanText,
} from '../admin-messages.ts';
import { auditRefusal, explain, UnknownPerson } from '../answers.ts';
import { alertCard, type Form, type Message } from '../messages.ts';
import { ACTION, BLOCK, VIEW } from './ids.ts';
import { formValues, renderMessage, renderModal } from './render.ts';
import { submitForm } from './requester-listeners.ts';
import { type Person, personOf, type SlackContext } from './slack-context.ts';

type ButtonArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;

/** The start-a-review form's fields: a problem on one of them is shown under it. */
const REVIEW_FIELDS: ReadonlySet<string> = new Set(reviewStartForm([]).inputs.map((i) => i.name));

const notAdmin = () => forbidden('The admin dialogs are for Elevate admins; ask one if you need a change.');

/** Opens the admin menu for admins; anyone else is refused politely, and the attempt audited. */
export async function openAdminMenu(
  ctx: SlackContext,
  person: Person,
  triggerId: string,
  tell: (text: string) => Promise<unknown>,
): Promise<void> {
  if (!person.principal.isAdmin) {
    const refusal = notAdmin();
    await auditRefusal(ctx, person, refusal, 'admin.open', { type: 'principal', id: person.principal.email });
    await tell(refusal.message);
    return;
  }
  await ctx.client.views.open({ trigger_id: triggerId, view: renderModal(adminMenuForm()) });
}

/** Admin dialogs: roles, eligibility, assignments, revoke, audit, failed deliveries, alerts, access reviews. */
export function registerAdminListeners(app: App, ctx: SlackContext): void {
  /** An admin button: checks the clicker is an admin (the services check again), then shows a page. */
  const adminButton = (
    actionId: string,
    act: (person: Person, value: string, args: ButtonArgs) => Promise<Form | undefined>,
  ) =>
    app.action<BlockAction<ButtonAction>>(actionId, async (args) => {
      await args.ack();
      const { body, action } = args;
      let person: Person | undefined;
      try {
        person = await personOf(ctx, body.user.id, body.user.team_id ?? body.team?.id ?? '');
        if (!person.principal.isAdmin) throw notAdmin();
        const form = await act(person, action.value ?? '', args);
        if (form && body.view?.id)
          await args.client.views.update({ view_id: body.view.id, view: renderModal(form) });
      } catch (error) {
        await auditRefusal(ctx, person, error, `admin.${actionId}`, {
          type: 'admin',
          id: action.value ?? '',
        });
        await args.client.chat.postMessage({ channel: body.user.id, text: explain(ctx, error) });
      }
    });

  const running = async (kind?: 'assignment') =>
    (await ctx.activations.list({ statuses: OPEN_STATUSES, limit: 100 })).filter(
      (v) => !kind || v.activation.kind === kind,
    );

  adminButton(ACTION.adminRoles, async () => rolesPage(await listRoles(ctx.db)));
  adminButton(ACTION.adminEligibility, async () => eligibilityPage(await listEligibilities(ctx.db)));
  adminButton(ACTION.adminAssignments, async () =>
    activationsPage('Active assignments', await running('assignment'), true),
  );
  adminButton(ACTION.adminActivations, async () =>
    activationsPage('Running activations', await running(), false),
  );
  adminButton(ACTION.adminAudit, async () =>
    auditPage(await ctx.db.select().from(auditEvents).orderBy(desc(auditEvents.seq)).limit(25)),
  );
  adminButton(ACTION.adminDeliveries, async () => deliveriesPage(await listFailedNotifications(ctx.db)));
  adminButton(ACTION.adminAlerts, async () => alertsPage(await ctx.alerts.list()));
  adminButton(ACTION.adminReviews, async () => reviewsPage(await ctx.reviews.running()));
  adminButton(ACTION.adminAlertsScan, async (person) => {
    const outcome = await ctx.alerts.scan({ actor: person.actor });
    return alertsPage(await ctx.alerts.list(), scanText(outcome));
  });

  // An alert's action, on the admins' notice (a DM, or the one card in the alerts channel) or on
  // the alerts page. No admin pre-check here: the core refuses a non-admin and audits it
  // (alert.action_refused), so the refusal is audited once.
  for (const [actionId, op] of [
    [ACTION.alertRemoveEligibility, 'removeEligibility'],
    [ACTION.alertRevoke, 'revoke'],
  ] as const) {
    app.action<BlockAction<ButtonAction>>(actionId, async (args) => {
      await args.ack();
      const { body, action } = args;
      const alertId = action.value ?? '';
      let text: string;
      let card: Message | undefined;
      try {
        const person = await personOf(ctx, body.user.id, body.user.team_id ?? body.team?.id ?? '');
        card = alertCard(await ctx.alerts[op]({ actor: person.actor, alertId }));
        text = card.text;
      } catch (error) {
        text = explain(ctx, error);
      }
      if (body.view?.id) {
        // On the alerts page: the page shows what is still open; the outcome comes as a DM.
        if (card)
          await args.client.views.update({
            view_id: body.view.id,
            view: renderModal(alertsPage(await ctx.alerts.list())),
          });
        await args.client.chat.postMessage({ channel: body.user.id, text });
      } else if (body.response_url) {
        // On the notice: a success replaces it (no button left to click; in the alerts channel,
        // for everyone); a failure is for the clicker alone.
        await args.respond(
          card
            ? { replace_original: true, ...renderMessage(card) }
            : { response_type: 'ephemeral', replace_original: false, text },
        );
      } else {
        await args.client.chat.postMessage({ channel: body.user.id, text });
      }
    });
  }

  const push = async (args: ButtonArgs, form: Form) => {
    await args.client.views.push({ trigger_id: args.body.trigger_id, view: renderModal(form) });
    return undefined;
  };
  adminButton(ACTION.adminRoleCreate, (_p, _v, args) => push(args, roleForm(undefined, [])));
  adminButton(ACTION.adminRoleEdit, async (_p, name, args) => {
    const role = await getRoleByName(ctx.db, name);
    const { users, outside } = await approversInSlack(role.settings.approvers);
    return push(args, roleForm(role, users, outside));
  });
  adminButton(ACTION.adminRoleArchive, async (person, name) => {
    await ctx.admin.archiveRole(person.actor, name);
    return rolesPage(await listRoles(ctx.db));
  });
  adminButton(ACTION.adminEligibilityAssign, async (_p, _v, args) =>
    push(args, assignmentForm('adminEligibility', await listRoles(ctx.db))),
  );
  adminButton(ACTION.adminAssignmentCreate, async (_p, _v, args) =>
    push(args, assignmentForm('adminAssignment', await listRoles(ctx.db))),
  );
  adminButton(ACTION.adminReviewStart, async (_p, _v, args) =>
    push(args, reviewStartForm(await listRoles(ctx.db))),
  );
  adminButton(ACTION.adminEligibilityRemove, async (person, value) => {
    const [roleName = '', email = ''] = value.split(' ');
    await ctx.admin.removeEligibility(person.actor, { roleName, email });
    return eligibilityPage(await listEligibilities(ctx.db));
  });
  adminButton(ACTION.adminRevoke, async (person, id) => {
    await ctx.activations.revoke({ actor: person.actor, activationId: id });
    return activationsPage('Running activations', await running(), false);
  });

  /**
   * A role's approvers as Slack users for the picker (found by email and linked on the way, as
   * their cards would be), and the emails Slack does not know, which the picker cannot show.
   */
  async function approversInSlack(emails: string[]): Promise<{ users: string[]; outside: string[] }> {
    const found = await Promise.all(
      emails.map(async (email) => {
        const principal = await findPrincipalByEmail(ctx.db, email);
        const user = principal && (await ctx.identity.slackUserOf(principal).catch(() => undefined));
        return { email, user };
      }),
    );
    return {
      users: found.flatMap((f) => (f.user ? [f.user] : [])),
      outside: found.flatMap((f) => (f.user ? [] : [f.email])),
    };
  }

  /** Approvers with no Slack user linked: the picker could not show them, so a save keeps them. */
  async function approversOutsideSlack(emails: string[]): Promise<string[]> {
    const outside: string[] = [];
    for (const email of emails) {
      const principal = await findPrincipalByEmail(ctx.db, email);
      if (!principal || (await ctx.identity.linkedUsers([principal])).length === 0) outside.push(email);
    }
    return outside;
  }

  /** Slack user ids from a picker → emails, through the same identity check as everyone else. */
  async function emailsOf(users: string | undefined, teamId: string): Promise<string[]> {
    const ids = (users ?? '').split(',').filter(Boolean);
    return Promise.all(ids.map(async (id) => (await ctx.identity.principalOf(id, teamId)).email));
  }

  app.view(VIEW.adminRole, async (args) => {
    const { body, view } = args;
    const values = formValues(view.state);
    const teamId = body.user.team_id ?? body.team?.id ?? '';
    await submitForm(
      ctx,
      args,
      async (person) => {
        try {
          const settings = parseSettings(values.settings);
          const picked = await emailsOf(values.approvers, teamId);
          const name = view.private_metadata || (values.name ?? '').trim();
          // Editing: approvers the picker could not show stay (dropping them would hand the role's
          // approvals to whoever else is left, or to the admins, without anyone choosing that).
          const existing = view.private_metadata
            ? await getRoleByName(ctx.db, name).catch(() => undefined)
            : undefined;
          const kept = existing ? await approversOutsideSlack(existing.settings.approvers) : [];
          const approvers = [...new Set([...picked, ...kept])];
          await ctx.admin.saveRole(person.actor, {
            name,
            description: values.description,
            scope: values.scope,
            provider: parseYaml(values.provider, 'provider') as { type: string },
            settings: { ...settings, approvers },
          });
        } catch (error) {
          await auditRefusal(ctx, person, error, 'admin.role', { type: 'role', id: view.private_metadata });
          throw error;
        }
      },
      (error) => (error.message.includes('provider') ? BLOCK.provider : BLOCK.settings),
    );
  });

  /** The named reviewers picked, as emails; someone Slack shares no email for is a problem on the field. */
  async function reviewerEmails(users: string | undefined, teamId: string): Promise<string[]> {
    const found: string[] = [];
    for (const id of (users ?? '').split(',').filter(Boolean)) {
      const principal = await ctx.identity.principalOf(id, teamId).catch((error: unknown) => {
        if (!(error instanceof UnknownPerson)) throw error;
        throw invalid(
          `Slack shares no email for <@${id}>, and Elevate knows reviewers by email.`,
          'reviewers',
        );
      });
      found.push(principal.email);
    }
    return found;
  }

  // Start an access review: through the review service, as `elevate reviews start` (which audits
  // the start and tells the reviewers); a problem comes back on its field.
  app.view(VIEW.adminReview, async (args) => {
    const { body, view } = args;
    const values = formValues(view.state);
    const teamId = body.user.team_id ?? body.team?.id ?? '';
    await submitForm(
      ctx,
      args,
      async (person) => {
        try {
          if (!person.principal.isAdmin) throw notAdmin();
          const input = reviewInput(values, await reviewerEmails(values.reviewers, teamId));
          const started = await ctx.reviews.start(person.actor, input);
          const { items } = await ctx.reviews.get(started.id);
          await args.client.chat.postMessage({
            channel: person.userId,
            text: reviewStartedText(started, items.length),
          });
        } catch (error) {
          await auditRefusal(ctx, person, error, 'admin.review', { type: 'review', id: values.role ?? '' });
          throw error;
        }
      },
      (error) => (REVIEW_FIELDS.has(error.field ?? '') ? (error.field as string) : BLOCK.role),
    );
  });

  for (const [callbackId, op] of [
    [VIEW.adminEligibility, 'assignEligibility'],
    [VIEW.adminAssignment, 'assignActive'],
  ] as const) {
    app.view(callbackId, async (args) => {
      const { body, view } = args;
      const values = formValues(view.state);
      const teamId = body.user.team_id ?? body.team?.id ?? '';
      await submitForm(
        ctx,
        args,
        async (person) => {
          try {
            const [email] = await emailsOf(values.users, teamId);
            if (!email) throw invalid('Pick a person.', 'users');
            await ctx.admin[op](person.actor, {
              email,
              roleName: values.role ?? '',
              startAt: values.start ? new Date(Number(values.start) * 1000) : undefined,
              endAt: values.end ? new Date(Number(values.end) * 1000) : null,
              justification: values.justification,
            });
          } catch (error) {
            await auditRefusal(ctx, person, error, `admin.${op}`, {
              type: 'eligibility',
              id: values.role ?? '',
            });
            throw error;
          }
        },
        (error) =>
          error.field === 'end' || error.field === 'start' || error.field === 'users'
            ? error.field
            : BLOCK.role,
      );
    });
  }
}
