import { createHash } from 'node:crypto';
import type { WebClient } from '@slack/web-api';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import type { ActivationView } from '../../elevation/activation-repository.ts';
import type { ActivationService } from '../../elevation/activation-service.ts';
import type { AlertService } from '../../elevation/alert-service.ts';
import type { Principal } from '../../elevation/principal-repository.ts';
import type { ReviewService } from '../../elevation/review-service.ts';
import type { Logger } from '../../log.ts';
import { createAlertDelivery } from '../alert-delivery.ts';
import {
  claimSharedMessage,
  claimSharedUpdate,
  completeSharedMessage,
  findChatMessages,
  findReviewNotices,
  releaseSharedMessage,
  saveChatMessage,
} from '../chat-message-repository.ts';
import {
  approvalCardOf,
  type ChatPlatform,
  DeliveryError,
  type Notification,
  platformDelivery,
  reviewNoticeOf,
} from '../chat-platform.ts';
import { notificationMessage } from '../messages.ts';
import { renderMessage } from './render.ts';
import type { SlackIdentity } from './slack-identity.ts';

const APPROVAL_CARD = 'approval_card';
/**
 * A channel card claimed this long ago and still not posted was left by a delivery that died
 * mid-way (a post takes seconds at most); another approver's notification may take it over.
 */
const CLAIM_STALE_MS = 60_000;

/** What Slack delivery needs. `publishHome` refreshes a user's App Home after a change. */
export interface SlackDeliveryDeps {
  client: WebClient;
  db: Db;
  clock: Clock;
  log: Logger;
  activations: ActivationService;
  reviews: ReviewService;
  alerts: Pick<AlertService, 'get'>;
  identity: SlackIdentity;
  publishHome: (userId: string, principal: Principal) => Promise<void>;
}

/**
 * The Slack side of the outbox: approver cards (DM per approver, or one post to the role's
 * approvals channel), in-place updates after a decision (`request_decided`, and `review_decided`
 * for review notices), alert cards (DM per admin, or one post to the alerts channel), and
 * requester and admin messages; every posted message is remembered in chat_messages.
 */
