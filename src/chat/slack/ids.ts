/**
 * Every Slack identifier Elevate puts on a message or a view: `action_id`s of buttons and menus,
 * `callback_id`s of modals, `block_id`s of input blocks. They are stable: Slack sends them back
 * in payloads, and tests (e2e, bench) build payloads from them. Change one only with its users.
 *
 * Button values: role buttons carry the role name; activation buttons carry the activation id.
 * The server never trusts them beyond "which thing": who may act is checked again on every click.
 */

/** The slash command the manifest declares. */
export const COMMAND = '/elevate';

/** Buttons and menus (`action_id`). */
export const ACTION = {
  /** Board: open the activation modal for a role (value: role name). */
  activate: 'elevate_activate',
  /** Board / active message: open the extend modal (value: activation id). */
  extend: 'elevate_extend',
  /** Board / active message: end an activation early (value: activation id). */
  deactivate: 'elevate_deactivate',
  /** Board / submitted message: withdraw a pending or scheduled request (value: activation id). */
  cancel: 'elevate_cancel',
  /** Approver card: approve at once (value: activation id). */
  approve: 'elevate_approve',
  /** Approver card: approve with a comment, in a modal (value: activation id). */
  approveWithComment: 'elevate_approve_comment',
  /** Approver card: deny, asks for a reason in a modal (value: activation id). */
  deny: 'elevate_deny',
  /** Step-up answer: a link button to the one-time sign-in page (Slack still sends the click; only acked). */
  verifyIdentity: 'elevate_verify_identity',
  /** Admin menu entries (value unused). */
  adminRoles: 'elevate_admin_roles',
  adminEligibility: 'elevate_admin_eligibility',
  adminAssignments: 'elevate_admin_assignments',
  adminActivations: 'elevate_admin_activations',
  adminAudit: 'elevate_admin_audit',
  adminDeliveries: 'elevate_admin_deliveries',
  adminAlerts: 'elevate_admin_alerts',
  adminReviews: 'elevate_admin_reviews',
  /** Admin: start an access review, in a modal (value unused). */
  adminReviewStart: 'elevate_admin_review_start',
  /** Admin alerts page: reconcile the targets and look for alerts now (value unused). */
  adminAlertsScan: 'elevate_admin_alerts_scan',
  /** Admin: new role modal (value unused). */
  adminRoleCreate: 'elevate_admin_role_create',
  /** Admin: edit a role's settings (value: role name). */
  adminRoleEdit: 'elevate_admin_role_edit',
  /** Admin: archive a role (value: role name). */
  adminRoleArchive: 'elevate_admin_role_archive',
  /** Admin: assign eligibility modal (value unused). */
  adminEligibilityAssign: 'elevate_admin_eligibility_assign',
  /** Admin: remove an eligibility (value: `<role name> <email>`). */
  adminEligibilityRemove: 'elevate_admin_eligibility_remove',
  /** Admin: new active assignment modal (value unused). */
  adminAssignmentCreate: 'elevate_admin_assignment_create',
  /** Admin: revoke a running activation or assignment (value: activation id). */
  adminRevoke: 'elevate_admin_revoke',
  /** Alert notice / alerts page: remove a stale eligibility (value: alert id). */
  alertRemoveEligibility: 'elevate_alert_remove_eligibility',
  /** Alert notice / alerts page: revoke a grant held outside Elevate (value: alert id). */
  alertRevoke: 'elevate_alert_revoke',
  /** Review notice: keep a member's role, asks for a justification in a modal (value: review item id). */
  reviewKeep: 'elevate_review_keep',
  /** Review notice: remove a member's role, asks for a justification in a modal (value: review item id). */
  reviewRemove: 'elevate_review_remove',
} as const;

/** Modals (`callback_id`); `private_metadata` carries the subject (role name or activation id). */
export const VIEW = {
  /** Request an activation (metadata: role name, or empty when the modal lets you pick the role). */
  activate: 'elevate_activate_view',
  /** Ask for more time (metadata: activation id). */
  extend: 'elevate_extend_view',
  /** Approve with an optional comment (metadata: activation id). */
  approve: 'elevate_approve_view',
  /** Deny with a reason (metadata: activation id). */
  deny: 'elevate_deny_view',
  /** Admin menu and its lists (no submit). */
  admin: 'elevate_admin_view',
  /** Admin: create or edit a role (metadata: role name when editing). */
  adminRole: 'elevate_admin_role_view',
  /** Admin: assign eligibility. */
  adminEligibility: 'elevate_admin_eligibility_view',
  /** Admin: create an active assignment. */
  adminAssignment: 'elevate_admin_assignment_view',
  /** Admin: start an access review. */
  adminReview: 'elevate_admin_review_view',
  /** Keep a reviewed role, with its justification (metadata: review item id; block: justification). */
  reviewKeep: 'elevate_review_keep_view',
  /** Remove a reviewed role, with its justification (metadata: review item id; block: justification). */
  reviewRemove: 'elevate_review_remove_view',
} as const;

/**
 * Input blocks (`block_id`); each holds one element whose `action_id` is `value`. A form error
 * from the core (`ElevateError.field`) lands on the block of the same name.
 */
export const BLOCK = {
  role: 'role',
  duration: 'duration',
  start: 'start',
  justification: 'justification',
  ticketSystem: 'ticketSystem',
  ticketNumber: 'ticketNumber',
  comment: 'comment',
  // Admin forms
  name: 'name',
  description: 'description',
  scope: 'scope',
  provider: 'provider',
  settings: 'settings',
  approvers: 'approvers',
  users: 'users',
  end: 'end',
  // Start an access review (role is the roles' multi-select)
  reviewerMode: 'reviewerMode',
  reviewers: 'reviewers',
  recurrence: 'recurrence',
  unreviewed: 'unreviewed',
} as const;

/** The `action_id` of the element inside every input block. */
export const INPUT_ACTION = 'value';
