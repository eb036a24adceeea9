import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import { and, asc, eq, gt, inArray, isNull, ne, or, sql } from '../db/drizzle.ts';
import { activations, OPEN_STATUSES } from '../elevation/activation.sql.ts';
import type { Actor } from '../elevation/actor.ts';
import {
  type AdminContext,
  type AdminService,
  type AssignmentInput,
  archiveRole,
  assignActive,
  assignEligibility,
  type Outcome,
  removeActive,
  removeEligibility,
  roleProblems,
  saveRole,
  setAccounts,
  setAdmins,
} from '../elevation/admin-service.ts';
import { loadAlertSettings } from '../elevation/alert-repository.ts';
import { saveAlertSettings } from '../elevation/alert-service.ts';
import { principals } from '../elevation/principal.sql.ts';
import { recordChange } from '../elevation/record.ts';
import { currentNamedReviews, saveReview, stopReviewsNotIn } from '../elevation/review-service.ts';
import { eligibilities, roles } from '../elevation/role.sql.ts';
import { listRoles } from '../elevation/role-repository.ts';
import { ElevateError, forbidden } from '../errors.ts';
import type { ProviderRegistry } from '../grants/registry.ts';
import { orderProblems, type PartialPolicy, type Policy, parsePolicy, renderPolicy } from './policy-file.ts';

/**
 * Policy as code: makes the database match a policy file, for the sections the file has, by
 * running the admin operations of every other surface in one transaction. Each operation decides
 * on its own whether anything changes and reports the diff lines; this file only chooses which
 * operations a file means, in a safe order, and turns their refusals into problems with the path
 * of the entry. Any problem, or a dry run, rolls the whole transaction back.
 */

/** What `apply` found: the file's problems (nothing applied), or the diff lines and whether they were written. */
export type ApplyResult =
  | { ok: false; problems: string[] }
  | { ok: true; changes: string[]; applied: boolean };

/** The sections of a policy file, in the order the diff lists them. */
type Section = 'admins' | 'principals' | 'roles' | 'eligibility' | 'activeAssignments' | 'alerts' | 'reviews';

/** What running a file's operations gave: the diff by section, the refusals, what to settle after commit. */
interface Run {
  lines: Record<Section, string[]>;
  problems: string[];
  settle: string[];
}

/** Thrown out of the transaction to roll it back (problems, dry run), carrying what the run found. */
class RolledBack extends Error {
  readonly run: Run;
  constructor(run: Run) {
    super('policy apply rolled back');
    this.run = run;
  }
}

/** A parsed file, complete or not: what parsed, and what is known about what did not. */
interface FileView {
  policy: Policy;
  /** Roles the file declares whose entries did not parse. */
  unreadRoles: string[];
  /** Sections with an entry that did not parse. */
  incomplete: string[];
}

