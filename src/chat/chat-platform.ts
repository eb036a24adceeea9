import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import type { ActivationView } from '../elevation/activation-repository.ts';
import type { ActivationService } from '../elevation/activation-service.ts';
import type { AdminService } from '../elevation/admin-service.ts';
import type { AlertService } from '../elevation/alert-service.ts';
import type { notifications } from '../elevation/notification.sql.ts';
import type { Principal } from '../elevation/principal-repository.ts';
import type { ReviewService } from '../elevation/review-service.ts';
import type { Route } from '../http/server.ts';
import type { Logger } from '../log.ts';
import type { ChatMessage } from './chat-message-repository.ts';
import { approvalCard, type Message, reviewRequest } from './messages.ts';

/** A chat surface in one process (Slack, Teams): its routes on the one server, its outbox delivery, start/stop. */
export interface ChatSurface {
  routes: Route[];
  delivery: ChatPlatform;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What a chat surface is built from: the configuration and the core services. */
export interface SurfaceDeps {
  config: Config;
  db: Db;
  clock: Clock;
  log: Logger;
  activations: ActivationService;
  admin: AdminService;
  alerts: AlertService;
  reviews: ReviewService;
}

/** One outbox row as the delivery job hands it to a platform. */
export type Notification = typeof notifications.$inferSelect;

/**
 * The port every chat platform implements for the outbox. `deliver` renders the notification's
 * kind into the platform's message and sends it (or updates the cards it concerns); it answers
 * `no_identity` when the recipient has no account on this platform. Throwing means "try again
 * later"; a `DeliveryError` can say when, or that retrying is pointless.
 */
export interface ChatPlatform {
  name: 'slack' | 'teams';
  deliver(notification: Notification, recipient: Principal): Promise<'sent' | 'no_identity'>;
}

/** A failed delivery with a hint for the retry: Slack's Retry-After, or no retry at all. */
export class DeliveryError extends Error {
  readonly retryAfterMs: number | undefined;
  readonly permanent: boolean;
  constructor(
    message: string,
    options: { retryAfterMs?: number; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DeliveryError';
    this.retryAfterMs = options.retryAfterMs;
    this.permanent = options.permanent ?? false;
  }
}

/** How far back an approver card shows the requester's activations of the role. */
const HISTORY_MS = 30 * 24 * 60 * 60_000;

/** The approver card of a request as it is now (pending with buttons, or its outcome), on every platform. */
export async function approvalCardOf(
  activations: ActivationService,
  view: ActivationView,
  now: Date,
): Promise<Message> {
  const a = view.activation;
  const history = await activations.history(a.principalId, a.roleId, new Date(now.getTime() - HISTORY_MS));
  return approvalCard(view, history, await activations.decisions(a.id));
}

/**
 * A review notice as it is now: the items it listed, each with its decision so far (a decided one
 * shows its outcome in place of the buttons), from the notice's stored data.
 */
export async function reviewNoticeOf(reviews: ReviewService, stored: ChatMessage): Promise<Message> {
  const data = (stored.data.data ?? {}) as Record<string, unknown>;
  const listed = (Array.isArray(data.items) ? data.items : []) as { itemId: string }[];
  const now = new Map((await reviews.items(listed.map((i) => i.itemId))).map((i) => [i.itemId, i]));
  return reviewRequest(stored.purpose, { ...data, items: listed.map((i) => now.get(i.itemId) ?? i) });
}

/** How one platform sends each kind of notification; `platformDelivery` picks the one a row needs. */
export interface PlatformSends {
  /** An approver card (a request, or a reminder: the card again, updated like the first). */
  card(n: Notification, recipient: Principal, view: ActivationView): Promise<'sent' | 'no_identity'>;
  /** Updates the recipient's copies of a decided request's card in place (`n`: the notification). */
  updateCards(recipient: Principal, view: ActivationView, n: Notification): Promise<unknown>;
  /** Shows the recipient's review notices that list this item again, with its outcome (`review_decided`). */
  updateReviewNotices(recipient: Principal, itemId: string): Promise<unknown>;
  /** A security alert raised or resolved (alert-delivery.ts: the admin channel, or each admin). */
  alert(n: Notification, recipient: Principal): Promise<'sent' | 'no_identity'>;
  /** Any other notice, as a message. */
  message(
    n: Notification,
    recipient: Principal,
    view: ActivationView | undefined,
  ): Promise<'sent' | 'no_identity'>;
  /** The platform's error as a DeliveryError when it says when (or whether) to retry; else as it is. */
  asDeliveryError(error: unknown): unknown;
}

/** A platform's outbox port from its sends: the routing by kind is the same on every platform. */
export function platformDelivery(
  name: ChatPlatform['name'],
  activations: ActivationService,
  sends: PlatformSends,
): ChatPlatform {
  return {
    name,
    async deliver(n, recipient) {
      try {
        if (n.kind === 'alert_raised' || n.kind === 'alert_resolved') return await sends.alert(n, recipient);
        const view = n.activationId ? await activations.get(n.activationId) : undefined;
        if ((n.kind === 'approval_requested' || n.kind === 'approval_reminder') && view) {
          return await sends.card(n, recipient, view);
        }
        if (n.kind === 'request_decided' && view) {
          await sends.updateCards(recipient, view, n);
          return 'sent';
        }
        if (n.kind === 'review_decided') {
          await sends.updateReviewNotices(recipient, String(n.data.itemId ?? ''));
          return 'sent';
        }
        return await sends.message(n, recipient, view);
      } catch (error) {
        throw sends.asDeliveryError(error);
      }
    },
  };
}
