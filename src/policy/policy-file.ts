import { Document, isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { canonicalJson } from '../audit/audit-log.ts';
import { type AccountsInput, type AssignmentInput, ROLE_NAME } from '../elevation/admin-service.ts';
import {
  ALERT_CHANNEL_KEYS,
  ALERT_DURATIONS,
  type AlertSettings,
  alertSettingsSchema,
  defaultAlertSettings,
} from '../elevation/alert-settings.ts';
import { DURATION_HINT, formatDuration, parseDuration } from '../elevation/duration.ts';
import { RECURRENCES, REVIEW_DECISIONS } from '../elevation/review.sql.ts';
import type { ReviewInput } from '../elevation/review-service.ts';
import { DURATION_SETTINGS, type RoleSettings, roleSettingsSchema } from '../elevation/role-settings.ts';

/**
 * The policy file (`elevate apply -f policy.yaml`, `elevate export`): its shape, its parsing with
 * every problem reported as `path: message`, and its rendering. This file knows the format only;
 * what the database holds and how it changes is the policy service's business.
 *
 * Times: a bare date (`2027-12-31`) is a whole UTC day. As a `start` it means the beginning of
 * that day; as an `end` it means the end of it (the eligibility still holds on Dec 31 and is gone
 * at 2028-01-01T00:00Z), because that is what people mean by "until 2027-12-31". Full ISO 8601
 * timestamps need a zone (`Z` or `+02:00`). Rendering writes a time back as a bare date whenever
 * that parses to the same instant, so export → apply is exact.
 */

/** A role as the file states it; `settings` is complete (omitted settings are PIM's defaults). */
export interface PolicyRole {
  name: string;
  description: string;
  scope: string;
  provider: { type: string } & Record<string, unknown>;
  settings: RoleSettings;
}

/** A checked policy file. A key that is absent is not managed by the file. */
export interface Policy {
  admins?: string[];
  principals?: AccountsInput[];
  roles?: PolicyRole[];
  eligibility?: AssignmentInput[];
  activeAssignments?: AssignmentInput[];
  /** The alert thresholds; absent: the file leaves the stored ones as they are. */
  alerts?: AlertSettings;
  /** The recurring access reviews, by name; absent: the file leaves the stored ones as they are. */
  reviews?: PolicyReview[];
}

/** A recurring access review as the file states it (`reviews: { <name>: {...} }`). */
export type PolicyReview = ReviewInput & { name: string };

/**
 * What did parse of a file with problems, so checks against the database can still report theirs
 * without cascading ones: the entries, every role name the file declares, and the sections with an
 * entry that did not parse.
 */
export type PartialPolicy = Policy & { roleNames: string[]; incomplete: string[] };

/** The outcome of `parsePolicy`: the policy, or every problem as `path: message` (and what did parse). */
export type ParsedPolicy =
  | { ok: true; policy: Policy }
  | { ok: false; problems: string[]; partial?: PartialPolicy };

/** The names of the role settings, in the order the file lists them. */
const SETTING_NAMES = Object.keys(roleSettingsSchema.in.shape) as (keyof RoleSettings)[];
/** The one duration setting that may be zero. */
const ZERO_ALLOWED = 'minActiveBeforeDeactivation';

const TOP_KEYS = ['admins', 'principals', 'roles', 'eligibility', 'activeAssignments', 'alerts', 'reviews'];
const REVIEW_KEYS = ['roles', 'reviewers', 'duration', 'recur', 'unreviewed'];
/** The alerts of the `alerts:` section and, for each, its keys; `channel` has only optional ones. */
const ALERT_KEYS: Record<string, string[]> = {
  ...Object.fromEntries(
    Object.entries(defaultAlertSettings()).map(([name, keys]) => [name, Object.keys(keys)]),
  ),
  channel: [...ALERT_CHANNEL_KEYS],
};
const ROLE_KEYS = ['name', 'description', 'scope', 'provider', 'settings'];
const ASSIGNMENT_KEYS = ['principal', 'role', 'start', 'end', 'justification'];
const PRINCIPAL_KEYS = ['email', 'accounts'];

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$/;
const DAY_MS = 86_400_000;
const DATE_HINT = 'use 2027-12-31 or 2027-12-31T17:00:00Z';

const email = z
  .string()
  .trim()
  .pipe(z.email({ error: (issue) => `${JSON.stringify(issue.input)} is not an email address` }))
  .transform((value) => value.toLowerCase());

/** A `start` or `end`: a bare date (see the header) or a zoned timestamp. */
const time = (kind: 'start' | 'end') =>
  z.unknown().transform((value, ctx) => {
    const at = readTime(value, kind);
    if (at) return at;
    ctx.addIssue({ code: 'custom', message: `${describe(value)} is not a date (${DATE_HINT})` });
    return z.NEVER;
  });

/** Role settings: durations converted to minutes, unknown names refused, then the shared schema. */
const settings = z.record(z.string(), z.unknown()).transform((raw, ctx) => {
  const input: Record<string, unknown> = {};
  let badDuration = false;
  for (const [key, value] of Object.entries(raw)) {
    if (!SETTING_NAMES.includes(key as keyof RoleSettings)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `is not a role setting${suggest(key, SETTING_NAMES)}`,
      });
    } else if (!DURATION_SETTINGS.has(key)) {
      input[key] = value;
    } else {
      const minutes = readDuration(value, key === ZERO_ALLOWED);
      if (minutes === undefined) {
        badDuration = true;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${describe(value)} is not a duration (${DURATION_HINT})`,
        });
      } else {
        input[key] = minutes;
      }
    }
  }
  const result = roleSettingsSchema.safeParse(input);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    // Cross-field bounds computed with a default in place of a bad duration would only mislead.
    if (badDuration && issue.code === 'custom' && DURATION_SETTINGS.has(String(issue.path[0]))) continue;
    const message =
      issue.code === 'invalid_format' && issue.format === 'email'
        ? `${describe(valueAt(input, issue.path))} is not an email address`
        : issue.message;
    ctx.addIssue({ code: 'custom', path: issue.path, message });
  }
  return z.NEVER;
});

/** A principal's account names per provider type, where they differ from what the email gives. */
const principal = z.strictObject({
  email,
  accounts: z.record(z.string(), z.string().trim().min(1)).superRefine((accounts, ctx) => {
    for (const type of Object.keys(accounts)) {
      if (!/^[a-z][a-z0-9-]*$/.test(type)) {
        ctx.addIssue({
          code: 'custom',
          path: [type],
          message: 'is not a provider type (e.g. postgres, slack, entra)',
        });
      }
    }
  }),
});

const role = z.strictObject({
  name: z.string().regex(ROLE_NAME, {
    error: (issue) => `${describe(issue.input)} must be lower-case letters, digits and dashes (at most 63)`,
  }),
  description: z.string().default(''),
  scope: z.string().default(''),
  // The provider's own parameters are checked by its registry entry (roleProblems, as saveRole does).
  provider: z.looseObject({ type: z.string().min(1) }).default({ type: 'none' }),
  settings: settings.default(() => roleSettingsSchema.parse({})),
});

const assignment = z
  .strictObject({
    principal: email,
    role: z.string().trim().toLowerCase().min(1),
    start: time('start').optional(),
    end: time('end').nullable().optional(),
    justification: z.string().optional(),
  })
  .transform(
    (a): AssignmentInput => ({
      email: a.principal,
      roleName: a.role,
      ...(a.start ? { startAt: a.start } : {}),
      endAt: a.end ?? null,
      ...(a.justification !== undefined ? { justification: a.justification } : {}),
    }),
  );

/** Zod's wording for a missing field is about types; people need to hear what to add. */
const parseOptions = {
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : undefined),
};

/**
 * Parses and checks a policy file on its own (no database): YAML syntax, shape, unknown keys,
 * emails, durations, dates, role settings and duplicates. Every problem is one `path: message` line,
 * in the order of the file.
 */
export function parsePolicy(text: string, fileName: string): ParsedPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((error) => {
        const { line, col } = lines.linePos(error.pos[0]);
        return `${fileName}:${line}:${col}: ${error.message}`;
      }),
    };
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) {
    return { ok: false, problems: [`${fileName}: is empty; write at least one of ${TOP_KEYS.join(', ')}`] };
  }
  if (!isRecord(data)) {
    return { ok: false, problems: [`${fileName}: must be a mapping with ${TOP_KEYS.join(', ')}`] };
  }
  // Entry by entry, so one bad entry leaves the others parsed for the database checks.
  const found: Found[] = [];
  const incomplete = new Set<string>();
  const each = <T>(section: string, schema: z.ZodType<T>): T[] | undefined => {
    const list = data[section];
    if (list === undefined) return undefined;
    if (!Array.isArray(list)) {
      found.push({ path: [section], message: `must be a list (write [] for none)` });
      return undefined;
    }
    const parsed: T[] = [];
    for (const [i, item] of list.entries()) {
      const result = schema.safeParse(item, parseOptions);
      if (result.success) {
        parsed.push(result.data);
      } else {
        incomplete.add(section);
        found.push(...result.error.issues.flatMap((issue) => issueProblems(issue, [section, i])));
      }
    }
    return parsed;
  };
  for (const key of Object.keys(data)) {
    if (!TOP_KEYS.includes(key))
      found.push({ path: [key], message: `is not a known key${suggest(key, TOP_KEYS)}` });
  }
  const policy: Policy = {};
  const admins = each('admins', email);
  if (admins) policy.admins = [...new Set(admins)];
  const mapped = each('principals', principal);
  if (mapped) policy.principals = mapped;
  const roles = each('roles', role);
  if (roles) policy.roles = roles;
  const eligibility = each('eligibility', assignment);
  if (eligibility) policy.eligibility = eligibility;
  const activeAssignments = each('activeAssignments', assignment);
  if (activeAssignments) policy.activeAssignments = activeAssignments;
  if (data.alerts !== undefined) {
    const alerts = parseAlerts(data.alerts);
    if (alerts.settings) policy.alerts = alerts.settings;
    found.push(...alerts.found);
  }
  if (data.reviews !== undefined) {
    const reviews = parseReviews(data.reviews);
    if (reviews.reviews) policy.reviews = reviews.reviews;
    found.push(...reviews.found);
  }
  found.push(...duplicates(data));
  if (found.length === 0) return { ok: true, policy };

  // In the order of the file, so people can fix them top to bottom.
  const line = (path: PropertyKey[]) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
    }
    return 0;
  };
  const sorted = found.map((p) => ({ ...p, line: line(p.path) })).sort((a, b) => a.line - b.line);
  const declared = Array.isArray(data.roles) ? data.roles : [];
  return {
    ok: false,
    problems: sorted.map((p) => `${pathText(p.path, fileName)}: ${p.message}`),
    partial: {
      ...policy,
      roleNames: declared.flatMap((r) => (isRecord(r) && typeof r.name === 'string' ? [r.name] : [])),
      incomplete: [...incomplete],
    },
  };
}

/**
 * Puts problem lines found by different checks into one order: file-level first, then by section
 * (admins, principals, roles, eligibility, activeAssignments) and entry; the sort is stable within an entry.
 */
export function orderProblems(problems: string[]): string[] {
  const rank = (line: string) => {
    const match = /^(\w+)\[(\d+)\]/.exec(line);
    return match ? [TOP_KEYS.indexOf(match[1] ?? ''), Number(match[2])] : [-1, -1];
  };
  return problems
    .map((line, i) => ({ line, i, rank: rank(line) }))
    .sort((a, b) => (a.rank[0] ?? 0) - (b.rank[0] ?? 0) || (a.rank[1] ?? 0) - (b.rank[1] ?? 0) || a.i - b.i)
    .map((p) => p.line);
}

/** A start or end as the file writes it: a bare date when that parses back to the same instant. */
export function formatTime(at: Date, kind: 'start' | 'end'): string {
  const ms = at.getTime();
  if (ms % DAY_MS === 0) {
    return new Date(kind === 'end' ? ms - DAY_MS : ms).toISOString().slice(0, 10);
  }
  return at.toISOString().replace('.000Z', 'Z');
}

/** The settings a file needs to state: those that differ from what omitting them would give. */
export function settingsForFile(stored: RoleSettings): Record<string, unknown> {
  const target = canonicalJson(stored);
  let minimal: Record<string, unknown> = { ...stored };
  for (const key of SETTING_NAMES) {
    const { [key]: _dropped, ...candidate } = minimal;
    const parsed = roleSettingsSchema.safeParse(candidate);
    if (parsed.success && canonicalJson(parsed.data) === target) minimal = candidate;
  }
  // As the file writes them: durations as `8h`, the rest as they are.
  const out: Record<string, unknown> = {};
  for (const key of SETTING_NAMES) {
    const value = minimal[key];
    if (value !== undefined) {
      out[key] = DURATION_SETTINGS.has(key) && typeof value === 'number' ? formatDuration(value) : value;
    }
  }
  return out;
}

/** A file's content as `renderPolicy` writes it. */
export interface PolicyDocument {
  admins: string[];
  principals: AccountsInput[];
  roles: {
    name: string;
    description: string;
    scope: string;
    provider: Record<string, unknown>;
    settings: RoleSettings;
  }[];
  eligibility: AssignmentInput[];
  activeAssignments: AssignmentInput[];
  /** Written only where they differ from the defaults. */
  alerts?: AlertSettings;
  /** The recurring reviews (named ones); written when there are any. */
  reviews?: PolicyReview[];
}

/** Renders a policy as YAML in the format `parsePolicy` reads, with a header comment. */
export function renderPolicy(policy: PolicyDocument, header: string): string {
  const entry = (a: AssignmentInput) => ({
    principal: a.email,
    role: a.roleName,
    ...(a.startAt ? { start: formatTime(a.startAt, 'start') } : {}),
    ...(a.endAt ? { end: formatTime(a.endAt, 'end') } : {}),
    ...(a.justification ? { justification: a.justification } : {}),
  });
  const doc = new Document({
    admins: policy.admins,
    ...(policy.principals.length > 0 ? { principals: policy.principals } : {}),
    roles: policy.roles.map((r) => {
      const stated = settingsForFile(r.settings);
      return {
        name: r.name,
        ...(r.description ? { description: r.description } : {}),
        ...(r.scope ? { scope: r.scope } : {}),
        provider: r.provider,
        ...(Object.keys(stated).length > 0 ? { settings: stated } : {}),
      };
    }),
    eligibility: policy.eligibility.map(entry),
    activeAssignments: policy.activeAssignments.map(entry),
    ...(policy.alerts && Object.keys(alertsForFile(policy.alerts)).length > 0
      ? { alerts: alertsForFile(policy.alerts) }
      : {}),
    ...(policy.reviews && policy.reviews.length > 0
      ? { reviews: Object.fromEntries(policy.reviews.map((r) => [r.name, reviewForFile(r)])) }
      : {}),
  });
  doc.commentBefore = ` ${header}`;
  // Short lists and one-line entries read best in flow style, as in the documented example.
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      const key = String((pair.key as { value?: unknown }).value);
      const value = pair.value;
      if (key === 'admins' && isSeq(value)) value.flow = true;
      if ((key === 'eligibility' || key === 'activeAssignments' || key === 'principals') && isSeq(value)) {
        if (value.items.length === 0) value.flow = true;
        for (const item of value.items) if (isMap(item)) item.flow = true;
      }
      if (key === 'roles' && isSeq(value)) {
        if (value.items.length === 0) value.flow = true;
        for (const item of value.items) {
          const provider = isMap(item) ? item.get('provider', true) : undefined;
          if (isMap(provider)) provider.flow = true;
          const approvers = isMap(item) ? item.getIn(['settings', 'approvers'], true) : undefined;
          if (isSeq(approvers)) approvers.flow = true;
        }
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/**
 * The `alerts:` section: each alert a mapping of its thresholds (durations written as `24h`, `30d`),
 * omitted ones at their defaults; problems at their path, like the rest of the file.
 */
function parseAlerts(value: unknown): { settings?: AlertSettings; found: Found[] } {
  const names = Object.keys(ALERT_KEYS);
  if (!isRecord(value))
    return { found: [{ path: ['alerts'], message: `must be a mapping with ${names.join(', ')}` }] };
  const found: Found[] = [];
  const input: Record<string, Record<string, unknown>> = {};
  for (const [name, section] of Object.entries(value)) {
    if (!names.includes(name)) {
      found.push({ path: ['alerts', name], message: `is not an alert${suggest(name, names)}` });
    } else if (!isRecord(section)) {
      found.push({
        path: ['alerts', name],
        message: `must be a mapping with ${ALERT_KEYS[name]?.join(', ')}`,
      });
    } else {
      const thresholds: Record<string, unknown> = {};
      for (const [key, raw] of Object.entries(section)) {
        const minutes = ALERT_DURATIONS.has(key) ? readDuration(raw, false) : raw;
        if (minutes === undefined) {
          found.push({
            path: ['alerts', name, key],
            message: `${describe(raw)} is not a duration (${DURATION_HINT})`,
          });
        } else thresholds[key] = minutes;
      }
      input[name] = thresholds;
    }
  }
  const result = alertSettingsSchema.safeParse(input);
  if (result.success) return { settings: result.data, found };
  for (const issue of result.error.issues) {
    const path = ['alerts', ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = ALERT_KEYS[String(issue.path[0])] ?? [];
      for (const key of issue.keys)
        found.push({ path: [...path, key], message: `is not a known key${suggest(key, known)}` });
    } else if (!found.some((f) => f.path.join('.') === path.join('.'))) {
      found.push({ path, message: issue.message });
    }
  }
  return { found };
}

/** One entry of `reviews:`: roles, reviewers (approvers, self or a list of emails), duration, period. */
const review = z.strictObject({
  roles: z.array(z.string().trim().toLowerCase().min(1)).min(1, { error: 'must list at least one role' }),
  reviewers: z.union([z.enum(['approvers', 'self']), z.array(email).min(1)], {
    error: (issue) => `${describe(issue.input)} must be approvers, self or a list of emails`,
  }),
  duration: z
    .unknown()
    .transform((value, ctx) => {
      const minutes = readDuration(value, false);
      if (minutes !== undefined) return minutes;
      ctx.addIssue({ code: 'custom', message: `${describe(value)} is not a duration (${DURATION_HINT})` });
      return z.NEVER;
    })
    .optional(),
  recur: z.enum(RECURRENCES, {
    error: (issue) => `${describe(issue.input)} must be ${RECURRENCES.join(', ')}`,
  }),
  unreviewed: z
    .enum(REVIEW_DECISIONS, { error: (issue) => `${describe(issue.input)} must be keep or remove` })
    .default('keep'),
});

/**
 * The `reviews:` section: recurring access reviews by name (a name like a role's), each a mapping
 * of REVIEW_KEYS; problems at their path, like the rest of the file.
 */
function parseReviews(value: unknown): { reviews?: PolicyReview[]; found: Found[] } {
  if (!isRecord(value))
    return { found: [{ path: ['reviews'], message: 'must be a mapping of review names to their settings' }] };
  const found: Found[] = [];
  const reviews: PolicyReview[] = [];
  for (const [name, entry] of Object.entries(value)) {
    if (!ROLE_NAME.test(name)) {
      found.push({
        path: ['reviews', name],
        message: 'must be named with lower-case letters, digits and dashes',
      });
      continue;
    }
    const result = review.safeParse(entry, parseOptions);
    if (!result.success) {
      for (const issue of result.error.issues) {
        const path = ['reviews', name, ...issue.path];
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys)
            found.push({ path: [...path, key], message: `is not a known key${suggest(key, REVIEW_KEYS)}` });
        } else if (issue.code === 'invalid_type' && issue.path.length === 0) {
          found.push({ path, message: `must be a mapping with ${REVIEW_KEYS.join(', ')}` });
        } else found.push({ path, message: issue.message });
      }
      continue;
    }
    const r = result.data;
    reviews.push({
      name,
      roleNames: [...new Set(r.roles)],
      reviewers: Array.isArray(r.reviewers) ? 'named' : r.reviewers,
      reviewerEmails: Array.isArray(r.reviewers) ? r.reviewers : [],
      ...(r.duration !== undefined ? { durationMinutes: r.duration } : {}),
      recurrence: r.recur,
      unreviewed: r.unreviewed,
    });
  }
  return { reviews, found };
}

/** A recurring review as the file writes it: only what differs from the defaults besides the rest. */
export function reviewForFile(r: PolicyReview): Record<string, unknown> {
  return {
    roles: r.roleNames,
    reviewers: r.reviewers === 'named' ? (r.reviewerEmails ?? []) : r.reviewers,
    ...(r.durationMinutes !== undefined && r.durationMinutes !== 7 * 1440
      ? { duration: formatDuration(r.durationMinutes) }
      : {}),
    recur: r.recurrence,
    ...(r.unreviewed === 'remove' ? { unreviewed: 'remove' } : {}),
  };
}

/** The thresholds a file needs to state: those that differ from the defaults, durations as `24h`. */
export function alertsForFile(stored: AlertSettings): Record<string, Record<string, unknown>> {
  const defaults = defaultAlertSettings() as Record<string, Record<string, unknown>>;
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, keys] of Object.entries(stored as Record<string, Record<string, unknown>>)) {
    for (const [key, value] of Object.entries(keys)) {
      if (canonicalJson(value) === canonicalJson(defaults[name]?.[key])) continue;
      out[name] ??= {};
      out[name][key] = ALERT_DURATIONS.has(key) && typeof value === 'number' ? formatDuration(value) : value;
    }
  }
  return out;
}

function readDuration(value: unknown, zeroAllowed: boolean): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (zeroAllowed && /^(?:0+(?:m|min|h|d)?|PT?0+[MHD])$/i.test(value.trim())) return 0;
  return parseDuration(value);
}

function readTime(value: unknown, kind: 'start' | 'end'): Date | undefined {
  // YAML 1.1 readers turn a bare date into a Date at midnight UTC: read it as the bare date it was.
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    const ms = value.getTime();
    return ms % DAY_MS === 0 && kind === 'end' ? new Date(ms + DAY_MS) : value;
  }
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  const day = DATE_ONLY.exec(text);
  if (day) {
    const [, y, m, d] = day.map(Number) as [number, number, number, number];
    const ms = Date.UTC(y, m - 1, d);
    // Date.UTC rolls 2027-02-30 over to March; a real date survives the round trip.
    if (new Date(ms).toISOString().slice(0, 10) !== text) return undefined;
    return new Date(kind === 'end' ? ms + DAY_MS : ms);
  }
  if (!TIMESTAMP.test(text)) return undefined;
  const at = new Date(text.replace(' ', 'T'));
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** A problem at a place in the file. */
interface Found {
  path: PropertyKey[];
  message: string;
}

/** Roles named twice, and the same principal and role listed twice in one section. */
function duplicates(data: unknown): Found[] {
  if (!isRecord(data)) return [];
  const problems: Found[] = [];
  const seen = (
    section: string,
    keyOf: (item: Record<string, unknown>) => string | undefined,
    what: (key: string) => string,
  ) => {
    const list = data[section];
    if (!Array.isArray(list)) return;
    const first = new Map<string, number>();
    list.forEach((item, index) => {
      const key = isRecord(item) ? keyOf(item) : undefined;
      if (key === undefined) return;
      const earlier = first.get(key);
      if (earlier === undefined) first.set(key, index);
      else
        problems.push({
          path: [section, index],
          message: `${what(key)} is listed twice (also ${section}[${earlier}])`,
        });
    });
  };
  const text = (v: unknown) => (typeof v === 'string' ? v.trim().toLowerCase() : undefined);
  seen(
    'principals',
    (p) => text(p.email),
    (key) => `principal ${key}`,
  );
  seen(
    'roles',
    (r) => text(r.name),
    (key) => `role "${key}"`,
  );
  for (const section of ['eligibility', 'activeAssignments']) {
    seen(
      section,
      (a) => (text(a.principal) && text(a.role) ? `${text(a.principal)} → ${text(a.role)}` : undefined),
      (key) => key,
    );
  }
  return problems;
}

/** An issue of one entry (at `at`) as problems; unknown keys get one line each. */
function issueProblems(issue: z.core.$ZodIssue, at: [string, number]): Found[] {
  const path = [...at, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const known = keysOf(at[0]);
    return issue.keys.map((key) => ({
      path: [...path, key],
      message: `is not a known key${suggest(key, known)}`,
    }));
  }
  if (issue.code === 'invalid_type' && issue.path.length === 0 && at[0] !== 'admins') {
    return [
      {
        path,
        message: `must be a mapping with ${keysOf(at[0]).join(', ')}`,
      },
    ];
  }
  return [{ path, message: issue.message }];
}

const keysOf = (section: string) =>
  section === 'roles' ? ROLE_KEYS : section === 'principals' ? PRINCIPAL_KEYS : ASSIGNMENT_KEYS;

/** `roles[2].settings.maxDuration`, the way people find the spot in their file. */
function pathText(path: PropertyKey[], fileName: string): string {
  if (path.length === 0) return fileName;
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`))
    .join('');
}

/** ` (did you mean maxDuration?)` for a near miss, else ` (known: …)` for a short list. */
function suggest(key: string, known: string[]): string {
  const close = known.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
  if (close) return ` (did you mean ${close}?)`;
  return known.length <= 8 ? ` (known: ${known.join(', ')})` : '';
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

function describe(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value) ?? String(value);
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let at = root;
  for (const part of path) at = (at as Record<PropertyKey, unknown> | undefined)?.[part];
  return at;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
