import { z } from 'zod';
import type { Db } from '../../src/db/client.ts';
import { createActivationService } from '../../src/elevation/activation-service.ts';
import { type Actor, cliActor, principalActor } from '../../src/elevation/actor.ts';
import { createAdminService, type RoleInput } from '../../src/elevation/admin-service.ts';
import { createAlertService } from '../../src/elevation/alert-service.ts';
import { MINUTE_MS } from '../../src/elevation/duration.ts';
import { ensurePrincipal } from '../../src/elevation/principal-repository.ts';
import { createReconcileService } from '../../src/elevation/reconcile-service.ts';
import { createReviewService } from '../../src/elevation/review-service.ts';
import { createStepUpService, type StepUpOptions } from '../../src/elevation/step-up-service.ts';
import type { GrantProvider, GrantTarget } from '../../src/grants/grant-provider.ts';
import { createProviderRegistry, PROVIDERS } from '../../src/grants/registry.ts';

/** A grant provider that remembers what it holds and counts calls: a real port implementation. */
export function createRecordingProvider(type = 'recording') {
  const held = new Set<string>();
  const calls: { op: 'grant' | 'revoke' | 'extend'; target: GrantTarget }[] = [];
  let failNext: Error[] = [];
  const provider: GrantProvider = {
    type,
    async grant(target) {
      calls.push({ op: 'grant', target });
      const failure = failNext.shift();
      if (failure) throw failure;
      held.add(`${target.principal.email}/${target.role.name}`);
    },
    async revoke(target) {
      calls.push({ op: 'revoke', target });
      const failure = failNext.shift();
      if (failure) throw failure;
      held.delete(`${target.principal.email}/${target.role.name}`);
    },
    async extend(target) {
      calls.push({ op: 'extend', target });
      const failure = failNext.shift();
      if (failure) throw failure;
    },
    async check(target) {
      return held.has(`${target.principal.email}/${target.role.name}`);
    },
  };
  return {
    provider,
    held,
    calls,
    /** The next calls throw these errors, in order. */
    failWith: (...errors: Error[]) => {
      failNext = errors;
    },
  };
}

/**
 * The core services on a test database, with a clock the test moves. `options.env` switches on
 * real providers beside the recording one (a target database, a fake Graph or Slack); step-up
 * MFA is off unless `options.stepUp` says where links point (as PUBLIC_URL does in production).
 */
export function createCore(
  db: Db,
  start = new Date('2026-06-01T09:00:00Z'),
  options: { stepUp?: StepUpOptions; env?: NodeJS.ProcessEnv } = {},
) {
  const { stepUp = { publicUrl: undefined, rememberMinutes: 0 }, env = {} } = options;
  let now = start;
  const clock = () => now;
  const recording = createRecordingProvider();
  const providers = createProviderRegistry({
    env,
    definitions: [
      ...PROVIDERS,
      { type: 'recording', roleConfig: z.object({}).strict(), create: () => recording.provider },
    ],
  });
  const stepUps = createStepUpService({ db, clock, options: stepUp });
  const activations = createActivationService({ db, providers, clock, stepUps });
  const admin = createAdminService({ db, providers, clock, settle: activations.settle });
  const reconcile = createReconcileService({ db, providers, clock });
  const alerts = createAlertService({ db, providers, clock, reconcile });
  const reviews = createReviewService({ db, providers, clock });
  const cli = cliActor('test');
  return {
    db,
    clock,
    providers,
    recording,
    stepUps,
    activations,
    admin,
    alerts,
    reviews,
    cli,
    /** Moves the clock forward. */
    advance(minutes: number) {
      now = new Date(now.getTime() + minutes * MINUTE_MS);
    },
    /** A principal acting from chat. */
    async person(email: string): Promise<Actor> {
      return principalActor(await ensurePrincipal(db, email));
    },
    /** A role with settings (PIM defaults for the rest) on the recording provider. */
    async role(name: string, settings: RoleInput['settings'] = {}, extra: Partial<RoleInput> = {}) {
      await admin.saveRole(cli, { name, provider: { type: 'recording' }, settings, ...extra });
    },
    /** Makes `email` eligible for `role` (permanent by default). */
    async eligible(email: string, roleName: string, endAt: Date | null = null) {
      await admin.assignEligibility(cli, { email, roleName, endAt });
    },
  };
}
