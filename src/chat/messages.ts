import type { ActivationView } from '../elevation/activation-repository.ts';
import type { Access } from '../elevation/activation-service.ts';
import { ALERT_KINDS } from '../elevation/alert.sql.ts';
import type { AlertView } from '../elevation/alert-repository.ts';
import { ALERT_ACTIONS, ALERT_TITLES, alertSummary } from '../elevation/alert-service.ts';
import { formatDuration, MINUTE_MS } from '../elevation/duration.ts';
import type { Role } from '../elevation/role-repository.ts';
import type { StepUpLink } from '../elevation/step-up-service.ts';

/**
 * Platform-neutral messages: what Elevate says and which buttons and fields it offers, built
 * from core data. Each chat platform renders them (Slack: slack/render.ts); no platform type here.
 */

/** A button; `name` is a neutral action that each platform maps to its own id. */
export interface Action {
  name: ActionName;
  label: string;
  value: string;
  style?: 'primary' | 'danger';
}

export type ActionName =
  | 'activate'
  | 'extend'
  | 'deactivate'
  | 'cancel'
  | 'approve'
  | 'approveWithComment'
  | 'deny'
  | 'adminRoles'
  | 'adminEligibility'
  | 'adminAssignments'
  | 'adminActivations'
  | 'adminAudit'
  | 'adminDeliveries'
  | 'adminRoleCreate'
  | 'adminRoleEdit'
  | 'adminRoleArchive'
  | 'adminEligibilityAssign'
  | 'adminEligibilityRemove'
  | 'adminAssignmentCreate'
  | 'adminRevoke'
  | 'adminAlerts'
  | 'adminAlertsScan'
  | 'alertRemoveEligibility'
  | 'alertRevoke'
  | 'reviewKeep'
  | 'reviewRemove'
  | 'adminReviews'
  | 'adminReviewStart';

/** One piece of a message. Text may use `*bold*`; platforms translate it. */
export type Block =
  | { type: 'header'; text: string }
  | { type: 'text'; text: string; actions?: Action[] }
  | { type: 'fields'; fields: [label: string, value: string][] }
  | { type: 'context'; text: string }
  | { type: 'divider' }
  | { type: 'actions'; actions: Action[] }
  /** A button that opens `url` in the browser (no click comes back to the bot). */
  | { type: 'link'; label: string; url: string };

/** A message: `text` is the one-line summary (notifications, screen readers). */
export interface Message {
  text: string;
  blocks: Block[];
}

export type InputName =
  | 'role'
  | 'duration'
  | 'start'
  | 'justification'
  | 'ticketSystem'
  | 'ticketNumber'
  | 'comment'
  | 'name'
  | 'description'
  | 'scope'
  | 'provider'
  | 'settings'
  | 'approvers'
  | 'users'
  | 'end'
  | 'reviewerMode'
  | 'reviewers'
  | 'recurrence'
  | 'unreviewed';

/** A form field; `users` holds chat user ids of the platform (pickers), filled in by the surface. */
export interface Input {
  name: InputName;
  label: string;
  hint?: string;
  optional?: boolean;
  element:
    | { type: 'text'; multiline?: boolean; initial?: string; maxLength?: number; placeholder?: string }
    /** `multi`: several may be picked; they come back comma-separated. */
    | { type: 'select'; options: { label: string; value: string }[]; initial?: string; multi?: boolean }
    | { type: 'datetime'; initial?: Date }
    | { type: 'users'; multi: boolean; initial?: string[] };
}

export type FormName =
  | 'activate'
  | 'extend'
  | 'approve'
  | 'deny'
  | 'admin'
  | 'adminRole'
  | 'adminEligibility'
  | 'adminAssignment'
  | 'reviewKeep'
  | 'reviewRemove'
  | 'adminReview';

/** A dialog: a modal in Slack, a dialog in Teams. `subject` comes back on submit. */
export interface Form {
  name: FormName;
  title: string;
  /** No submit label: an information-only dialog. */
  submit?: string;
  subject: string;
  blocks: Block[];
  inputs: Input[];
}

// ---- formatting ----

/**
 * How a platform writes a command for people to type: `/elevate help` in Slack, `help` in Teams.
 * `words` is empty for the bare command (the board).
 */
export type CommandStyle = (words: string) => string;

/** Slack's slash command. */
export const slashCommand: CommandStyle = (words) => (words ? `/elevate ${words}` : '/elevate');

