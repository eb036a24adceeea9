import { createHash, randomBytes } from 'node:crypto';
import { appendAudit } from '../audit/audit-log.ts';
import type { Clock } from '../clock.ts';
import type { Db, Tx } from '../db/client.ts';
import { and, eq, gt, isNull } from '../db/drizzle.ts';
import { ElevateError, forbidden } from '../errors.ts';
import { MINUTE_MS } from './duration.ts';
import { type StepUpPurpose, stepUps } from './step-up.sql.ts';

/** A one-time link works this long (issue 7). */
export const STEP_UP_LINK_MINUTES = 10;
/** A sign-in counts as fresh this long after the person authenticated (`auth_time`). */
export const STEP_UP_FRESH_MINUTES = 5;

/** A stored step-up. */
export type StepUp = typeof stepUps.$inferSelect;

/** What a surface shows as the *Verify your identity* button. */
export interface StepUpLink {
  url: string;
  expiresAt: Date;
  purpose: StepUpPurpose;
}

/**
 * The outcome "step-up needed": the action did not happen and waits for the person to verify
 * their identity at `link.url`. Surfaces catch it (`isStepUpNeeded`) and show the link as a
 * button (chat/messages.ts `stepUpMessage`); its message alone is also fit to show as it is.
 */
export class StepUpNeeded extends ElevateError {
  readonly link: StepUpLink;
  constructor(link: StepUpLink, what: string) {
    super(
      'step_up_needed',
      `${what} needs you to verify your identity first (a fresh sign-in with MFA): ${link.url} — the link works once, for ${STEP_UP_LINK_MINUTES} minutes.`,
    );
    this.name = 'StepUpNeeded';
    this.link = link;
  }
}

/** Whether an error is the "step-up needed" outcome. */
export const isStepUpNeeded = (error: unknown): error is StepUpNeeded => error instanceof StepUpNeeded;

/** The public side of step-up: where links point, and how long a fresh one is remembered. */
export interface StepUpOptions {
  /** Links are `${publicUrl}/auth/step-up/<id>`; undefined when step-up is not configured. */
  publicUrl: string | undefined;
  rememberMinutes: number;
}

/** Why opening a link or finishing a sign-in was refused, in the person's words. */
export type StepUpRefusal = { refused: string; stepUp?: StepUp };

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Whether a step-up was made for the action now asking for it. */
function samePurpose(
  purpose: StepUpPurpose,
  expected: { kind: 'activation'; roleName: string } | { kind: 'decision'; activationId: string },
): boolean {
  if (purpose.kind === 'activation')
    return expected.kind === 'activation' && purpose.roleName === expected.roleName;
  return expected.kind === 'decision' && purpose.activationId === expected.activationId;
}

/** The step-up's own words for what it lets happen. */
function purposeText(purpose: StepUpPurpose): string {
  if (purpose.kind === 'activation') return `Your request for ${purpose.roleName}`;
  return purpose.verdict === 'approve' ? 'Approving this request' : 'Denying this request';
}

/**
 * Step-up records: one-time links for a principal and a waiting action, the sign-in each one
 * started, and the check the core makes before an action of a role that requires MFA.
 */