/** The policy use cases; `admin` is the admin service whose `batch` gives the one transaction. */
export function createPolicyService(deps: {
  db: Db;
  providers: ProviderRegistry;
  clock: Clock;
  admin: Pick<AdminService, 'batch'>;
}) {
  /**
   * Checks `text` and runs it against the database as `actor` (an admin, else a forbidden error):
   * committed when it has no problem and is no dry run, else rolled back. `changes` empty: nothing
   * to do (see noChangesMessage).
   */
  async function apply(input: {
    actor: Actor;
    text: string;
    fileName: string;
    dryRun?: boolean;
  }): Promise<ApplyResult> {
    if (!input.actor.isAdmin) throw forbidden('Only an Elevate admin can apply a policy file.');
    const parsed = parsePolicy(input.text, input.fileName);
    if (!parsed.ok && !parsed.partial) return { ok: false, problems: parsed.problems };
    // What did parse still runs (and is rolled back), so one run lists every problem.
    const shapeProblems = parsed.ok ? [] : parsed.problems;
    const {
      roleNames = [],
      incomplete = [],
      ...policy
    }: Partial<PartialPolicy> = parsed.ok ? parsed.policy : (parsed.partial ?? {});
    const read = new Set(policy.roles?.map((r) => r.name));
    const file = { policy, unreadRoles: roleNames.filter((name) => !read.has(name)), incomplete };

    // A dry run also asks each provider whether its variables are set and its target answers;
    // before the transaction, because those checks go over the network.
    const verified: string[] = [];
    if (input.dryRun) {
      for (const [i, role] of (policy.roles ?? []).entries()) {
        const { type, ...config } = role.provider;
        for (const problem of await deps.providers.verify(type, config))
          verified.push(`roles[${i}].provider: ${problem}`);
      }
    }

    let run: Run;
    try {
      run = await deps.admin.batch(
        input.actor,
        async (ctx) => {
          // One apply at a time (replicas applying ELEVATE_POLICY_FILE at start race otherwise),
          // so each sees what the last one wrote.
          await ctx.tx.execute(sql`select pg_advisory_xact_lock(hashtext('elevate.policy_apply'))`);
          const run = await runFile(ctx, file);
          if (input.dryRun || shapeProblems.length > 0 || run.problems.length > 0) throw new RolledBack(run);
          const changes = diffOf(run);
          if (changes.length > 0) {
            await recordChange(ctx.tx, {
              actor: ctx.actor,
              action: 'policy.applied',
              subjectType: 'policy',
              subjectId: input.fileName,
              at: ctx.now,
              data: { file: input.fileName, ...countChanges(changes) },
            });
          }
          return run;
        },
        (run) => run.settle,
      );
    } catch (error) {
      if (!(error instanceof RolledBack)) throw error;
      run = error.run;
    }
    const problems = orderProblems([...shapeProblems, ...verified, ...run.problems]);
    if (problems.length > 0) return { ok: false, problems };
    const changes = diffOf(run);
    return { ok: true, changes, applied: !input.dryRun && changes.length > 0 };
  }

  /** The current admins, live roles, eligibilities and active assignments as a policy file. */
  async function exportPolicy(): Promise<string> {
    const now = deps.clock();
    const admins = await deps.db
      .select({ email: principals.email })
      .from(principals)
      .where(eq(principals.isAdmin, true))
      .orderBy(asc(principals.email));
    // A start that has passed is left out: apply keeps the stored start when the file names none.
    const entry = (a: AssignmentInput & { startAt: Date }) => ({
      email: a.email,
      roleName: a.roleName,
      ...(a.startAt > now ? { startAt: a.startAt } : {}),
      endAt: a.endAt,
      ...(a.justification ? { justification: a.justification } : {}),
    });
    return renderPolicy(
      {
        admins: admins.map((a) => a.email),
        principals: (
          await deps.db
            .select({ email: principals.email, accounts: principals.accounts })
            .from(principals)
            .orderBy(asc(principals.email))
        ).filter((p) => Object.keys(p.accounts).length > 0),
        roles: (await listRoles(deps.db)).map((r) => ({
          name: r.name,
          description: r.description,
          scope: r.scope,
          provider: { type: r.providerType, ...r.providerConfig },
          settings: r.settings,
        })),
        eligibility: (await currentEligibilities(deps.db, now)).map(entry),
        activeAssignments: (await currentAssignments(deps.db, now)).map(entry),
        alerts: await loadAlertSettings(deps.db),
        reviews: await currentNamedReviews(deps.db),
      },
      `Elevate policy, exported ${now.toISOString()}. Apply with: elevate apply -f <this file>`,
    );
  }

  return { apply, exportPolicy };
}

/** The policy service's interface, for the CLI and start-up. */
export type PolicyService = ReturnType<typeof createPolicyService>;

/** The message a surface shows when `apply` found nothing to change. */
export const noChangesMessage = (fileName: string) => `No changes: the database already matches ${fileName}.`;

/**
 * Runs the admin operations a file means, in an order where each finds what it needs: admins,
 * roles, then per section the removals before the assignments, and the roles the file no longer
 * lists archived last. A refused operation is a problem at its entry's path; the others still run.
 */
