import { readFile } from 'node:fs/promises';
import { stepUpSettings } from './auth/step-up-env.ts';
import { createStepUpRoutes } from './auth/step-up-routes.ts';
import { slackChatOn } from './chat/slack/slack-env.ts';
import { teamsChatOn } from './chat/teams/teams-env.ts';
import { type Clock, systemClock } from './clock.ts';
import type { Config } from './config.ts';
import { type Db, openDatabase } from './db/client.ts';
import { createActivationService } from './elevation/activation-service.ts';
import { SYSTEM } from './elevation/actor.ts';
import { createAdminService } from './elevation/admin-service.ts';
import { createAlertService } from './elevation/alert-service.ts';
import { createReconcileService } from './elevation/reconcile-service.ts';
import { createReminderService } from './elevation/reminder-service.ts';
import { createReviewService } from './elevation/review-service.ts';
import { listRoles } from './elevation/role-repository.ts';
import { createStepUpService } from './elevation/step-up-service.ts';
import { createProviderRegistry, type ProviderCall } from './grants/registry.ts';
import { startFront } from './http/front.ts';
import { createDatabaseReadiness, createHttpServer, type Route } from './http/server.ts';
import { accessReviewsJob } from './jobs/access-reviews.ts';
import { createNotificationDelivery } from './jobs/deliver-notifications.ts';
import { evaluateAlertsJob } from './jobs/evaluate-alerts.ts';
import { lifecycleJobs } from './jobs/lifecycle-jobs.ts';
import { reconcileGrantsJob } from './jobs/reconcile-grants.ts';
import { SCHEDULES, startScheduler } from './jobs/scheduler.ts';
import { createLogger, errorLine, type Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createPolicyService, noChangesMessage, type PolicyService } from './policy/policy-service.ts';

/** How long a graceful shutdown may take before the process gives up and exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000;

/**
 * The core wired by hand: grant providers and the services every surface calls. The CLI builds
 * the same set, so a command and the server always agree.
 */
export function createServices(deps: {
  config: Config;
  db: Db;
  clock: Clock;
  env?: NodeJS.ProcessEnv;
  observe?: (call: ProviderCall) => void;
}) {
  const { db, clock } = deps;
  // Providers switch on from the environment; each call is observed (logs, metrics).
  const providers = createProviderRegistry({ env: deps.env ?? process.env, observe: deps.observe });
  // Step-up MFA: links point at PUBLIC_URL; without it, roles that require MFA are refused.
  const stepUp = stepUpSettings(deps.config);
  const stepUps = createStepUpService({
    db,
    clock,
    options: { publicUrl: stepUp?.publicUrl, rememberMinutes: stepUp?.rememberMinutes ?? 0 },
  });
  const activations = createActivationService({
    db,
    providers,
    clock,
    stepUps,
    inFlightLeaseMs: deps.config.ELEVATE_IN_FLIGHT_LEASE,
  });
  const admin = createAdminService({
    db,
    providers,
    clock,
    settle: activations.settle,
    inFlightLeaseMs: deps.config.ELEVATE_IN_FLIGHT_LEASE,
  });
  const policy = createPolicyService({ db, providers, clock, admin });
  const reconcile = createReconcileService({ db, providers, clock });
  const alerts = createAlertService({ db, providers, clock, reconcile });
  const reviews = createReviewService({ db, providers, clock });
  return { providers, activations, admin, policy, stepUps, alerts, reviews };
}

/** The services of one process. */
export type Services = ReturnType<typeof createServices>;

/** A start-up problem the operator must fix, one line each (a bad policy file, say). */
export class StartupError extends Error {
  readonly lines: string[];
  constructor(lines: string[]) {
    super(lines.join('\n'));
    this.name = 'StartupError';
    this.lines = lines;
  }
}

/**
 * Starts everything `serve` runs: database (migrated), services, the policy file, the HTTP
 * server. On failure it closes what it opened and throws.
 */