/** An instant as people read it in chat: `2026-06-01 09:00 UTC`. */
export const when = (date: Date) => `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** Time from now until `date`, rounded up to the minute: `1h20m`. */
export const timeLeft = (date: Date, now: Date) =>
  formatDuration(Math.max(0, Math.ceil((date.getTime() - now.getTime()) / MINUTE_MS)));

const statusWords: Record<string, string> = {
  pending_approval: 'waiting for approval',
  approved: 'scheduled',
  activating: 'being granted',
  active: 'active',
  revoking: 'being revoked',
  ended: 'ended',
  cancelled: 'cancelled',
  denied: 'denied',
  timed_out: 'timed out',
  failed: 'failed',
};

/** A status in words. */
export const statusText = (status: string) => statusWords[status] ?? status.replace('_', ' ');

const roleLine = (role: Role) =>
  `*${role.name}*${role.scope ? ` (${role.scope})` : ''}${role.description ? ` — ${role.description}` : ''}`;

// ---- the requester's board and help ----

/** The requester's roles: active and scheduled, pending, then eligible ones with Activate. */
export function boardMessage(access: Access, now: Date, command: CommandStyle = slashCommand): Message {
  const blocks: Block[] = [{ type: 'header', text: 'Your roles' }];
  const open = new Set([...access.active, ...access.pending].map((v) => v.role.id));
  for (const view of access.active) {
    const a = view.activation;
    const actions: Action[] = [];
    let text = `${roleLine(view.role)}\n${statusText(a.status)}`;
    if (a.status === 'active' && a.endAt) {
      text = `${roleLine(view.role)}\nactive until ${when(a.endAt)} (${timeLeft(a.endAt, now)} left)`;
      if (view.role.settings.allowExtension && a.kind === 'activation')
        actions.push({ name: 'extend', label: 'Extend', value: a.id });
      if (a.kind === 'activation')
        actions.push({ name: 'deactivate', label: 'Deactivate', value: a.id, style: 'danger' });
    } else if (a.status === 'approved') {
      text = `${roleLine(view.role)}\nscheduled to start at ${when(a.startAt)}`;
      if (a.kind === 'activation') actions.push({ name: 'cancel', label: 'Cancel', value: a.id });
    }
    blocks.push({ type: 'text', text, actions });
  }
  for (const view of access.pending) {
    const a = view.activation;
    const what = a.kind === 'extension' ? 'extension' : 'request';
    blocks.push({
      type: 'text',
      text: `${roleLine(view.role)}\n${what} waiting for approval since ${when(a.createdAt)}`,
      actions: [{ name: 'cancel', label: 'Cancel', value: a.id }],
    });
  }
  const eligible = access.eligible.filter((e) => !open.has(e.role.id));
  if (eligible.length > 0) {
    blocks.push({ type: 'divider' });
    for (const { role, eligibleUntil } of eligible) {
      blocks.push({
        type: 'text',
        text: `${roleLine(role)}\n${eligibleUntil ? `eligible until ${when(eligibleUntil)}` : 'eligible'}`,
        actions: [{ name: 'activate', label: 'Activate', value: role.name, style: 'primary' }],
      });
    }
  }
  if (blocks.length === 1) {
    blocks.push({ type: 'text', text: 'You are not eligible for any role yet. Ask an Elevate admin.' });
  }
  blocks.push({ type: 'context', text: `Type \`${command('help')}\` for the commands.` });
  const summary = `${access.active.length} active, ${access.pending.length} pending, ${eligible.length} to activate`;
  return { text: `Your roles: ${summary}`, blocks };
}

/** The commands, with a suggestion first when the input was not understood. */
export function helpMessage(problem?: string, command: CommandStyle = slashCommand): Message {
  const lines = [
    `\`${command('')}\` — your roles: activate, extend, deactivate, cancel`,
    `\`${command('activate <role> [duration] [reason…]')}\` — request a role, e.g. \`${command('activate db-admin 1h fix the index')}\``,
    `\`${command('status')}\` — your roles, as above`,
    `\`${command('approvals')}\` — requests waiting for your decision`,
    `\`${command('admin')}\` — roles, eligibility, assignments, access reviews, audit (admins)`,
    `\`${command('help')}\` — this help`,
    'Roles that require MFA send you to *Verify your identity*: sign in again with your identity provider, and the request or decision goes through.',
  ];
  return {
    text: problem ?? 'Elevate commands',
    blocks: [
      ...(problem ? [{ type: 'text' as const, text: problem }] : []),
      { type: 'text', text: lines.join('\n') },
    ],
  };
}

