import type { ActivationView } from '../elevation/activation-repository.ts';
import type { AlertView } from '../elevation/alert-repository.ts';
import type { ScanOutcome } from '../elevation/alert-service.ts';
import { formatDuration } from '../elevation/duration.ts';
import type { Review } from '../elevation/review-service.ts';
import type { Role } from '../elevation/role-repository.ts';
import { DURATION_SETTINGS } from '../elevation/role-settings.ts';
import { alertActions, alertLine, type Block, type Form, statusText, when } from './messages.ts';

/** An admin list or form shown in the admin dialog. */
const page = (title: string, blocks: Block[]): Form => ({
  name: 'admin',
  title,
  subject: '',
  blocks,
  inputs: [],
});

/** The admin menu: one button per admin area. */
export function adminMenuForm(): Form {
  return page('Elevate admin', [
    { type: 'text', text: 'What would you like to manage?' },
    {
      type: 'actions',
      actions: [
        { name: 'adminRoles', label: 'Roles', value: 'roles' },
        { name: 'adminEligibility', label: 'Eligibility', value: 'eligibility' },
        { name: 'adminAssignments', label: 'Active assignments', value: 'assignments' },
        { name: 'adminActivations', label: 'Running activations', value: 'activations' },
        { name: 'adminAudit', label: 'Audit events', value: 'audit' },
        { name: 'adminDeliveries', label: 'Failed deliveries', value: 'deliveries' },
        { name: 'adminAlerts', label: 'Alerts', value: 'alerts' },
        { name: 'adminReviews', label: 'Access reviews', value: 'reviews' },
      ],
    },
  ]);
}

/** Roles with Edit, and New role. */
export function rolesPage(roles: Role[]): Form {
  return page('Roles', [
    {
      type: 'actions',
      actions: [{ name: 'adminRoleCreate', label: 'New role', value: 'new', style: 'primary' }],
    },
    ...roles.map(
      (r): Block => ({
        type: 'text',
        text: `*${r.name}* (${r.providerType})${r.scope ? ` — ${r.scope}` : ''}\nmax ${formatDuration(r.settings.maxDuration)}, ${r.settings.requireApproval ? 'approval required' : 'no approval'}${r.settings.requireMfa ? ', MFA to activate' : ''}${r.settings.requireMfaToApprove ? ', MFA to approve' : ''}`,
        actions: [
          { name: 'adminRoleEdit', label: 'Edit', value: r.name },
          { name: 'adminRoleArchive', label: 'Archive', value: r.name, style: 'danger' },
        ],
      }),
    ),
  ]);
}

/**
 * The role form: every setting, durations written as `8h`; approvers with a user picker, and
 * named (`otherApprovers`, kept on save) when the chat platform does not know them.
 */
export function roleForm(
  role: Role | undefined,
  approverUsers: string[],
  otherApprovers: string[] = [],
): Form {
  const settings = Object.entries(role?.settings ?? {})
    .filter(([key]) => key !== 'approvers')
    .map(
      ([key, value]) =>
        `${key}: ${DURATION_SETTINGS.has(key) && typeof value === 'number' ? formatDuration(value) : JSON.stringify(value)}`,
    )
    .join('\n');
  const provider = role
    ? [
        `type: ${role.providerType}`,
        ...Object.entries(role.providerConfig).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
      ].join('\n')
    : 'type: none';
  return {
    name: 'adminRole',
    title: role ? 'Edit role' : 'New role',
    submit: 'Save',
    subject: role?.name ?? '',
    blocks: [
      ...(role ? [{ type: 'text' as const, text: `*${role.name}*` }] : []),
      ...(otherApprovers.length > 0
        ? [
            {
              type: 'context' as const,
              text: `Also approvers, not found in this chat workspace (kept when you save): ${otherApprovers.join(', ')}`,
            },
          ]
        : []),
    ],
    inputs: [
      ...(role
        ? []
        : [
            {
              name: 'name' as const,
              label: 'Name',
              hint: 'Lower case, digits and dashes.',
              element: { type: 'text' as const, maxLength: 63 },
            },
          ]),
      {
        name: 'description',
        label: 'Description',
        optional: true,
        element: { type: 'text', initial: role?.description },
      },
      { name: 'scope', label: 'Scope', optional: true, element: { type: 'text', initial: role?.scope } },
      {
        name: 'provider',
        label: 'Grant provider (YAML)',
        element: { type: 'text', multiline: true, initial: provider },
      },
      {
        name: 'approvers',
        label: 'Approvers',
        optional: true,
        element: { type: 'users', multi: true, initial: approverUsers },
      },
      {
        name: 'settings',
        label: 'Settings (YAML)',
        hint: 'One setting a line, as in the policy file; omitted ones take the defaults.',
        optional: true,
        element: { type: 'text', multiline: true, initial: settings },
      },
    ],
  };
}

