import { auditEvents } from '../../audit/audit.sql.ts';
import { desc } from '../../db/drizzle.ts';
import { OPEN_STATUSES } from '../../elevation/activation.sql.ts';
import { findPrincipalByEmail } from '../../elevation/principal-repository.ts';
import { getRoleByName, listEligibilities, listRoles } from '../../elevation/role-repository.ts';
import { ElevateError, forbidden, invalid } from '../../errors.ts';
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
  reviewStartForm,
  reviewsPage,
  roleForm,
  rolesPage,
  scanText,
} from '../admin-messages.ts';
import { auditRefusal } from '../answers.ts';
import type { Form } from '../messages.ts';
import { type DialogSubmitData, dialogMessage, dialogResponse, formDialog, renderForm } from './render.ts';
import { instant, type Person, type TeamsContext } from './teams-context.ts';

/** The refusal every non-admin gets in an admin dialog. */
export const notAdmin = () =>
  forbidden('The admin dialogs are for Elevate admins; ask one if you need a change.');

/** The core's alert action behind each alert button. */
export const ALERT_OPS = { alertRemoveEligibility: 'removeEligibility', alertRevoke: 'revoke' } as const;

const page = (form: Form) => dialogResponse(form.title, renderForm(form), 'large');

/** Opens the admin menu for admins; anyone else is refused politely, and the attempt audited. */
export async function adminDialog(ctx: TeamsContext, person: Person) {
  if (!person.principal.isAdmin) {
    const refusal = notAdmin();
    await auditRefusal(ctx, person, refusal, 'admin.open', { type: 'principal', id: person.principal.email });
    return dialogMessage(refusal.message);
  }
  return page(adminMenuForm());
}

/**
 * A button or a form submitted inside the admin dialog: checks the person is an admin (the core
 * checks again), acts, and answers with the next page. People are named by email in Teams.
 */
export async function adminSubmit(ctx: TeamsContext, person: Person, data: DialogSubmitData) {
  const action = String(data.action ?? '');
  const value = String(data.value ?? '');
  const what = action || String(data.form ?? '');
  try {
    if (!person.principal.isAdmin) throw notAdmin();
    const running = async (kind?: 'assignment') =>
      (await ctx.activations.list({ statuses: OPEN_STATUSES, limit: 100 })).filter(
        (v) => !kind || v.activation.kind === kind,
      );
    switch (action) {
      case 'adminRoles':
        return page(rolesPage(await listRoles(ctx.db)));
      case 'adminEligibility':
        return page(eligibilityPage(await listEligibilities(ctx.db)));
      case 'adminAssignments':
        return page(activationsPage('Active assignments', await running('assignment'), true));
      case 'adminActivations':
        return page(activationsPage('Running activations', await running(), false));
      case 'adminAudit':
        return page(
          auditPage(await ctx.db.select().from(auditEvents).orderBy(desc(auditEvents.seq)).limit(25)),
        );
      case 'adminDeliveries':
        return page(deliveriesPage(await listFailedNotifications(ctx.db)));
      case 'adminAlerts':
        return page(alertsPage(await ctx.alerts.list()));
      case 'adminReviews':
        return page(reviewsPage(await ctx.reviews.running()));
      case 'adminReviewStart':
        return formDialog(reviewStartForm(await listRoles(ctx.db)));
      case 'adminAlertsScan': {
        const outcome = await ctx.alerts.scan({ actor: person.actor });
        return page(alertsPage(await ctx.alerts.list(), scanText(outcome)));
      }
      case 'alertRemoveEligibility':
      case 'alertRevoke':
        await ctx.alerts[ALERT_OPS[action]]({ actor: person.actor, alertId: value });
        return page(alertsPage(await ctx.alerts.list()));
      case 'adminRoleCreate':
        return formDialog(roleForm(undefined, []));
      case 'adminRoleEdit': {
        const role = await getRoleByName(ctx.db, value);
        return formDialog(roleForm(role, role.settings.approvers));
      }
      case 'adminRoleArchive':
        await ctx.admin.archiveRole(person.actor, value);
        return page(rolesPage(await listRoles(ctx.db)));
      case 'adminEligibilityAssign':
        return formDialog(assignmentForm('adminEligibility', await listRoles(ctx.db)));
      case 'adminAssignmentCreate':
        return formDialog(assignmentForm('adminAssignment', await listRoles(ctx.db)));
      case 'adminEligibilityRemove': {
        const [roleName = '', email = ''] = value.split(' ');
        await ctx.admin.removeEligibility(person.actor, { roleName, email });
        return page(eligibilityPage(await listEligibilities(ctx.db)));
      }
      case 'adminRevoke':
        await ctx.activations.revoke({ actor: person.actor, activationId: value });
        return page(activationsPage('Running activations', await running(), false));
      case '':
        break;
      default:
        return dialogMessage('This button is not one Elevate knows.');
    }
    return await submitAdminForm(ctx, person, data);
  } catch (error) {
    await auditRefusal(ctx, person, error, `admin.${what}`, {
      type: 'admin',
      id: value || String(data.subject ?? ''),
    });
    throw error;
  }
}