/**
 * The answer when an action waits for a step-up (the core's StepUpNeeded): why, and a
 * *Verify your identity* link button to the one-time URL. The chat card updates once it is done.
 */
export function stepUpMessage(link: StepUpLink): Message {
  const what =
    link.purpose.kind === 'activation'
      ? `Your request for *${link.purpose.roleName}* needs`
      : `${link.purpose.verdict === 'approve' ? 'Approving' : 'Denying'} this request needs`;
  const text = `${what} a fresh sign-in with MFA. The link works once, until ${when(link.expiresAt)}.`;
  return {
    text: `${text.replace(/\*/g, '')} ${link.url}`,
    blocks: [
      { type: 'text', text },
      { type: 'link', label: 'Verify your identity', url: link.url },
    ],
  };
}

/** What the requester reads right after a request (the fast path, or the form submitted). */
export function requestedText(role: string, status: string): string {
  if (status === 'pending_approval')
    return `Requested ${role}; the approvers are asked. You will hear back here.`;
  if (status === 'active') return `${role} is active. You will get a message with Extend and Deactivate.`;
  if (status === 'approved') return `${role} is scheduled; it starts at the time you chose.`;
  return `${role}: ${status.replace('_', ' ')}.`;
}

/** A one-line answer. */
export const plainMessage = (text: string): Message => ({ text, blocks: [{ type: 'text', text }] });

// ---- the activation and extension forms ----

const STANDARD_DURATIONS = [5, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 10080];

/** Duration choices inside [min, max], always offering min, max and the default. */
export function durationChoices(min: number, max: number, also: number[] = []): number[] {
  const all = new Set([min, max, ...also, ...STANDARD_DURATIONS]);
  return [...all].filter((m) => m >= min && m <= max).sort((a, b) => a - b);
}

/** What the fast path or the board already knows when the form opens. */
export interface ActivationPrefill {
  durationMinutes?: number;
  justification?: string;
  /** Why the fast path could not go straight to the request, shown on top of the form. */
  problem?: string;
}

/** The activation form for one role, its fields and choices bounded by the role's settings. */
export function activationForm(role: Role, prefill: ActivationPrefill = {}): Form {
  const s = role.settings;
  const preferred = prefill.durationMinutes ?? s.defaultDuration;
  const initial = preferred >= s.minDuration && preferred <= s.maxDuration ? preferred : s.defaultDuration;
  const inputs: Input[] = [
    {
      name: 'duration',
      label: 'Duration',
      element: {
        type: 'select',
        options: durationChoices(s.minDuration, s.maxDuration, [s.defaultDuration, initial]).map((m) => ({
          label: formatDuration(m),
          value: String(m),
        })),
        initial: String(initial),
      },
    },
  ];
  if (s.allowCustomStart) {
    inputs.push({
      name: 'start',
      label: 'Start',
      hint: 'Leave empty to start now; at most 14 days ahead.',
      optional: true,
      element: { type: 'datetime' },
    });
  }
  inputs.push({
    name: 'justification',
    label: 'Justification',
    hint: s.requireJustification ? 'Why you need it (1–500 characters).' : 'Why you need it (optional).',
    optional: !s.requireJustification,
    element: { type: 'text', multiline: true, maxLength: 500, initial: prefill.justification },
  });
  if (s.requireTicket) {
    if (!s.ticketSystem) {
      inputs.push({
        name: 'ticketSystem',
        label: 'Ticket system',
        element: { type: 'text', maxLength: 100 },
      });
    }
    inputs.push({
      name: 'ticketNumber',
      label: s.ticketSystem ? `${s.ticketSystem} ticket` : 'Ticket number',
      hint: s.ticketPattern ? `Must match ${s.ticketPattern}` : undefined,
      element: { type: 'text', maxLength: 100 },
    });
  }
  const notes = [
    role.scope ? `Scope: ${role.scope}` : '',
    s.requireApproval ? 'Needs approval.' : 'Starts without approval.',
  ].filter(Boolean);
  return {
    name: 'activate',
    title: 'Activate a role',
    submit: 'Request',
    subject: role.name,
    blocks: [
      { type: 'text', text: roleLine(role) },
      { type: 'context', text: notes.join(' ') },
      ...(prefill.problem ? [{ type: 'text' as const, text: `:warning: ${prefill.problem}` }] : []),
    ],
    inputs,
  };
}