/** Eligibilities with Remove, and Assign. */
export function eligibilityPage(
  rows: { email: string; roleName: string; startAt: Date; endAt: Date | null }[],
): Form {
  return page('Eligibility', [
    {
      type: 'actions',
      actions: [{ name: 'adminEligibilityAssign', label: 'Assign', value: 'new', style: 'primary' }],
    },
    ...rows.slice(0, 40).map(
      (e): Block => ({
        type: 'text',
        text: `${e.email} → *${e.roleName}* ${e.endAt ? `until ${when(e.endAt)}` : '(permanent)'}`,
        actions: [
          {
            name: 'adminEligibilityRemove',
            label: 'Remove',
            value: `${e.roleName} ${e.email}`,
            style: 'danger',
          },
        ],
      }),
    ),
  ]);
}

/** Assign eligibility or an active assignment: person, role, start/end, justification. */
export function assignmentForm(kind: 'adminEligibility' | 'adminAssignment', roles: Role[]): Form {
  return {
    name: kind,
    title: kind === 'adminEligibility' ? 'Assign eligibility' : 'Active assignment',
    submit: 'Assign',
    subject: '',
    blocks: [],
    inputs: [
      { name: 'users', label: 'Person', element: { type: 'users', multi: false } },
      {
        name: 'role',
        label: 'Role',
        element: { type: 'select', options: roles.map((r) => ({ label: r.name, value: r.name })) },
      },
      { name: 'start', label: 'Start', optional: true, hint: 'Empty: now.', element: { type: 'datetime' } },
      {
        name: 'end',
        label: 'End',
        optional: true,
        hint: 'Empty: permanent, if the role allows it.',
        element: { type: 'datetime' },
      },
      {
        name: 'justification',
        label: 'Justification',
        optional: true,
        element: { type: 'text', multiline: true, maxLength: 500 },
      },
    ],
  };
}

/** Running activations and assignments with Revoke (and, for assignments, New). */
export function activationsPage(title: string, views: ActivationView[], allowCreate: boolean): Form {
  return page(title, [
    ...(allowCreate
      ? [
          {
            type: 'actions' as const,
            actions: [
              {
                name: 'adminAssignmentCreate' as const,
                label: 'New assignment',
                value: 'new',
                style: 'primary' as const,
              },
            ],
          },
        ]
      : []),
    ...(views.length === 0 ? [{ type: 'text' as const, text: 'Nothing running.' }] : []),
    ...views.slice(0, 40).map(
      (v): Block => ({
        type: 'text',
        text: `${v.principal.email} — *${v.role.name}* (${v.activation.kind}, ${statusText(v.activation.status)}${v.activation.endAt ? `, until ${when(v.activation.endAt)}` : ''})${v.activation.lastError ? `\n:warning: ${v.activation.lastError}` : ''}`,
        actions: [{ name: 'adminRevoke', label: 'Revoke', value: v.activation.id, style: 'danger' }],
      }),
    ),
  ]);
}

/** The latest audit events. */
export function auditPage(events: { at: Date; actor: string; action: string; subjectId: string }[]): Form {
  const lines = events.map((e) => `${when(e.at)} ${e.actor} *${e.action}* ${e.subjectId}`);
  return page('Audit events', [{ type: 'text', text: lines.join('\n') || 'No events yet.' }]);
}

/** Notifications that could not be delivered, with the last error. */
export function deliveriesPage(
  rows: { createdAt: Date; kind: string; attempts: number; lastError: string | null }[],
): Form {
  const lines = rows.map(
    (n) => `${when(n.createdAt)} *${n.kind}* after ${n.attempts} attempt(s): ${n.lastError ?? '—'}`,
  );
  return page('Failed deliveries', [
    { type: 'text', text: lines.join('\n') || 'Every notification was delivered.' },
  ]);
}

/**
 * The open security alerts, newest first (the alert service's `list()`), each with when it was
 * raised and its action where ALERT_ACTIONS names one (value: the alert id); *Scan now* on top,
 * with what the last scan did when `notice` says.
 */
