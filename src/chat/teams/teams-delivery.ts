import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import type { ActivationView } from '../../elevation/activation-repository.ts';
import type { ActivationService } from '../../elevation/activation-service.ts';
import type { AlertService } from '../../elevation/alert-service.ts';
import type { Principal } from '../../elevation/principal-repository.ts';
import type { ReviewService } from '../../elevation/review-service.ts';
import { createAlertDelivery } from '../alert-delivery.ts';
import { findChatMessages, findReviewNotices, saveChatMessage } from '../chat-message-repository.ts';
import {
  approvalCardOf,
  type ChatPlatform,
  DeliveryError,
  type Notification,
  platformDelivery,
  reviewNoticeOf,
} from '../chat-platform.ts';
import { type CommandStyle, notificationMessage } from '../messages.ts';
import { type Connector, ConnectorError } from './connector.ts';
import { cardActivity, renderMessage } from './render.ts';
import { conversationServiceUrl } from './teams-conversation-repository.ts';
import type { TeamsIdentity } from './teams-identity.ts';

const APPROVAL_CARD = 'approval_card';

/** How Teams people write commands: bare words in the chat with the bot. */
export const teamsCommand: CommandStyle = (words) => words || 'elevate';

/** An approver's card as Teams shows it: the current state, refreshed for them when they look. */
export async function approverCard(
  activations: ActivationService,
  view: ActivationView,
  now: Date,
  refreshFor: string[],
  notice?: string,
) {
  const message = await approvalCardOf(activations, view, now);
  return {
    message,
    card: renderMessage(message, {
      refresh: { activationId: view.activation.id, userIds: refreshFor },
      notice,
    }),
  };
}

/**
 * The Teams side of the outbox: approver cards in each approver's 1:1 chat (created when they
 * have none yet), cards updated in place after a decision (`request_decided`, and `review_decided`
 * for review notices), alert cards (each admin's chat, or one post to the alerts channel or group
 * chat), and requester and admin messages. Posted activities are remembered in chat_messages for
 * later updates.
 */
export function createTeamsDelivery(deps: {
  db: Db;
  clock: Clock;
  activations: ActivationService;
  reviews: ReviewService;
  alerts: Pick<AlertService, 'get'>;
  identity: TeamsIdentity;
  connector: Connector;
}): ChatPlatform {
  const { db, activations, identity, connector } = deps;

  async function deliverCard(n: Notification, recipient: Principal, view: ActivationView) {
    const to = await identity.conversationOf(recipient);
    if (!to) return 'no_identity' as const;
    const { message, card } = await approverCard(activations, view, deps.clock(), [to.userId]);
    const id = await connector.send(to.serviceUrl, to.conversationId, cardActivity(message, card));
    await saveChatMessage(db, {
      platform: 'teams',
      activationId: n.activationId,
      recipientId: recipient.id,
      channel: to.conversationId,
      messageId: id,
      purpose: APPROVAL_CARD,
      data: { serviceUrl: to.serviceUrl, userId: to.userId },
    });
    return 'sent' as const;
  }

  async function updateCards(recipient: Principal, view: ActivationView) {
    const copies = await findChatMessages(db, {
      platform: 'teams',
      activationId: view.activation.id,
      purpose: APPROVAL_CARD,
      recipientId: recipient.id,
    });
    for (const copy of copies) {
      const userId = String(copy.data.userId ?? '');
      const { message, card } = await approverCard(activations, view, deps.clock(), userId ? [userId] : []);
      await connector.update(
        String(copy.data.serviceUrl),
        copy.channel,
        copy.messageId,
        cardActivity(message, card),
      );
    }
  }

  /** The recipient's review notices listing the item, shown again with its outcome. */
  async function updateReviewNotices(recipient: Principal, itemId: string) {
    for (const notice of await findReviewNotices(db, {
      platform: 'teams',
      recipientId: recipient.id,
      itemId,
    })) {
      const message = await reviewNoticeOf(deps.reviews, notice);
      await connector.update(
        String(notice.data.serviceUrl),
        notice.channel,
        notice.messageId,
        cardActivity(message),
      );
    }
  }

  async function deliverMessage(n: Notification, recipient: Principal, view: ActivationView | undefined) {
    const to = await identity.conversationOf(recipient);
    if (!to) return 'no_identity' as const;
    const now = deps.clock();
    if (view) {
      // Earlier messages about this activation lose buttons that no longer apply (Cancel once decided…).
      const earlier = await findChatMessages(db, { platform: 'teams', activationId: view.activation.id });
      for (const m of earlier.filter((m) => m.recipientId === recipient.id && m.purpose !== APPROVAL_CARD)) {
        const data = (m.data.data ?? {}) as Record<string, unknown>;
        const message = notificationMessage(m.purpose, data, view, now, teamsCommand);
        await connector.update(String(m.data.serviceUrl), m.channel, m.messageId, cardActivity(message));
      }
    }
    const message = notificationMessage(n.kind, n.data, view, now, teamsCommand);
    const id = await connector.send(to.serviceUrl, to.conversationId, cardActivity(message));
    await saveChatMessage(db, {
      platform: 'teams',
      activationId: n.activationId,
      recipientId: recipient.id,
      channel: to.conversationId,
      messageId: id,
      purpose: n.kind,
      data: { data: n.data, serviceUrl: to.serviceUrl },
    });
    return 'sent' as const;
  }

  const alert = createAlertDelivery(deps, {
    platform: 'teams',
    async toChannel(channel, message) {
      // A proactive post needs the conversation's service URL, which only Teams' own activities
      // from there tell: without one, the delivery fails (and is retried) with what to do.
      const serviceUrl = await conversationServiceUrl(db, channel);
      if (!serviceUrl) {
        throw new DeliveryError(
          `Elevate has not heard from the Teams alerts conversation ${channel}: add the Elevate app to its team (or mention @Elevate there once) so Teams tells Elevate how to reach it`,
        );
      }
      const id = await connector.send(serviceUrl, channel, cardActivity(message));
      return { channel, messageId: id, data: { serviceUrl } };
    },
    async toPerson(recipient, message) {
      const to = await identity.conversationOf(recipient);
      if (!to) return 'no_identity';
      const id = await connector.send(to.serviceUrl, to.conversationId, cardActivity(message));
      return { channel: to.conversationId, messageId: id, data: { serviceUrl: to.serviceUrl } };
    },
    async update(copy, message) {
      await connector.update(
        String(copy.data?.serviceUrl),
        copy.channel,
        copy.messageId,
        cardActivity(message),
      );
    },
  });

  return platformDelivery('teams', activations, {
    card: deliverCard,
    updateCards,
    updateReviewNotices,
    alert,
    message: deliverMessage,
    asDeliveryError,
  });
}

/** Teams' throttling answers tell the outbox when to try again; a 403/404 will not get better. */
function asDeliveryError(error: unknown): unknown {
  if (!(error instanceof ConnectorError)) return error;
  if (error.retryAfterMs !== undefined)
    return new DeliveryError(error.message, { retryAfterMs: error.retryAfterMs, cause: error });
  // The user blocked or uninstalled the bot, or the conversation is gone: no retry helps.
  if (error.status === 403 || error.status === 404)
    return new DeliveryError(error.message, { permanent: true, cause: error });
  return new DeliveryError(error.message, { cause: error });
}