async function runFile(ctx: AdminContext, file: FileView): Promise<Run> {
  const run: Run = {
    lines: {
      admins: [],
      principals: [],
      roles: [],
      eligibility: [],
      activeAssignments: [],
      alerts: [],
      reviews: [],
    },
    problems: [],
    settle: [],
  };
  /** One operation in a savepoint, so a refusal (even after a failed statement) leaves the rest usable. */
  const step = async (section: Section, path: string, op: (ctx: AdminContext) => Promise<Outcome>) => {
    try {
      const outcome = await ctx.tx.transaction((tx) => op({ ...ctx, tx }));
      run.lines[section].push(...outcome.lines);
      if (outcome.settle) run.settle.push(outcome.settle);
      return true;
    } catch (error) {
      if (!(error instanceof ElevateError)) throw error;
      run.problems.push(`${path}${error.field ? `.${error.field}` : ''}: ${error.message}`);
      return false;
    }
  };
  const { policy } = file;

  const admins = policy.admins;
  if (admins) await step('admins', 'admins', (c) => setAdmins(c, admins));
  const mapped = policy.principals;
  // With an entry unread, which principals keep their mapping is not known: leave them all.
  if (mapped && !file.incomplete.includes('principals')) {
    await step('principals', 'principals', (c) => setAccounts(c, mapped));
  }

  // Entries of a role whose own entry has problems are skipped: theirs would only echo its problems.
  const skipped = new Set(file.unreadRoles);
  for (const [i, role] of (policy.roles ?? []).entries()) {
    // saveRole's own checks, one line each so every one gets its path.
    const problems = roleProblems(role, ctx.providers);
    for (const p of problems) run.problems.push(`roles[${i}].${p}`);
    if (problems.length > 0 || !(await step('roles', `roles[${i}]`, (c) => saveRole(c, role)))) {
      skipped.add(role.name);
    }
  }
  const fileRoles = policy.roles && new Set([...policy.roles.map((r) => r.name), ...file.unreadRoles]);
  const archived = fileRoles ? (await listRoles(ctx.tx)).filter((r) => !fileRoles.has(r.name)) : [];

  const sync = async (
    section: 'eligibility' | 'activeAssignments',
    list: AssignmentInput[] | undefined,
    current: () => Promise<AssignmentInput[]>,
    remove: (c: AdminContext, entry: AssignmentInput) => Promise<Outcome>,
    assign: (c: AdminContext, entry: AssignmentInput) => Promise<Outcome>,
  ) => {
    if (!list) return;
    // With an entry unread, what the file wants kept is not known: nothing is removed.
    if (!file.incomplete.includes(section)) {
      const wanted = new Set(list.map(pairKey));
      for (const entry of await current()) {
        if (!wanted.has(pairKey(entry))) await step(section, section, (c) => remove(c, entry));
      }
    }
    for (const [i, entry] of list.entries()) {
      if (skipped.has(entry.roleName)) continue;
      if (archived.some((r) => r.name === entry.roleName)) {
        run.problems.push(
          `${section}[${i}].role: "${entry.roleName}" is not among this file's roles, so this apply archives it`,
        );
      } else {
        await step(section, `${section}[${i}]`, (c) => assign(c, entry));
      }
    }
  };
  await sync(
    'eligibility',
    policy.eligibility,
    () => currentEligibilities(ctx.tx, ctx.now),
    removeEligibility,
    assignEligibility,
  );
  await sync(
    'activeAssignments',
    policy.activeAssignments,
    () => currentAssignments(ctx.tx, ctx.now),
    removeActive,
    assignActive,
  );

  for (const role of archived) await step('roles', 'roles', (c) => archiveRole(c, role.name));
  const thresholds = policy.alerts;
  if (thresholds) await step('alerts', 'alerts', (c) => saveAlertSettings(c, thresholds));
  // Last: a review's first campaign lists the eligibilities this file has just set.
  const reviews = policy.reviews;
  if (reviews) {
    for (const r of reviews) await step('reviews', `reviews.${r.name}`, (c) => saveReview(c, r));
    const listed = new Set(reviews.map((r) => r.name));
    await step('reviews', 'reviews', (c) => stopReviewsNotIn(c, listed));
  }
  return run;
}

/**
 * The eligibilities of live roles as a file states them. One that has run out is the loop's to
 * clean up, not a difference from the file, and is not exported.
 */
function currentEligibilities(db: Db, now: Date) {
  return db
    .select({
      email: principals.email,
      roleName: roles.name,
      startAt: eligibilities.startAt,
      endAt: eligibilities.endAt,
      justification: eligibilities.justification,
    })
    .from(eligibilities)
    .innerJoin(principals, eq(principals.id, eligibilities.principalId))
    .innerJoin(roles, eq(roles.id, eligibilities.roleId))
    .where(and(isNull(roles.archivedAt), or(isNull(eligibilities.endAt), gt(eligibilities.endAt, now))))
    .orderBy(asc(roles.name), asc(principals.email));
}

/**
 * The admins' assignments of live roles that hold or will hold their grant. One being revoked, or
 * past its end (the loop revokes it), is not a difference from the file and is not exported.
 */
function currentAssignments(db: Db, now: Date) {
  return db
    .select({
      email: principals.email,
      roleName: roles.name,
      startAt: activations.startAt,
      endAt: activations.endAt,
      justification: activations.justification,
    })
    .from(activations)
    .innerJoin(principals, eq(principals.id, activations.principalId))
    .innerJoin(roles, eq(roles.id, activations.roleId))
    .where(
      and(
        eq(activations.kind, 'assignment'),
        inArray(activations.status, OPEN_STATUSES),
        ne(activations.status, 'revoking'),
        isNull(roles.archivedAt),
        or(isNull(activations.endAt), gt(activations.endAt, now)),
      ),
    )
    .orderBy(asc(roles.name), asc(principals.email));
}

/** The diff, section by section in the order of the file. */
const diffOf = (run: Run) => [
  ...run.lines.admins,
  ...run.lines.principals,
  ...run.lines.roles,
  ...run.lines.eligibility,
  ...run.lines.activeAssignments,
  ...run.lines.alerts,
  ...run.lines.reviews,
];

function countChanges(lines: string[]) {
  return {
    added: lines.filter((l) => l.startsWith('+')).length,
    changed: lines.filter((l) => l.startsWith('~')).length,
    removed: lines.filter((l) => l.startsWith('-')).length,
  };
}

/** One eligibility or open assignment per principal and role: the key file and database are matched on. */
const pairKey = (x: Pick<AssignmentInput, 'email' | 'roleName'>) => `${x.email}\n${x.roleName}`;
