import { ElevateError, forbidden, invalid } from '../errors.ts';
import { formatDuration, MINUTE_MS } from './duration.ts';
import { MAX_START_AHEAD, type RoleSettings } from './role-settings.ts';

/**
 * Pure rules of the role settings table (PRODUCT.md). Each refusal says, in the person's terms,
 * what blocked them and what would work; `field` names the form input it is about.
 */

/** The role as the rules need it. */
export interface RoleRef {
  name: string;
  settings: RoleSettings;
}

/** A time window; a null end is permanent. */
export interface Window {
  startAt: Date;
  endAt: Date | null;
}

/** What a requester asks for; omitted duration means the role's default, omitted start means now. */
export interface ActivationAsk {
  durationMinutes?: number | undefined;
  startAt?: Date | undefined;
  justification?: string | undefined;
  ticketSystem?: string | undefined;
  ticketNumber?: string | undefined;
}

/** A checked request, with every default filled in. */
export interface CheckedActivation {
  durationMinutes: number;
  startAt: Date;
  endAt: Date;
  justification: string;
  ticketSystem: string | null;
  ticketNumber: string | null;
}

export const MAX_JUSTIFICATION = 500;
/** A start this little in the past is "now" (clock skew, slow form submits). */
const START_GRACE_MS = 60_000;

/** Text as people typed it, trimmed and without NUL characters (PostgreSQL's JSON and text refuse them). */
export const cleanText = (text: string | undefined): string => (text ?? '').replaceAll('\u0000', '').trim();

const at = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The principal may activate only inside an eligibility window. */
export function checkEligible(role: RoleRef, eligibility: Window | undefined, now: Date): Window {
  if (!eligibility) throw forbidden(`You are not eligible for the role ${role.name}.`);
  if (eligibility.startAt > now) {
    throw forbidden(`Your eligibility for ${role.name} starts at ${at(eligibility.startAt)}.`);
  }
  if (eligibility.endAt && eligibility.endAt <= now) {
    throw forbidden(`Your eligibility for ${role.name} ended at ${at(eligibility.endAt)}.`);
  }
  return eligibility;
}

/**
 * A problem of `ask` that the activation form can fix (a missing reason or ticket, a duration out
 * of bounds), found without the database: surfaces open the form at once instead of starting a
 * request that is bound to fail. Undefined when the ask looks complete; the request still checks
 * everything again in its transaction.
 */
export function formProblem(
  role: RoleRef,
  eligibleUntil: Date | null,
  ask: ActivationAsk,
  now: Date,
): ElevateError | undefined {
  try {
    checkActivationRequest(role, { startAt: now, endAt: eligibleUntil }, ask, now);
    return undefined;
  } catch (error) {
    if (error instanceof ElevateError && error.field) return error;
    return undefined;
  }
}

/** Checks an activation request against the role's settings and the eligibility window. */
export function checkActivationRequest(
  role: RoleRef,
  eligibility: Window,
  ask: ActivationAsk,
  now: Date,
): CheckedActivation {
  const s = role.settings;
  const durationMinutes = ask.durationMinutes ?? s.defaultDuration;
  checkDuration(role, durationMinutes);

  let startAt = now;
  if (ask.startAt && ask.startAt.getTime() > now.getTime() + START_GRACE_MS) {
    if (!s.allowCustomStart) {
      throw invalid(`${role.name} does not allow a custom start time; leave it empty to start now.`, 'start');
    }
    if (ask.startAt.getTime() > now.getTime() + MAX_START_AHEAD * MINUTE_MS) {
      throw invalid('The start time may be at most 14 days ahead.', 'start');
    }
    startAt = ask.startAt;
  } else if (ask.startAt && ask.startAt.getTime() < now.getTime() - START_GRACE_MS) {
    throw invalid(`The start time ${at(ask.startAt)} is in the past.`, 'start');
  }
  const endAt = new Date(startAt.getTime() + durationMinutes * MINUTE_MS);
  if (eligibility.endAt && endAt > eligibility.endAt) {
    const left = Math.floor((eligibility.endAt.getTime() - startAt.getTime()) / MINUTE_MS);
    throw invalid(
      `Your eligibility for ${role.name} ends at ${at(eligibility.endAt)}; ask for at most ${formatDuration(Math.max(left, 1))}.`,
      'duration',
    );
  }

  return {
    durationMinutes,
    startAt,
    endAt,
    justification: checkJustification(role, ask.justification),
    ...checkTicket(role, ask.ticketSystem, ask.ticketNumber),
  };
}

/** Duration within the role's minimum and maximum. */
export function checkDuration(role: RoleRef, minutes: number): void {
  const { minDuration, maxDuration } = role.settings;
  if (!Number.isInteger(minutes) || minutes <= 0) {
    throw invalid('The duration must be a whole number of minutes, e.g. 30m, 2h.', 'duration');
  }
  if (minutes < minDuration) {
    throw invalid(
      `${formatDuration(minutes)} is shorter than the minimum of ${formatDuration(minDuration)} for ${role.name}.`,
      'duration',
    );
  }
  if (minutes > maxDuration) {
    throw invalid(
      `${formatDuration(minutes)} is longer than the maximum of ${formatDuration(maxDuration)} for ${role.name}.`,
      'duration',
    );
  }
}