/** The extension form: more time, bounded by the role's maximum from now. */
export function extensionForm(view: ActivationView, now: Date): Form {
  const s = view.role.settings;
  const end = view.activation.endAt ?? now;
  const room = s.maxDuration - Math.ceil((end.getTime() - now.getTime()) / MINUTE_MS);
  const choices = durationChoices(Math.min(s.minDuration, Math.max(room, 1)), Math.max(room, 1), [30, 60]);
  return {
    name: 'extend',
    title: 'Extend',
    submit: 'Extend',
    subject: view.activation.id,
    blocks: [
      {
        type: 'text',
        text: `${roleLine(view.role)}\nactive until ${when(end)} (${timeLeft(end, now)} left)`,
      },
    ],
    inputs: [
      {
        name: 'duration',
        label: 'More time',
        element: {
          type: 'select',
          options: choices.map((m) => ({ label: formatDuration(m), value: String(m) })),
          initial: String(choices.includes(60) ? 60 : choices[0]),
        },
      },
      {
        name: 'justification',
        label: 'Justification',
        optional: !s.requireJustification,
        element: { type: 'text', multiline: true, maxLength: 500 },
      },
    ],
  };
}

// ---- approvers ----

/** A decision on a request, as the card shows it. */
export interface DecisionLine {
  verdict: 'approve' | 'deny';
  approverEmail: string;
  decidedAt: Date;
  comment: string;
}

/** The approver card: the request, the requester's recent history, and Approve/Deny or the outcome. */
export function approvalCard(
  view: ActivationView,
  history: ActivationView[],
  decided: DecisionLine[],
): Message {
  const a = view.activation;
  const extension = a.kind === 'extension';
  const fields: [string, string][] = [
    ['Requester', view.principal.email],
    ['Role', view.role.name],
    ['Scope', view.role.scope || '—'],
    [extension ? 'More time' : 'Duration', a.durationMinutes ? formatDuration(a.durationMinutes) : '—'],
    [extension ? 'New end' : 'Start', extension && a.endAt ? when(a.endAt) : when(a.startAt)],
    ['Ticket', a.ticketNumber ? `${a.ticketSystem ?? ''} ${a.ticketNumber}`.trim() : '—'],
  ];
  const past = history.filter((h) => h.activation.id !== a.id && h.activation.kind !== 'extension');
  const historyText =
    past.length === 0
      ? `No activations of ${view.role.name} in the last 30 days.`
      : `${past.length} activation(s) of ${view.role.name} in the last 30 days: ${past
          .slice(0, 5)
          .map((h) => `${when(h.activation.createdAt)} ${statusText(h.activation.status)}`)
          .join('; ')}`;
  const blocks: Block[] = [
    { type: 'header', text: extension ? 'Extension request' : 'Access request' },
    { type: 'fields', fields },
    { type: 'text', text: `*Justification*\n${a.justification || '—'}` },
    { type: 'context', text: historyText },
  ];
  const outcome = outcomeText(view, decided);
  if (outcome) blocks.push({ type: 'text', text: outcome });
  else {
    const approvals = decided.filter((d) => d.verdict === 'approve');
    if (approvals.length > 0) {
      blocks.push({
        type: 'context',
        text: `Approved so far by ${approvals.map((d) => d.approverEmail).join(', ')}; needs ${a.approvalsRequired}.`,
      });
    }
    blocks.push({
      type: 'actions',
      actions: [
        { name: 'approve', label: 'Approve', value: a.id, style: 'primary' },
        { name: 'approveWithComment', label: 'Approve with comment', value: a.id },
        { name: 'deny', label: 'Deny', value: a.id, style: 'danger' },
      ],
    });
  }
  const verb = outcome ? outcome.replace(/\*/g, '') : 'waiting for your decision';
  return { text: `${view.principal.email} asks for ${view.role.name}: ${verb}`, blocks };
}