const text = (data: DialogSubmitData, name: string) =>
  typeof data[name] === 'string' ? (data[name] as string) : undefined;

/** Emails typed into a people field, comma- or space-separated. */
const emails = (value: string | undefined) =>
  (value ?? '')
    .split(/[\s,;]+/)
    .map((e) => e.trim())
    .filter(Boolean);

async function submitAdminForm(ctx: TeamsContext, person: Person, data: DialogSubmitData) {
  const form = String(data.form ?? '');
  const subject = String(data.subject ?? '');
  const again = (shown: Form, error: unknown) => {
    if (!(error instanceof ElevateError) || error.code === 'forbidden') throw error;
    const field =
      error.field && shown.inputs.some((i) => i.name === error.field)
        ? error.field
        : form === 'adminRole'
          ? error.message.includes('provider')
            ? 'provider'
            : 'settings'
          : undefined;
    return formDialog(shown, {
      values: data,
      ...(field ? { errors: { [field]: error.message } } : { notice: error.message }),
    });
  };
  if (form === 'adminRole') {
    const existing = subject ? await getRoleByName(ctx.db, subject).catch(() => undefined) : undefined;
    try {
      await ctx.admin.saveRole(person.actor, {
        name: subject || (text(data, 'name') ?? '').trim(),
        description: text(data, 'description'),
        scope: text(data, 'scope'),
        provider: parseYaml(text(data, 'provider'), 'provider') as { type: string },
        settings: { ...parseSettings(text(data, 'settings')), approvers: emails(text(data, 'approvers')) },
      });
    } catch (error) {
      return again(roleForm(existing, existing?.settings.approvers ?? []), error);
    }
    return page(rolesPage(await listRoles(ctx.db)));
  }
  if (form === 'adminEligibility' || form === 'adminAssignment') {
    const roles = await listRoles(ctx.db);
    try {
      const [email] = emails(text(data, 'users'));
      if (!email) throw invalid('Name a person by email.', 'users');
      const op = form === 'adminEligibility' ? 'assignEligibility' : 'assignActive';
      await ctx.admin[op](person.actor, {
        email,
        roleName: text(data, 'role') ?? '',
        startAt: instant(data, 'start'),
        endAt: instant(data, 'end') ?? null,
        justification: text(data, 'justification'),
      });
    } catch (error) {
      return again(assignmentForm(form, roles), error);
    }
    return form === 'adminEligibility'
      ? page(eligibilityPage(await listEligibilities(ctx.db)))
      : page(
          activationsPage(
            'Active assignments',
            (await ctx.activations.list({ statuses: OPEN_STATUSES, limit: 100 })).filter(
              (v) => v.activation.kind === 'assignment',
            ),
            true,
          ),
        );
  }
  if (form === 'adminReview') {
    // Through the review service, as `elevate reviews start`: audited, the reviewers told.
    try {
      const input = reviewInput(
        {
          role: text(data, 'role'),
          reviewerMode: text(data, 'reviewerMode'),
          duration: text(data, 'duration'),
          recurrence: text(data, 'recurrence'),
          unreviewed: text(data, 'unreviewed'),
        },
        emails(text(data, 'reviewers')),
      );
      if (input.reviewers === 'named') await knownReviewers(ctx, input.reviewerEmails ?? []);
      await ctx.reviews.start(person.actor, input);
    } catch (error) {
      return again(reviewStartForm(await listRoles(ctx.db)), error);
    }
    return page(reviewsPage(await ctx.reviews.running()));
  }
  return dialogMessage('This form is not one Elevate knows.');
}

/**
 * Named reviewers typed as emails must be people Elevate knows (from Teams, a team's roster, or
 * the policy file): a typo would leave members with a reviewer nobody can reach.
 */
async function knownReviewers(ctx: TeamsContext, reviewerEmails: string[]): Promise<void> {
  for (const email of reviewerEmails) {
    if (!(await findPrincipalByEmail(ctx.db, email)))
      throw invalid(
        `Elevate does not know ${email}: check the spelling, or have them write to Elevate once.`,
        'reviewers',
      );
  }
}