export function createStepUpService(deps: { db: Db; clock: Clock; options: StepUpOptions }) {
  const { db, clock, options } = deps;

  /** The row behind a link's id, whatever its state. */
  async function byToken(token: string): Promise<StepUp | undefined> {
    const [row] = await db
      .select()
      .from(stepUps)
      .where(eq(stepUps.tokenHash, hashToken(token)));
    return row;
  }

  return {
    /** Whether links can be made (PUBLIC_URL and the identity provider are configured). */
    enabled: options.publicUrl !== undefined,

    /**
     * Core check, inside the action's transaction: true when `proof` (the id of a step-up just
     * verified by this principal for this action) is consumed now, or when the principal has a
     * verified step-up within the remember window.
     */
    async satisfied(
      tx: Tx,
      principalId: string,
      proof: string | undefined,
      expected: { kind: 'activation'; roleName: string } | { kind: 'decision'; activationId: string },
    ): Promise<boolean> {
      const now = clock();
      if (proof) {
        // The proof must be this principal's, verified, fresh, unused, and for this very action;
        // then it is consumed by a conditional update (two callers cannot both use it).
        const [row] = await tx
          .select()
          .from(stepUps)
          .where(
            and(
              eq(stepUps.id, proof),
              eq(stepUps.principalId, principalId),
              isNull(stepUps.usedAt),
              gt(stepUps.verifiedAt, new Date(now.getTime() - STEP_UP_FRESH_MINUTES * MINUTE_MS)),
            ),
          );
        if (!row || !samePurpose(row.purpose, expected)) return false;
        const [used] = await tx
          .update(stepUps)
          .set({ usedAt: now })
          .where(and(eq(stepUps.id, proof), isNull(stepUps.usedAt)))
          .returning({ id: stepUps.id });
        return used !== undefined;
      }
      if (options.rememberMinutes <= 0) return false;
      const [fresh] = await tx
        .select({ id: stepUps.id })
        .from(stepUps)
        .where(
          and(
            eq(stepUps.principalId, principalId),
            gt(stepUps.verifiedAt, new Date(now.getTime() - options.rememberMinutes * MINUTE_MS)),
          ),
        )
        .limit(1);
      return fresh !== undefined;
    },

    /**
     * The outcome for an action that needs a step-up: a new one-time link for `principalId`
     * and `purpose`, as a StepUpNeeded to throw. Without step-up configured, a refusal that
     * says so (never a silent pass).
     */
    async demand(principalId: string, purpose: StepUpPurpose): Promise<ElevateError> {
      const what = purposeText(purpose);
      if (!options.publicUrl) {
        return forbidden(
          `${what} needs a fresh sign-in with MFA, but Elevate has no identity provider configured for it; ask an admin to set up step-up MFA (OIDC_ISSUER).`,
        );
      }
      const token = randomBytes(32).toString('base64url');
      const now = clock();
      const expiresAt = new Date(now.getTime() + STEP_UP_LINK_MINUTES * MINUTE_MS);
      await db.insert(stepUps).values({
        tokenHash: hashToken(token),
        principalId,
        purpose,
        createdAt: now,
        expiresAt,
      });
      return new StepUpNeeded(
        { url: `${options.publicUrl}/auth/step-up/${token}`, expiresAt, purpose },
        what,
      );
    },

    /**
     * Opens a link once: records the sign-in it starts (`state`, `nonce`, PKCE verifier). A link
     * opened before, expired or unknown is refused.
     */
    async open(
      token: string,
      flow: { state: string; nonce: string; codeVerifier: string },
    ): Promise<StepUp | StepUpRefusal> {
      const now = clock();
      const [opened] = await db
        .update(stepUps)
        .set({ openedAt: now, ...flow })
        .where(
          and(eq(stepUps.tokenHash, hashToken(token)), isNull(stepUps.openedAt), gt(stepUps.expiresAt, now)),
        )
        .returning();
      if (opened) return opened;
      const row = await byToken(token);
      if (!row) return { refused: 'This verification link is not valid. Start again from chat.' };
      if (row.openedAt) {
        return {
          refused: 'This verification link was already used; each link works once. Start again from chat.',
          stepUp: row,
        };
      }
      return {
        refused: `This verification link expired (links work for ${STEP_UP_LINK_MINUTES} minutes). Start again from chat.`,
        stepUp: row,
      };
    },

    /** The step-up whose sign-in carried this `state`. */
    async byState(state: string): Promise<StepUp | undefined> {
      const [row] = await db.select().from(stepUps).where(eq(stepUps.state, state));
      return row;
    },

    /**
     * Records how a sign-in ended, once: verified (with what the identity provider said) or
     * refused (with why), each with its audit event. False when it had already ended (a replay).
     */
    async finish(
      stepUp: StepUp,
      actorLabel: string,
      result: { verified: { authTime: Date; amr: string[]; acr?: string } } | { refused: string },
    ): Promise<boolean> {
      const now = clock();
      return db.transaction(async (tx) => {
        const verified = 'verified' in result ? result.verified : undefined;
        const [row] = await tx
          .update(stepUps)
          .set({
            finishedAt: now,
            verifiedAt: verified ? now : null,
            authTime: verified?.authTime ?? null,
            refusal: 'refused' in result ? result.refused : null,
          })
          .where(and(eq(stepUps.id, stepUp.id), isNull(stepUps.finishedAt)))
          .returning();
        if (!row) return false;
        await appendAudit(tx, {
          actor: actorLabel,
          action: verified ? 'step_up.verified' : 'refused.step_up',
          subjectType: 'principal',
          subjectId: stepUp.principalId,
          data: {
            stepUp: stepUp.id,
            purpose: stepUp.purpose.kind,
            ...(stepUp.purpose.kind === 'activation'
              ? { role: stepUp.purpose.roleName }
              : { activation: stepUp.purpose.activationId, verdict: stepUp.purpose.verdict }),
            ...(verified
              ? { authTime: verified.authTime.toISOString(), amr: verified.amr, acr: verified.acr ?? null }
              : { reason: 'refused' in result ? result.refused : '' }),
          },
          at: now,
        });
        return true;
      });
    },
  };
}

/** The step-up service's interface. */
export type StepUpService = ReturnType<typeof createStepUpService>;