/** The outcome of a request that is no longer pending, or undefined while it waits. */
function outcomeText(view: ActivationView, decided: DecisionLine[]): string | undefined {
  const a = view.activation;
  if (a.status === 'pending_approval') return undefined;
  if (a.status === 'cancelled')
    return `*Cancelled* at ${when(a.endedAt ?? a.updatedAt)}${a.endReason ? ` (${a.endReason})` : ''}`;
  if (a.status === 'timed_out') return `*Timed out* at ${when(a.endedAt ?? a.updatedAt)} without a decision`;
  const verdict = a.status === 'denied' ? 'deny' : 'approve';
  const by = decided.filter((d) => d.verdict === verdict);
  const names = by.map((d) => d.approverEmail).join(' and ') || 'an admin';
  const at = when(by[0]?.decidedAt ?? a.updatedAt);
  const comments = by.filter((d) => d.comment).map((d) => `“${d.comment}”`);
  if (verdict === 'deny')
    return `*Denied* by ${names} at ${at}: ${comments.join(' ') || a.endReason || ''}`.trim();
  return `*Approved* by ${names} at ${at}${comments.length ? `: ${comments.join(' ')}` : ''}`;
}

/** Approve with a comment, or deny with a reason. */
export function decisionForm(verdict: 'approve' | 'deny', view: ActivationView): Form {
  const deny = verdict === 'deny';
  return {
    name: verdict,
    title: deny ? 'Deny request' : 'Approve request',
    submit: deny ? 'Deny' : 'Approve',
    subject: view.activation.id,
    blocks: [{ type: 'text', text: `${view.principal.email} asks for *${view.role.name}*.` }],
    inputs: [
      {
        name: 'comment',
        label: deny ? 'Reason' : 'Comment',
        hint: deny ? 'The requester will read it.' : undefined,
        optional: !deny,
        element: { type: 'text', multiline: true, maxLength: 500 },
      },
    ],
  };
}

/** Requests waiting for a principal's decision, one card each. */
export function approvalsMessage(waiting: ActivationView[]): Message {
  if (waiting.length === 0) return plainMessage('No requests are waiting for your decision.');
  const blocks: Block[] = [{ type: 'header', text: 'Waiting for your decision' }];
  for (const view of waiting) {
    const a = view.activation;
    blocks.push({
      type: 'text',
      text: `*${view.principal.email}* asks for *${view.role.name}*${a.durationMinutes ? ` for ${formatDuration(a.durationMinutes)}` : ''}: ${a.justification || '—'}`,
      actions: [
        { name: 'approve', label: 'Approve', value: a.id, style: 'primary' },
        { name: 'deny', label: 'Deny', value: a.id, style: 'danger' },
      ],
    });
  }
  return { text: `${waiting.length} request(s) waiting for your decision`, blocks };
}

// ---- requester and admin notifications ----

/**
 * The message for one outbox row sent to its recipient (not the approver card), from the
 * activation as it is now and the row's data. Unknown kinds get a plain line.
 */