export function createSlackDelivery(deps: SlackDeliveryDeps): ChatPlatform {
  const { client, db, activations, identity } = deps;

  async function post(channel: string, message: ReturnType<typeof renderMessage>) {
    const answer = await client.chat.postMessage({ channel, ...message });
    if (!answer.ts || !answer.channel) throw new Error('chat.postMessage returned no ts');
    return { channel: answer.channel, ts: answer.ts };
  }

  async function dm(userId: string) {
    const opened = await client.conversations.open({ users: userId });
    const channel = opened.channel?.id;
    if (!channel) throw new Error('conversations.open returned no channel');
    return channel;
  }

  async function deliverCard(n: Notification, recipient: Principal, view: ActivationView) {
    const card = renderMessage(await approvalCardOf(activations, view, deps.clock()));
    const shared = view.role.settings.approvalChannel;
    if (shared) {
      // One post for the channel, whichever approver's row claims it first, on whichever replica.
      // The others are done: the claimant's own row is retried until the card is posted.
      const now = deps.clock();
      const claim = await claimSharedMessage(db, {
        platform: 'slack',
        activationId: view.activation.id,
        purpose: APPROVAL_CARD,
        channel: shared,
        claimant: n.id,
        now,
        staleBefore: new Date(now.getTime() - CLAIM_STALE_MS),
      });
      if (!claim) return 'sent' as const;
      try {
        const at = await post(shared, card);
        await completeSharedMessage(db, claim, { channel: at.channel, messageId: at.ts });
      } catch (error) {
        await releaseSharedMessage(db, claim).catch(() => {});
        throw error;
      }
      return 'sent' as const;
    }
    const userId = await identity.slackUserOf(recipient);
    if (!userId) return 'no_identity' as const;
    const at = await post(await dm(userId), card);
    await saveChatMessage(db, {
      platform: 'slack',
      activationId: n.activationId,
      recipientId: recipient.id,
      channel: at.channel,
      messageId: at.ts,
      purpose: APPROVAL_CARD,
    });
    return 'sent' as const;
  }

  /**
   * Every copy of the card this recipient can see (theirs and the channel's) shows the outcome.
   * The channel's copy is every approver's: it is updated once per content, not once per approver.
   */
  async function updateCards(recipient: Principal, view: ActivationView, n: Notification) {
    const copies = await findChatMessages(db, {
      platform: 'slack',
      activationId: view.activation.id,
      purpose: APPROVAL_CARD,
      recipientId: recipient.id,
    });
    if (copies.length === 0) return;
    const card = renderMessage(await approvalCardOf(activations, view, deps.clock()));
    const shows = createHash('sha256').update(JSON.stringify(card)).digest('base64url');
    for (const copy of copies) {
      if (copy.recipientId === null && !(await claimSharedUpdate(db, copy.id, { shows, claimant: n.id })))
        continue;
      await client.chat.update({ channel: copy.channel, ts: copy.messageId, ...card });
    }
  }

  /** The recipient's review notices listing the item, shown again with its outcome. */
  async function updateReviewNotices(recipient: Principal, itemId: string) {
    for (const notice of await findReviewNotices(db, {
      platform: 'slack',
      recipientId: recipient.id,
      itemId,
    })) {
      const message = renderMessage(await reviewNoticeOf(deps.reviews, notice));
      await client.chat.update({ channel: notice.channel, ts: notice.messageId, ...message });
    }
  }

  async function deliverMessage(n: Notification, recipient: Principal, view: ActivationView | undefined) {
    const userId = await identity.slackUserOf(recipient);
    if (!userId) return 'no_identity' as const;
    const now = deps.clock();
    if (view) {
      // Earlier messages about this activation lose buttons that no longer apply (Cancel once decided…).
      const earlier = await findChatMessages(db, { platform: 'slack', activationId: view.activation.id });
      for (const m of earlier.filter((m) => m.recipientId === recipient.id && m.purpose !== APPROVAL_CARD)) {
        const data = (m.data.data ?? {}) as Record<string, unknown>;
        await client.chat.update({
          channel: m.channel,
          ts: m.messageId,
          ...renderMessage(notificationMessage(m.purpose, data, view, now)),
        });
      }
    }
    const at = await post(await dm(userId), renderMessage(notificationMessage(n.kind, n.data, view, now)));
    await saveChatMessage(db, {
      platform: 'slack',
      activationId: n.activationId,
      recipientId: recipient.id,
      channel: at.channel,
      messageId: at.ts,
      purpose: n.kind,
      data: { data: n.data },
    });
    // The App Home shows the same board; a failure here must not fail (and repeat) the message.
    await deps
      .publishHome(userId, recipient)
      .catch((error) => deps.log.warn({ err: error }, 'App Home refresh failed'));
    return 'sent' as const;
  }

  const alert = createAlertDelivery(deps, {
    platform: 'slack',
    async toChannel(channel, message) {
      const at = await post(channel, renderMessage(message));
      return { channel: at.channel, messageId: at.ts };
    },
    async toPerson(recipient, message) {
      const userId = await identity.slackUserOf(recipient);
      if (!userId) return 'no_identity';
      const at = await post(await dm(userId), renderMessage(message));
      return { channel: at.channel, messageId: at.ts };
    },
    async update(copy, message) {
      await client.chat.update({ channel: copy.channel, ts: copy.messageId, ...renderMessage(message) });
    },
  });

  return platformDelivery('slack', activations, {
    card: deliverCard,
    updateCards,
    updateReviewNotices,
    alert,
    message: deliverMessage,
    asDeliveryError,
  });
}

/** Slack's 429 carries Retry-After (seconds); the outbox waits that long before the next try. */
function asDeliveryError(error: unknown): unknown {
  const e = error as { code?: string; retryAfter?: number; data?: { error?: string } };
  if (e.code === 'slack_webapi_rate_limited_error') {
    return new DeliveryError('Slack rate limit', { retryAfterMs: (e.retryAfter ?? 1) * 1000, cause: error });
  }
  if (e.code === 'slack_webapi_platform_error') {
    return new DeliveryError(`Slack answered ${e.data?.error ?? 'an error'}`, { cause: error });
  }
  return error;
}