export async function start(config: Config, log: Logger): Promise<{ port: number; stop(): Promise<void> }> {
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.ELEVATE_DATA_DIR });
  try {
    await database.migrate();
    log.info({ database: database.kind }, 'database migrated');
    const metrics = createMetrics();
    const services = createServices({
      config,
      db: database.db,
      clock: systemClock,
      observe: providerCallObserver(log, metrics),
    });
    if (config.ELEVATE_POLICY_FILE) await applyPolicyFile(services.policy, config.ELEVATE_POLICY_FILE, log);

    // Chat platforms whose credentials are set, one line each; they mount their routes below.
    // Each is loaded only when it is on: Bolt and the Teams SDK cost 15–20 MB of memory each.
    const { activations, admin, alerts, reviews } = services;
    const surface = { config, db: database.db, clock: systemClock, log, activations, admin, alerts, reviews };
    const slack = slackChatOn(config)
      ? (await import('./chat/slack/slack-platform.ts')).createSlackPlatform(surface)
      : undefined;
    const teams = teamsChatOn(config)
      ? (await import('./chat/teams/teams-platform.ts')).createTeamsPlatform(surface)
      : undefined;
    const platforms = [slack, teams].filter((p) => p !== undefined);
    const routes: Route[] = platforms.flatMap((p) => p.routes);
    const stepUp = stepUpSettings(config);
    if (stepUp) {
      routes.push(
        ...createStepUpRoutes({
          db: database.db,
          clock: systemClock,
          log,
          settings: stepUp,
          stepUps: services.stepUps,
          activations,
        }),
      );
      log.info(`step-up MFA on (${stepUp.issuer}; redirect URI ${stepUp.publicUrl}/auth/callback)`);
    } else {
      const mfaRoles = (await listRoles(database.db)).filter(
        (r) => r.settings.requireMfa || r.settings.requireMfaToApprove,
      );
      if (mfaRoles.length > 0) {
        log.warn(
          `roles ${mfaRoles.map((r) => r.name).join(', ')} require MFA, but step-up MFA is not configured (PUBLIC_URL, OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET): their requests and decisions are refused`,
        );
      }
    }
    if (platforms.length === 0) {
      log.warn(
        'no chat platform configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for Slack, or TEAMS_CLIENT_ID, TEAMS_CLIENT_SECRET and TEAMS_TENANT_ID for Teams; serving health, metrics and the CLI-managed core',
      );
    }
    const server = createHttpServer({
      log,
      metrics,
      readiness: createDatabaseReadiness(database.db, log),
      routes,
    });
    for (const platform of platforms) await platform.start();
    const deliver = createNotificationDelivery({
      db: database.db,
      clock: systemClock,
      log,
      platforms: platforms.map((p) => p.delivery),
      leaseMs: config.ELEVATE_IN_FLIGHT_LEASE,
    });
    // The loop: each job claims its own rows, so every replica runs the same schedules.
    const loop = startScheduler(
      [
        ...lifecycleJobs(
          activations,
          createReminderService({
            db: database.db,
            clock: systemClock,
            settings: {
              expiryWarningMinutes: config.ELEVATE_EXPIRY_WARNING,
              reminderAfterMinutes: config.ELEVATE_REMINDER_AFTER,
              maxReminders: config.ELEVATE_REMINDER_MAX,
            },
          }),
        ).map((job) => ({ job, schedule: SCHEDULES.lifecycle })),
        {
          job: reconcileGrantsJob({ db: database.db, providers: services.providers, clock: systemClock }),
          schedule: SCHEDULES.reconcile,
        },
        { job: evaluateAlertsJob(services.alerts), schedule: SCHEDULES.alerts },
        { job: accessReviewsJob(services.reviews), schedule: SCHEDULES.reviews },
        ...(platforms.length > 0
          ? [
              {
                job: { name: 'deliver-notifications', run: (stopping: AbortSignal) => deliver.run(stopping) },
                schedule: SCHEDULES.deliverNotifications,
              },
            ]
          : []),
      ],
      log,
    );
    // With Slack in HTTP mode the public port is the front's (a thread of its own that acks
    // Slack's commands and clicks) and this server listens on loopback behind it.
    const front = slack?.front;
    let port: number;
    let stopFront = async () => {};
    if (front) {
      const upstreamPort = await server.listen(0, '127.0.0.1');
      const started = await startFront(
        {
          port: config.PORT,
          upstreamPort,
          // Plain values only: they are copied into the worker (`receive` stays on this thread).
          slack: {
            path: front.path,
            signingSecret: front.signingSecret,
            maxSkewSeconds: front.maxSkewSeconds,
          },
        },
        { log, metrics, receiveSlack: front.receive },
      );
      port = started.port;
      stopFront = () => started.close(3_000);
    } else {
      port = await server.listen(config.PORT);
    }
    log.info({ port }, `listening on port ${port}`);
    return {
      port,
      async stop() {
        // The loop stops claiming at once and finishes the batch in hand while in-flight requests
        // get 3 s; then the database up to 5 s: together inside the deadline.
        const loopStopped = loop.stop();
        await stopFront();
        await server.close(3_000);
        await loopStopped;
        for (const platform of platforms) await platform.stop();
        await services.providers.close();
        await database.close();
      },
    };
  } catch (error) {
    await database.close().catch(() => {});
    throw error;
  }
}