export function notificationMessage(
  kind: string,
  data: Record<string, unknown>,
  view: ActivationView | undefined,
  now: Date,
  command: CommandStyle = slashCommand,
): Message {
  const role = String(data.role ?? view?.role.name ?? 'a role');
  const a = view?.activation;
  const reason = typeof data.reason === 'string' ? data.reason : (a?.endReason ?? '');
  const error = typeof data.error === 'string' ? data.error : (a?.lastError ?? '');
  const cancel = a && a.status === 'pending_approval' ? [cancelAction(a.id)] : [];
  switch (kind) {
    case 'activation_submitted':
      return withActions(`Your request for *${role}* is waiting for approval.`, cancel);
    case 'extension_submitted':
      return withActions(`Your extension of *${role}* is waiting for approval.`, cancel);
    case 'activation_approved':
      if (a?.status === 'approved') {
        return withActions(
          `Your request for *${role}* is approved; it starts at ${when(a.startAt)}.${approverNote(data)}`,
          [cancelAction(a.id)],
        );
      }
      return plainMessage(`Your request for *${role}* is approved; granting it now.${approverNote(data)}`);
    case 'extension_approved':
      return plainMessage(
        `Your extension of *${role}* is approved${a?.endAt ? `; it now ends at ${when(a.endAt)}` : ''}.${approverNote(data)}`,
      );
    case 'activation_active':
    case 'activation_extended':
    case 'assignment_created': {
      const verb = kind === 'activation_extended' ? 'is extended' : 'is active';
      if (a?.status !== 'active') return plainMessage(`Your *${role}* ${verb}.`);
      const text = `Your *${role}* ${verb} until ${a.endAt ? `${when(a.endAt)} (${timeLeft(a.endAt, now)} left)` : 'further notice'}.`;
      const actions: Action[] = [];
      if (a.kind === 'activation' && view?.role.settings.allowExtension)
        actions.push({ name: 'extend', label: 'Extend', value: a.id });
      if (a.kind === 'activation')
        actions.push({ name: 'deactivate', label: 'Deactivate', value: a.id, style: 'danger' });
      return withActions(text, actions);
    }
    case 'expiry_warning': {
      const text = `Your *${role}* ends at ${a?.endAt ? `${when(a.endAt)} (${timeLeft(a.endAt, now)} left)` : 'soon'}.`;
      const actions: Action[] =
        a?.status === 'active' && view?.role.settings.allowExtension
          ? [{ name: 'extend', label: 'Extend', value: a.id }]
          : [];
      return withActions(text, actions);
    }
    case 'eligibility_expiring':
      return plainMessage(
        `Your eligibility for *${role}* ends at ${typeof data.endAt === 'string' ? when(new Date(data.endAt)) : 'soon'}; ask an admin to renew it if you still need it.`,
      );
    case 'eligibility_expired':
      return plainMessage(`Your eligibility for *${role}* has ended.`);
    case 'activation_denied':
    case 'extension_denied':
      return plainMessage(
        `Your ${kind === 'extension_denied' ? 'extension' : 'request'} for *${role}* was denied${reason ? `: ${reason}` : '.'}`,
      );
    case 'activation_timed_out':
    case 'extension_timed_out':
      return plainMessage(`Your request for *${role}* timed out: no approver decided in time.`);
    case 'activation_failed':
      return plainMessage(
        `*${role}* could not be granted: ${error || 'the target system refused'}. The admins are told.`,
      );
    case 'activation_ended':
      return plainMessage(`Your *${role}* has ended${reason ? ` (${reason})` : ''}.`);
    case 'eligibility_assigned':
      return plainMessage(
        `You are now eligible for *${role}*. Type \`${command('')}\` to activate it when you need it.`,
      );
    case 'eligibility_removed':
      if (typeof data.reviewId === 'string') {
        // Removed by an access review: the member is told why and by whom.
        const by = data.decidedBy === 'system' ? 'the review default' : String(data.decidedBy);
        return plainMessage(
          `You are no longer eligible for *${role}*: an access review removed it (decided by ${by}: “${String(data.reason ?? '')}”).`,
        );
      }
      return plainMessage(`You are no longer eligible for *${role}*.`);
    case 'review_requested':
    case 'review_reminder':
      return reviewRequest(kind, data);
    case 'review_finished':
      return reviewResults(data);
    case 'grant_failed':
      return plainMessage(
        `Admin alert: granting *${role}*${view ? ` to ${view.principal.email}` : ''} failed: ${error}`,
      );
    case 'revoke_failing': {
      // One notice for a batch whose revokes failed alike: the first activation and how many more.
      const others = typeof data.others === 'number' ? data.others : 0;
      const more = others > 0 ? ` and ${others} other${others === 1 ? '' : 's'}` : '';
      return plainMessage(
        `Admin alert: revoking *${role}*${view ? ` from ${view.principal.email}${more}` : ''} keeps failing: ${error}. Elevate retries.`,
      );
    }
    case 'extend_failed':
      return plainMessage(
        `Admin alert: the target system did not take the new end of *${role}*${view ? ` for ${view.principal.email}` : ''}: ${error}`,
      );
    case 'extension_failed': {
      const end = typeof data.endAt === 'string' ? ` It still ends at ${when(new Date(data.endAt))}.` : '';
      return plainMessage(
        `Your extension of *${role}* could not be applied in the target system: ${error || 'it refused'}.${end} The admins are told.`,
      );
    }
    case 'alert_raised':
      return alertNotice(data);
    case 'unmanaged_grant':
      return plainMessage(
        `Admin alert: *${String(data.account)}* holds *${role}* in the target system with no activation in Elevate behind it${data.revoking ? '; Elevate revokes it, as the role says' : ''}.`,
      );
    case 'unmanaged_grant_revoke_failed':
      return plainMessage(
        `Admin alert: revoking *${role}* from *${String(data.account)}* (held outside Elevate) failed: ${error}`,
      );
    default:
      return plainMessage(`${role}: ${kind.replaceAll('_', ' ')}`);
  }
}

/**
 * An alert as one line for admins: its name in bold, then what was found. The chat surfaces add
 * its action (value: the alert id) where ALERT_ACTIONS names one.
 */