/** A justification when the role requires one; never more than 500 characters. */
export function checkJustification(role: RoleRef, text: string | undefined): string {
  const justification = cleanText(text);
  if (role.settings.requireJustification && justification.length === 0) {
    throw invalid(
      `${role.name} requires a justification: say why you need it (1–500 characters).`,
      'justification',
    );
  }
  if (justification.length > MAX_JUSTIFICATION) {
    throw invalid(
      `The justification is ${justification.length} characters; the limit is ${MAX_JUSTIFICATION}.`,
      'justification',
    );
  }
  return justification;
}

/** Ticket system and number when the role requires them, matching the role's pattern. */
export function checkTicket(
  role: RoleRef,
  system: string | undefined,
  number: string | undefined,
): { ticketSystem: string | null; ticketNumber: string | null } {
  const s = role.settings;
  const ticketNumber = cleanText(number) || null;
  const ticketSystem = s.ticketSystem ?? (cleanText(system) || null);
  if (!s.requireTicket) return { ticketSystem: ticketNumber ? ticketSystem : null, ticketNumber };
  if (!ticketNumber) {
    throw invalid(
      `${role.name} requires a ticket number${s.ticketSystem ? ` from ${s.ticketSystem}` : ''}.`,
      'ticketNumber',
    );
  }
  if (!ticketSystem) throw invalid(`${role.name} requires the ticket system's name.`, 'ticketSystem');
  if (s.ticketPattern && !new RegExp(s.ticketPattern).test(ticketNumber)) {
    throw invalid(
      `Ticket "${ticketNumber}" does not match the pattern ${s.ticketPattern} that ${role.name} requires.`,
      'ticketNumber',
    );
  }
  return { ticketSystem, ticketNumber };
}

/**
 * Who may decide: the role's approvers, or the admins when it names none — never the requester,
 * whatever list they are on (principals are one per person across chat identities).
 */
export function approverIds(requesterId: string, namedApproverIds: string[], adminIds: string[]): string[] {
  const pool = namedApproverIds.length > 0 ? namedApproverIds : adminIds;
  return [...new Set(pool)].filter((id) => id !== requesterId);
}

/** Refuses a decision by anyone but an approver, and self-approval in every form. */
export function checkApprover(
  role: RoleRef,
  deciderId: string | null,
  requesterId: string,
  eligibleApproverIds: string[],
): string {
  if (deciderId === requesterId) throw forbidden('You cannot approve or deny your own request.');
  if (!deciderId || !eligibleApproverIds.includes(deciderId)) {
    throw forbidden(`You are not an approver of ${role.name}.`);
  }
  return deciderId;
}

/** PIM's rule: an activation runs at least a few minutes before its owner may end it. */
export function checkDeactivation(role: RoleRef, activatedAt: Date, now: Date): void {
  const earliest = new Date(activatedAt.getTime() + role.settings.minActiveBeforeDeactivation * MINUTE_MS);
  if (now < earliest) {
    throw invalid(
      `${role.name} can be deactivated ${role.settings.minActiveBeforeDeactivation} minutes after activation, from ${at(earliest)}.`,
    );
  }
}

/** An extension keeps the time from now to the new end within the role's maximum duration. */
export function checkExtension(
  role: RoleRef,
  current: { endAt: Date },
  extraMinutes: number,
  eligibility: Window,
  now: Date,
): Date {
  if (!role.settings.allowExtension) throw invalid(`${role.name} does not allow extensions.`);
  if (!Number.isInteger(extraMinutes) || extraMinutes <= 0) {
    throw invalid('The extension must be a positive duration, e.g. 30m or 1h.', 'duration');
  }
  const newEnd = new Date(current.endAt.getTime() + extraMinutes * MINUTE_MS);
  const fromNow = Math.ceil((newEnd.getTime() - now.getTime()) / MINUTE_MS);
  if (fromNow > role.settings.maxDuration) {
    const most = role.settings.maxDuration - Math.ceil((current.endAt.getTime() - now.getTime()) / MINUTE_MS);
    throw invalid(
      `${role.name} may run at most ${formatDuration(role.settings.maxDuration)} from now; ` +
        (most > 0 ? `extend by at most ${formatDuration(most)}.` : 'it cannot be extended yet.'),
      'duration',
    );
  }
  if (eligibility.endAt && newEnd > eligibility.endAt) {
    throw invalid(`Your eligibility for ${role.name} ends at ${at(eligibility.endAt)}.`, 'duration');
  }
  return newEnd;
}

/**
 * PIM's assignment rules: a window that ends after it starts, permanent only if the role allows
 * it, and otherwise no longer than the role's maximum.
 */
export function checkAssignmentWindow(
  role: RoleRef,
  what: 'eligibility' | 'active assignment',
  window: Window,
): void {
  const s = role.settings;
  const [allowPermanent, maxMinutes] =
    what === 'eligibility'
      ? [s.allowPermanentEligibility, s.maxEligibility]
      : [s.allowPermanentActiveAssignment, s.maxActiveAssignment];
  if (!window.endAt) {
    if (!allowPermanent) {
      throw invalid(
        `${role.name} does not allow a permanent ${what}; set an end at most ${formatDuration(maxMinutes)} after the start.`,
        'end',
      );
    }
    return;
  }
  if (window.endAt <= window.startAt) throw invalid(`The ${what} must end after it starts.`, 'end');
  if (!allowPermanent && window.endAt.getTime() - window.startAt.getTime() > maxMinutes * MINUTE_MS) {
    throw invalid(
      `A ${what} for ${role.name} may last at most ${formatDuration(maxMinutes)}; choose an earlier end.`,
      'end',
    );
  }
}