export function alertsPage(alerts: AlertView[], notice?: string): Form {
  const top: Block[] = [
    ...(notice ? [{ type: 'text' as const, text: notice }] : []),
    { type: 'actions', actions: [{ name: 'adminAlertsScan', label: 'Scan now', value: 'scan' }] },
  ];
  if (alerts.length === 0)
    return page('Security alerts', [...top, { type: 'text', text: 'No open alerts.' }]);
  return page('Security alerts', [
    ...top,
    ...alerts.slice(0, 40).map(
      (a): Block => ({
        type: 'text',
        text: `${alertLine(a)}\nraised ${when(a.raisedAt)}`,
        actions: alertActions(a),
      }),
    ),
  ]);
}

/** What *Scan now* did, in one line for the alerts page. */
export function scanText(outcome: ScanOutcome): string {
  const { roles, found } = outcome.reconciled;
  const problem = outcome.problem ? ` Not every target could be read: ${outcome.problem}.` : '';
  return `Scanned: ${roles} role(s) compared with their target, ${found} new holder(s) found outside Elevate; ${outcome.raised} alert(s) raised, ${outcome.resolved} resolved.${problem}`;
}

/** A running campaign with its progress (the review service's `running()`). */
export interface RunningReview {
  review: Review;
  items: number;
  decided: number;
}

const REVIEWED_BY = {
  approvers: "the role's approvers",
  self: 'each member',
  named: 'named reviewers',
} as const;

/** The running access reviews (roles, who reviews, the end, how many are decided), and Start. */
export function reviewsPage(running: RunningReview[]): Form {
  return page('Access reviews', [
    {
      type: 'actions',
      actions: [{ name: 'adminReviewStart', label: 'Start a review', value: 'new', style: 'primary' }],
    },
    ...(running.length === 0 ? [{ type: 'text' as const, text: 'No access review is running.' }] : []),
    ...running.slice(0, 40).map(({ review: r, items, decided }): Block => {
      const who = r.reviewers === 'named' ? r.reviewerEmails.join(', ') : REVIEWED_BY[r.reviewers];
      const recurs = r.recurrence ? `, recurs ${r.recurrence}` : '';
      return {
        type: 'text',
        text: `*${r.roleNames.join(', ')}*${r.name ? ` (${r.name})` : ''}, reviewed by ${who}\nends ${when(r.endAt)}: ${decided} of ${items} decided; unreviewed: ${r.unreviewed}${recurs}`,
      };
    }),
  ]);
}

/** What the admin reads once a review started from the dialog. */
export function reviewStartedText(review: Review, items: number): string {
  return `Access review of ${review.roleNames.join(', ')} started: ${items} member(s) to review until ${when(review.endAt)}. The reviewers are told.`;
}

/**
 * Start an access review: which roles, who reviews (the approvers, named reviewers or each member
 * themself), how long it runs, whether it recurs, and what happens to members nobody reviewed.
 */
export function reviewStartForm(roles: Role[]): Form {
  return {
    name: 'adminReview',
    title: 'Start an access review',
    submit: 'Start',
    subject: '',
    blocks: [],
    inputs: [
      {
        name: 'role',
        label: 'Roles',
        element: {
          type: 'select',
          multi: true,
          options: roles.map((r) => ({ label: r.name, value: r.name })),
        },
      },
      {
        name: 'reviewerMode',
        label: 'Who reviews',
        element: {
          type: 'select',
          options: [
            { label: "The role's approvers (else the admins)", value: 'approvers' },
            { label: 'Named reviewers', value: 'named' },
            { label: 'Each member, for themself', value: 'self' },
          ],
          initial: 'approvers',
        },
      },
      {
        name: 'reviewers',
        label: 'Named reviewers',
        optional: true,
        hint: 'Only when named reviewers review. Nobody reviews their own role.',
        element: { type: 'users', multi: true },
      },
      {
        name: 'duration',
        label: 'Runs for',
        hint: 'Between 1 hour and 180 days: 7d, 36h, 2d.',
        element: { type: 'text', initial: '7d', maxLength: 20 },
      },
      {
        name: 'recurrence',
        label: 'Recurs',
        element: {
          type: 'select',
          options: [
            { label: 'Once', value: 'none' },
            { label: 'Weekly', value: 'weekly' },
            { label: 'Monthly', value: 'monthly' },
            { label: 'Quarterly', value: 'quarterly' },
          ],
          initial: 'none',
        },
      },
      {
        name: 'unreviewed',
        label: 'Members nobody reviewed',
        element: {
          type: 'select',
          options: [
            { label: 'Keep them', value: 'keep' },
            { label: 'Remove them', value: 'remove' },
          ],
          initial: 'keep',
        },
      },
    ],
  };
}