export function alertLine(alert: Pick<AlertView, 'kind' | 'role' | 'subject' | 'details'>): string {
  return `*${ALERT_TITLES[alert.kind]}*: ${alertSummary(alert)}`;
}

/** The admin notice of a newly raised alert (outbox kind `alert_raised`, data from raiseAlerts). */
export function alertNotice(data: Record<string, unknown>): Message {
  const kind = ALERT_KINDS.find((k) => k === data.kind);
  if (!kind) return plainMessage(`Admin alert: ${String(data.kind)} on ${String(data.role)}`);
  const details = (typeof data.details === 'object' && data.details ? data.details : {}) as Record<
    string,
    unknown
  >;
  const subject = typeof data.subject === 'string' ? data.subject : '';
  return withActions(
    `Admin alert: ${alertLine({ kind, role: String(data.role), subject, details })}`,
    alertActions({ id: String(data.alertId ?? ''), kind }),
  );
}

/**
 * An alert's card as it is now, wherever it is posted (the admin channel, an admin's DM): open,
 * with its action; resolved, with who resolved it, when and how, and no button left.
 */
export function alertCard(alert: AlertView): Message {
  if (!alert.resolvedAt) return withActions(`Admin alert: ${alertLine(alert)}`, alertActions(alert));
  const by = !alert.resolvedBy || alert.resolvedBy === 'system' ? 'by itself' : `by ${alert.resolvedBy}`;
  const how = alert.resolution ? `: ${alert.resolution}` : '';
  return withActions(
    `Resolved alert: ${alertLine(alert)}\nResolved ${by} at ${when(alert.resolvedAt)}${how}.`,
    [],
  );
}

/** The button an alert offers (ALERT_ACTIONS; value: the alert id), none for the kinds that only go away. */
export function alertActions(alert: Pick<AlertView, 'id' | 'kind'>): Action[] {
  switch (ALERT_ACTIONS[alert.kind]) {
    case 'removeEligibility':
      return [
        { name: 'alertRemoveEligibility', label: 'Remove eligibility', value: alert.id, style: 'danger' },
      ];
    case 'revoke':
      return [{ name: 'alertRevoke', label: 'Revoke', value: alert.id, style: 'danger' }];
    default:
      return [];
  }
}

// Slack takes at most 50 blocks a message, and each item takes two (its facts, its buttons or outcome).
const REVIEW_ITEMS_SHOWN = 20;

/**
 * A review item as the notices carry it (review-service.ts ReviewItemView): undecided when sent,
 * with its decision once the notice is shown again after one.
 */
interface ReviewItemData {
  itemId: string;
  principal: string;
  role: string;
  lastActivatedAt: string | null;
  activations90d: number;
  decision?: string | null;
  decidedBy?: string | null;
  decidedAt?: string | null;
  justification?: string;
}

/**
 * The reviewer's notice (`review_requested`, and `review_reminder` with the items still waiting):
 * each member with their last activation and use in 90 days, and Keep / Remove (self-review:
 * Keep (justify) / I no longer need it), value: the item id. Each opens reviewForm. An item
 * decided since shows its outcome instead of the buttons (the notice is updated in place).
 */
export function reviewRequest(kind: string, data: Record<string, unknown>): Message {
  const items = (Array.isArray(data.items) ? data.items : []) as ReviewItemData[];
  const end = typeof data.endAt === 'string' ? when(new Date(data.endAt)) : 'soon';
  const self = data.self === true;
  const head =
    kind === 'review_reminder'
      ? `Reminder: the access review ends at ${end}; ${items.length} still wait for your decision.`
      : self
        ? `Access review: do you still need these roles? Keep with a justification, or say you no longer need them, by ${end}.`
        : `Access review: decide Keep or Remove, with a justification, for ${items.length} member(s) by ${end}.`;
  const unreviewed =
    data.unreviewed === 'remove'
      ? 'Anything not decided is removed at the end.'
      : 'Anything not decided is kept.';
  return {
    text: head.replace(/\*/g, ''),
    blocks: [
      { type: 'header', text: 'Access review' },
      { type: 'text', text: head },
      // Slack takes at most 50 blocks a message: a long list ends with how many more there are.
      ...items.slice(0, REVIEW_ITEMS_SHOWN).flatMap((i): Block[] => [
        {
          type: 'fields',
          fields: [
            ['Member', i.principal],
            ['Role', i.role],
            ['Last activated', i.lastActivatedAt ? when(new Date(i.lastActivatedAt)) : 'never'],
            ['Activations (90 days)', String(i.activations90d)],
          ],
        },
        i.decision
          ? { type: 'text', text: reviewOutcomeLine(i) }
          : { type: 'actions', actions: reviewActions(i.itemId, self) },
      ]),
      ...(items.length > REVIEW_ITEMS_SHOWN
        ? [{ type: 'context' as const, text: `…and ${items.length - REVIEW_ITEMS_SHOWN} more.` }]
        : []),
      { type: 'context', text: unreviewed },
    ],
  };
}