/**
 * Metrics for every grant provider call; a log line for each failure, but successes only at
 * debug level: the loop revokes thousands a second in a burst, and a line each would cost more
 * than the calls (the loop logs one line per run instead).
 */
export function providerCallObserver(log: Logger, metrics: Metrics): (call: ProviderCall) => void {
  return (call) => {
    metrics.observeProviderCall(call);
    const { outcome, error, ...fields } = call;
    if (outcome === 'ok') log.debug(fields, `${call.provider} ${call.op}: ok`);
    else log.warn({ ...fields, outcome }, `${call.provider} ${call.op} failed (${outcome}): ${error}`);
  };
}

/** Applies the policy file named by ELEVATE_POLICY_FILE; its problems stop the start. */
async function applyPolicyFile(policy: PolicyService, path: string, log: Logger): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? errorLine(error);
    throw new StartupError([`ELEVATE_POLICY_FILE: cannot read ${path} (${reason})`]);
  }
  const result = await policy.apply({ actor: SYSTEM, text, fileName: path });
  if (!result.ok) {
    throw new StartupError(
      result.problems.map((problem) => (problem.startsWith(path) ? problem : `${path}: ${problem}`)),
    );
  }
  if (result.changes.length === 0) log.info(noChangesMessage(path));
  else
    log.info({ changes: result.changes }, `policy file ${path} applied: ${result.changes.length} change(s)`);
}

/**
 * `elevate serve`: runs until SIGTERM or SIGINT, then shuts down gracefully. Resolves with the
 * exit code: 0 after a clean stop, 1 when start-up failed (each problem logged).
 */
export async function serve(config: Config): Promise<number> {
  const log = createLogger(config.LOG_LEVEL);
  // Listen for signals from the first moment: one arriving during start-up stops right after it.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => resolve(signal));
  });
  let app: Awaited<ReturnType<typeof start>>;
  try {
    app = await start(config, log);
  } catch (error) {
    if (error instanceof StartupError) for (const line of error.lines) log.fatal(line);
    else log.fatal({ err: error }, `start-up failed: ${errorLine(error)}`);
    return 1;
  }
  const signal = await signalled;
  log.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    log.error(`shutdown took longer than ${SHUTDOWN_DEADLINE_MS / 1000} s; exiting anyway`);
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS);
  deadline.unref();
  await app.stop();
  clearTimeout(deadline);
  log.info('stopped');
  return 0;
}