/** A decided item on the notice, instead of its buttons: what, by whom, when and why. */
export function reviewOutcomeLine(item: ReviewItemData): string {
  const at = item.decidedAt ? ` at ${when(new Date(item.decidedAt))}` : '';
  const why = item.justification ? `: “${item.justification}”` : '';
  const what = item.decision === 'keep' ? '*Kept*' : '*Remove* (at the end of the review)';
  return `${what} — decided by ${item.decidedBy ?? 'a reviewer'}${at}${why}`;
}

/** An item's two buttons; the member deciding on their own role hears it in their words. */
export function reviewActions(itemId: string, self: boolean): Action[] {
  return [
    { name: 'reviewKeep', label: self ? 'Keep (justify)' : 'Keep', value: itemId, style: 'primary' },
    { name: 'reviewRemove', label: self ? 'I no longer need it' : 'Remove', value: itemId, style: 'danger' },
  ];
}

/**
 * The justification form behind Keep / Remove (subject: the item id). `item` is the reviewer's
 * own waiting item (ReviewItemView fields), so the form names the member and the role.
 */
export function reviewForm(
  decision: 'keep' | 'remove',
  item: { itemId: string; principal: string; role: string },
  self: boolean,
): Form {
  const keep = decision === 'keep';
  const what = self ? `your *${item.role}*` : `${item.principal}'s *${item.role}*`;
  return {
    name: keep ? 'reviewKeep' : 'reviewRemove',
    title: keep ? 'Keep access' : 'Remove access',
    submit: keep ? 'Keep' : 'Remove',
    subject: item.itemId,
    blocks: [{ type: 'text', text: keep ? `Keep ${what}?` : `Remove ${what} at the end of the review?` }],
    inputs: [
      {
        name: 'justification',
        label: 'Justification',
        hint: 'Required; the review records it.',
        element: { type: 'text', multiline: true, maxLength: 500 },
      },
    ],
  };
}

/** What the reviewer is told once their decision counts. */
export function reviewDecidedText(item: {
  principal: string;
  role: string;
  decision: string | null;
}): string {
  return item.decision === 'keep'
    ? `Recorded: keep ${item.principal}'s ${item.role}.`
    : `Recorded: remove ${item.principal}'s ${item.role} when the review ends.`;
}

/** The admins' notice when a campaign ends (`review_finished`): what was kept and removed. */
export function reviewResults(data: Record<string, unknown>): Message {
  const removed = Array.isArray(data.removed) ? (data.removed as string[]) : [];
  const roles = Array.isArray(data.roles) ? (data.roles as string[]).join(', ') : '';
  const text = `Access review of *${roles}* finished: ${String(data.kept)} kept, ${removed.length} removed, ${String(data.unreviewed)} not reviewed.`;
  const lines = [
    text,
    ...(removed.length > 0 ? [`Removed: ${removed.join('; ')}`] : []),
    ...(typeof data.nextStartAt === 'string'
      ? [`The next review starts at ${when(new Date(data.nextStartAt))}.`]
      : []),
    `Export: \`elevate reviews export ${String(data.reviewId)} --format csv\``,
  ];
  return plainMessage(lines.join('\n'));
}

const cancelAction = (id: string): Action => ({ name: 'cancel', label: 'Cancel', value: id });

/** The approver's comment (Approve with comment), for the requester to read; empty without one. */
const approverNote = (data: Record<string, unknown>) =>
  typeof data.comment === 'string' && data.comment.trim()
    ? ` The approver wrote: “${data.comment.trim()}”`
    : '';

function withActions(text: string, actions: Action[]): Message {
  return { text: text.replace(/\*/g, ''), blocks: [{ type: 'text', text, actions }] };
}
